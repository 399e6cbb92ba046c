"""Request ids: every request gets one (the caller's X-Request-ID, or a new one) and echoes it."""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

REQUEST_ID_HEADER = "X-Request-ID"
# Visible ASCII only: the id is echoed in a response header and stored on audit events.
_ACCEPTABLE = re.compile(r"^[\x21-\x7e]{1,64}$")


def request_id_for(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is 1-64 visible characters, else a fresh uuid4 hex."""
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    return offered if _ACCEPTABLE.match(offered) else uuid.uuid4().hex


class RequestIdMiddleware(MiddlewareMixin):
    """Sets ``request.request_id`` (audit events record it) and answers it in X-Request-ID.

    A MiddlewareMixin so it runs natively in both sync and async mode: under ASGI a
    sync-only middleware would make Django hop threads on every request.
    """

    def process_request(self, request: HttpRequest) -> None:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response[REQUEST_ID_HEADER] = getattr(request, "request_id", "") or request_id_for(request)
        return response

"""Django middleware: request ids, the client's address, and refusing what no view can store."""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from flags.api.errors import error_body

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


class RefuseNulMiddleware(MiddlewareMixin):
    """A NUL in the path or a query parameter is a 400 naming it, before any view runs.

    PostgreSQL refuses NUL in text, so such a value would otherwise fail in the first
    query that uses it (a 500). Bodies are checked by the API's JSON parser.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        field = None
        if "\x00" in request.path:
            field = "path"
        else:
            for name, values in request.GET.lists():
                if "\x00" in name:
                    field = "query"
                    break
                if any("\x00" in value for value in values):
                    field = name
                    break
        if field is None:
            return None
        problem = "contains a NUL character (%00); remove it"
        return JsonResponse(
            error_body("invalid_parameter", f"{field}: {problem}", {field: problem}), status=400
        )

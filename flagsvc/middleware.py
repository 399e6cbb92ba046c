"""Django middleware: request ids, the client's address, and refusing what no view can store."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from flagsvc.api.errors import error_body

# A trigger firing's body is an alert's payload: read up to this much for its note (flags/api/
# alerts.py), never refused for its size.
ALERT_BODY_MAX_BYTES = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


# The audit trail's source_ip column holds 45 characters: an IPv6 address with an IPv4 tail.
_LONGEST_ADDRESS = 45


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return address if len(str(address)) <= _LONGEST_ADDRESS else None  # fe80::1%<long zone>


def client_address(peer: str, forwarded_for: str, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or, from a trusted proxy, the X-Forwarded-For hop before it.

    X-Forwarded-For is read right to left, each trusted proxy passing on to the hop before
    it, and stops at the first untrusted address (the client as far as our proxies know)
    or at anything that is not an address. Always a valid IP address or ''.
    """
    client = _address(peer)
    if client is None:
        return ""
    for hop in reversed(forwarded_for.split(",") if forwarded_for else []):
        if not any(client in network for network in trusted):
            break
        previous = _address(hop)
        if previous is None:
            break
        client = previous
    return str(client)


class ClientAddressMiddleware(MiddlewareMixin):
    """Sets REMOTE_ADDR to the client's address (``client_address``), so audit writes trust it.

    Before: any peer's X-Forwarded-For was believed, and a 60-character one made a kill
    fail (the audit column holds 45). Trusted proxies: the TRUSTED_PROXIES setting.
    """

    def process_request(self, request: HttpRequest) -> None:
        request.META["REMOTE_ADDR"] = client_address(
            request.META.get("REMOTE_ADDR", "") or "",
            request.META.get("HTTP_X_FORWARDED_FOR", ""),
            settings.TRUSTED_PROXIES,
        )


def _nul_field(request: HttpRequest) -> str | None:
    """Where a NUL is: "path", a header's name, "query" (a parameter's name) or a parameter."""
    if "\x00" in request.path:
        return "path"
    for name, value in request.headers.items():
        if "\x00" in value:
            return name
    for name, values in request.GET.lists():
        if "\x00" in name:
            return "query"
        if any("\x00" in value for value in values):
            return name
    return None


class RefuseNulMiddleware(MiddlewareMixin):
    """A NUL in the path, a header (X-Reason) or a query parameter is a 400 naming it.

    PostgreSQL refuses NUL in text, so such a value would otherwise fail in the first
    query that uses it (a 500). Bodies are checked by the API's JSON parser.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        field = _nul_field(request)
        if field is None:
            return None
        problem = "contains a NUL character (%00); remove it"
        return JsonResponse(
            error_body("invalid_parameter", f"{field}: {problem}", {field: problem}), status=400
        )


# POST /api/v1/triggers/{secret}/ fires from its URL alone: its body is read only up to the
# alert cap, never refused (flags/api/alerts.py).
_TRIGGER_FIRE_PATH = re.compile(r"^/api/v1/triggers/[^/]+/$")
_CLOSE = (b"connection", b"close")


class BodyLimitASGI:
    """ASGI middleware in front of Django: a body over the limit is refused before it is read.

    Django's ASGI handler reads the whole body into a temporary file before any middleware
    or authentication runs, so a 20 MB body without a token was uploaded in full before
    its 401. Here a ``Content-Length`` over DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 at
    once (with ``Connection: close``: the rest is never read), and a chunked body is read
    only until it passes the limit. A trigger's body is not refused but cut at the alert
    cap; the view then reports it as ignored.
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        trigger = _TRIGGER_FIRE_PATH.match(scope["path"]) is not None
        limit = ALERT_BODY_MAX_BYTES + 1 if trigger else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared, chunked = _body_framing(scope)
        no_body = declared is None and not chunked  # a GET, say
        if limit is None or no_body or (declared is not None and declared <= limit):
            await self.application(scope, receive, send)
        elif trigger:
            await self.application(scope, _cut_at(receive, limit), _closing(send))
        elif declared is not None:
            await _too_large(send, limit, f"The body is {declared} bytes")
        else:
            await self._chunked(scope, receive, send, limit)

    async def _chunked(self, scope: Any, receive: Any, send: Any, limit: int) -> None:
        """Read a body of unknown length up to the limit, then hand it on (or refuse it)."""
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit, "The body")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.application(scope, replay, send)


def _body_framing(scope: Any) -> tuple[int | None, bool]:
    """(the declared Content-Length, whether the body is chunked)."""
    declared, chunked = None, False
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return declared, chunked


def _cut_at(receive: Any, limit: int) -> Any:
    """A receive that ends the body after ``limit`` bytes and then reads no more of it."""
    size = 0
    done = False

    async def cut() -> Any:
        nonlocal size, done
        if done:  # Django listens for a disconnect after the body; the response closes it
            await asyncio.Event().wait()
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")[: limit - size]
            size += len(body)
            done = size >= limit or not message.get("more_body", False)
            return {"type": "http.request", "body": body, "more_body": not done}
        return message

    return cut


def _closing(send: Any) -> Any:
    """A send that closes the connection after the response (the unread body stays unread)."""

    async def closing(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await send(message)

    return closing


async def _too_large(send: Any, limit: int, what: str) -> None:
    problem = f"{what} is larger than the limit of {limit} bytes; send less."
    body = json.dumps(error_body("payload_too_large", problem)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        _CLOSE,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})

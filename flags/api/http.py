"""The management API's HTTP plumbing: body parsing, rate limits, request inputs.

Named in REST_FRAMEWORK settings, so this module must not import rest_framework.views
(DRF imports these classes while defining APIView); the base views are in base.py.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from flags.api.auth import principal_of
from flagsvc.api.errors import InvalidParameter, PayloadTooLarge, UnstorableBody
from flagsvc.storable import unstorable_text

logger = logging.getLogger(__name__)

REASON_HEADER = "X-Reason"
# Rules, segments and JSON variants need a handful of levels; 10,000 only exhaust the stack.
MAX_JSON_DEPTH = 64


class LimitedJSONParser(JSONParser):
    """JSON bodies only, no bigger than DATA_UPLOAD_MAX_MEMORY_SIZE, and storable.

    Storable: no NUL, no lone surrogate and at most MAX_JSON_DEPTH levels of nesting,
    each a 400 naming the field (they would otherwise fail in the database, as a 500).

    Recent DRF reads ``request.body`` (Django checks the size; the error handler turns
    that into 413); older DRF reads the stream directly, bypassing that check. This
    parser checks either way.
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The body is {declared} bytes; keep it to {limit}.")
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes; send less.")
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # json's C scanner gives up at the interpreter's recursion limit
            raise UnstorableBody(
                "body", f"is nested deeper than {MAX_JSON_DEPTH} levels; flatten it"
            ) from None
        problem = unstorable_text(data, max_depth=MAX_JSON_DEPTH)
        if problem is not None:
            raise UnstorableBody(*problem)
        return data


class AdminTokenThrottle(SimpleRateThrottle):
    """Requests per token (by digest), at the rate in REST_FRAMEWORK's ``admin_token``.

    Sessions are not counted here: the admin login is throttled on its own.
    """

    scope = "admin_token"

    def get_rate(self) -> str | None:
        # Read on every request (not once at import) so settings overrides apply.
        rates: Mapping[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        rate = rates.get(self.scope)
        return None if rate is None else str(rate)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = principal_of(request)
        if principal is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": principal.digest[:32]}

    def allow_request(self, request: Request, view: Any) -> bool:
        # The counters live in the cache (Redis when configured). If it is down, let the
        # request through: a kill must never fail because rate limiting cannot count.
        try:
            return bool(super().allow_request(request, view))
        except Exception:
            logger.warning("rate-limit cache unavailable; not throttling", exc_info=True)
            return True


def reason_of(request: Request, data: Mapping[str, Any] | None = None) -> str:
    """The write's reason: the body's ``reason`` field, else the X-Reason header."""
    if data is not None and data.get("reason"):
        return str(data["reason"])
    return request.headers.get(REASON_HEADER, "")


_ETAG_VERSION = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


def expected_version_of(request: Request, data: Mapping[str, Any]) -> int | None:
    """The version a conditional write expects: ``If-Match: "<version>"`` or the body's ``version``.

    ``If-Match: *`` (or neither) means unconditional: the write wins whatever the version.
    """
    header = request.headers.get("If-Match", "").strip()
    from_header: int | None = None
    if header and header != "*":
        match = _ETAG_VERSION.match(header)
        if match is None:
            raise InvalidParameter(
                "If-Match",
                f'{header!r} is not a version ETag; send the ETag you read, e.g. If-Match: "7"',
            )
        from_header = int(match.group(1))
    from_body = data.get("version")
    if from_header is not None and from_body is not None and from_header != from_body:
        raise InvalidParameter(
            "If-Match",
            f"names version {from_header} but the body's version is {from_body}; send one of them",
        )
    return from_header if from_header is not None else from_body


def boolean_parameter(request: Request, name: str, default: bool | None) -> bool | None:
    """A ``true``/``false`` query parameter; ``any`` means no filter (None).

    Exactly the documented values: ``1``, ``yes`` or ``TRUE`` would be guesses at what
    the caller meant, and the OpenAPI document lists these three.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    choices: dict[str, bool | None] = {"true": True, "false": False, "any": None}
    if raw not in choices:
        raise InvalidParameter(name, f"{raw!r} is not one of true, false or any")
    return choices[raw]

"""Refused SDK requests: the error, its log line (bounded for floods), and its two body shapes."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flags.edge.refusal_log import RefusalLog

logger = logging.getLogger("flags.edge")
JSON = "application/json"
# Refusals that callers can drive by the thousand (unknown keys, rate limits) are summarised.
bounded_refusals = RefusalLog(logger)


class EdgeError(Exception):
    """A refused SDK request; rendered in the API's error body or OFREP's shape."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def log_refusal(request: Request, error: EdgeError) -> None:
    """Refusals are logged like Django logs 4xx (django.request): method, path, status, why.

    401s and 429s, which a caller can send by the thousand, at a bounded rate (RefusalLog).
    """
    client = request.client.host if request.client else "-"
    log = logger.warning
    if error.status in (401, 429):
        outcome = f"{error.status} {error.code}"
        log = functools.partial(bounded_refusals.record, outcome, client)
    log(
        "%s %s -> %s %s (%s): %s",
        request.method,
        request.url.path,
        error.status,
        error.code,
        client,
        error.message,
    )


def api_error(error: EdgeError) -> Response:
    headers = {"retry-after": str(error.retry_after)} if error.retry_after else {}
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="flagsvc"'
    body = {"error": {"code": error.code, "message": error.message, "fields": {}}}
    return Response(json.dumps(body).encode(), error.status, headers=headers, media_type=JSON)


# OFREP's errorCode enum for a 400; any other 400 (e.g. an admin token naming no
# environment) is GENERAL, so stock providers can parse it.
OFREP_BAD_REQUEST_CODES = ("PARSE_ERROR", "INVALID_CONTEXT", "TARGETING_KEY_MISSING", "GENERAL")


def ofrep_error(error: EdgeError, key: str | None = None) -> Response:
    headers: dict[str, str] = {}
    if error.retry_after:
        headers["retry-after"] = str(error.retry_after)
    code = error.code
    if error.status == 400 and code not in OFREP_BAD_REQUEST_CODES:
        code = "GENERAL"
    body: dict[str, Any] = {"errorCode": code, "errorDetails": error.message}
    if key is not None:
        body = {"key": key, **body}
    return Response(json.dumps(body).encode(), error.status, headers=headers, media_type=JSON)

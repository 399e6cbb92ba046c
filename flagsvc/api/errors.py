"""One error body for everything under /api/: ``{"error": {"code", "message", "fields"}}``.

The message always says what to fix. Refusals (``flagsvc.refusals.Refusal``, e.g. the
services' ``flags.errors.ServiceError``) keep their own status, code, message and fields;
DRF's exceptions get a code and a message in the same shape; anything unexpected is a
500 that names the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response

from flagsvc.refusals import Refusal

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
JSON_HINT = "Send a JSON object with 'Content-Type: application/json'."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class InvalidParameter(exceptions.APIException):
    """A bad query parameter or header; ``fields`` names it."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_parameter"

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.fields = {name: message}


class UnstorableBody(exceptions.ParseError):
    """Valid JSON that no database can hold (NUL, lone surrogates) or nested too deep."""

    default_code = "validation_failed"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.fields = {field: problem}


class ApiNotFound(exceptions.NotFound):
    """A named thing that does not exist, with a message saying how to find the right one."""


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def flatten_detail(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested validation detail as ``{"rules[0].serve": "message"}``."""
    fields: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix else name
            fields.update(flatten_detail(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            fields[prefix or "body"] = " ".join(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    fields.update(flatten_detail(item, f"{prefix}[{index}]"))
    else:
        fields[prefix or "body"] = str(detail)
    return fields


def _summary(fields: dict[str, str]) -> str:
    first_field, first_message = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more problem(s))" if len(fields) > 1 else ""
    return f"{first_field}: {first_message}{more}"


def _allowed_methods(context: dict[str, Any]) -> str:
    view = context.get("view")
    methods = [m for m in getattr(view, "allowed_methods", []) if m not in ("OPTIONS", "HEAD")]
    return ", ".join(methods)


def _describe(
    exc: exceptions.APIException, context: dict[str, Any]
) -> tuple[str, str, dict[str, str]]:
    """(code, message, fields) for one of DRF's exceptions."""
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_detail(detail) or {"body": "invalid"}
        return "validation_failed", _summary(fields), fields
    if isinstance(exc, InvalidParameter):
        return "invalid_parameter", str(detail), exc.fields
    if isinstance(exc, UnstorableBody):
        return "validation_failed", str(detail), exc.fields
    if isinstance(exc, exceptions.ParseError):
        return "malformed_json", f"The request body is not valid JSON ({detail}). {JSON_HINT}", {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return "unsupported_media_type", f"{detail} {JSON_HINT}", {}
    if isinstance(exc, exceptions.NotAcceptable):
        return (
            "not_acceptable",
            "This endpoint answers 'application/json' (the audit list also 'text/csv' and "
            "'application/jsonl'); change the Accept header.",
            {},
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        allowed = _allowed_methods(context)
        return "method_not_allowed", f"{detail} Use {allowed}." if allowed else str(detail), {}
    if isinstance(exc, exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return (
            "throttled",
            f"Too many requests with this credential; retry in {wait} second(s).",
            {},
        )
    if isinstance(exc, exceptions.PermissionDenied) and str(detail).startswith("CSRF Failed"):
        return (
            "csrf_failed",
            f"{detail} Session requests that change data need the CSRF token in the "
            "X-CSRFToken header; scripts should use an admin token instead.",
            {},
        )
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return str(code), str(detail), {}


DATABASE_UNAVAILABLE = "database_unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error answers the one envelope."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Nothing here; check the URL.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(f"The body is larger than {limit} bytes; send less.")
    if isinstance(exc, Refusal):
        _set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(int(getattr(exc, "wait", None) or 1))
        code, message, fields = _describe(exc, context)
        _set_rollback()
        return Response(error_body(code, message, fields), status=exc.status_code, headers=headers)
    if isinstance(exc, DatabaseError) and not isinstance(exc, IntegrityError | DataError):
        # A dependency is down, not a bug: say so, and when to try again. (Kills are
        # then applied through Redis by the edge: see flags.emergency.)
        logger.warning("database unreachable: %s", exc)
        _set_rollback()
        return Response(
            error_body(
                DATABASE_UNAVAILABLE,
                "The database is unreachable, so nothing was changed. Try again shortly; "
                "to kill a flag now, use a kill key or `manage.py kill` (emergency kills go "
                "through Redis while the database is out).",
            ),
            status=503,
            headers={"Retry-After": "5"},
        )
    request = context.get("request")
    request_id = getattr(request, "request_id", "") if request is not None else ""
    logger.exception("unexpected error in %s", context.get("view").__class__.__name__)
    _set_rollback()
    return Response(error_body("internal_error", _internal_message(request_id)), status=500)


def _set_rollback() -> None:
    # Imported here: REST_FRAMEWORK settings name this module's neighbours, and
    # rest_framework.views imports them while it is itself being imported.
    from rest_framework.views import set_rollback

    set_rollback()


def _internal_message(request_id: str) -> str:
    return (
        "Something went wrong on our side and nothing was changed. Retry; if it keeps "
        f"failing, report it with request id {request_id or '(none)'}."
    )


@csrf_exempt
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any path under /api/ that names no endpoint (and no DRF view answered)."""
    message = f"No endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            message += f" Did you mean {request.path}/ (with the trailing slash)?"
    message += " The endpoints are listed at /api/docs/."
    return JsonResponse(error_body("not_found", message), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the envelope under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            error_body("internal_error", _internal_message(getattr(request, "request_id", ""))),
            status=500,
        )
    return django_server_error(request)

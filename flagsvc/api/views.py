"""Base classes of the API's views and pagination, for every app's endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flagsvc.api.errors import InvalidParameter


class JsonErrorsMixin:
    """Errors always render as the JSON error body, whatever format the success would have."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        # An error on a CSV/JSONL export is still the JSON error body, never a CSV.
        if (
            isinstance(response, Response)
            and response.status_code >= 400
            and not isinstance(response.accepted_renderer, JSONRenderer)
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response


class ApiView(JsonErrorsMixin, APIView):
    """Base of a management endpoint."""


class ApiListView(JsonErrorsMixin, GenericAPIView):
    """Base of a paginated management list."""


class StrictPageSize(CursorPagination):
    """``page_size`` is a whole number from 1 to ``max_page_size``, or a 400 naming it.

    DRF quietly falls back to the default on ``page_size=null`` or ``-5``, which hides the
    caller's mistake (and contradicts the documented parameter).
    """

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param or "")
        if raw is None or not self.page_size_query_param:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= (self.max_page_size or 1):
            raise InvalidParameter(
                self.page_size_query_param,
                f"{raw!r} is not a whole number from 1 to {self.max_page_size}",
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers a mangled cursor 404, as if the list were gone
            raise InvalidParameter(
                self.cursor_query_param,
                "is not a cursor this API gave out; follow the next/previous links as they are",
            ) from None

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class KeyCursorPagination(StrictPageSize):
    """Pages of a collection in key order; ``next``/``previous`` are opaque links."""

    ordering = "key"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

"""Base classes of the management API's views."""

from __future__ import annotations

from typing import Any

from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


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


class KeyCursorPagination(CursorPagination):
    """Pages of a collection in key order; ``next``/``previous`` are opaque links."""

    ordering = "key"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

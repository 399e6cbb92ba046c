"""``FlagsvcMiddleware`` gives every request ``request.flags`` (see ``RequestFlags``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

from flagsvc_sdk.django.context import RequestFlags


@sync_and_async_middleware
def FlagsvcMiddleware(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Add after AuthenticationMiddleware: ``request.flags`` uses ``request.user``."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            request.flags = RequestFlags(request)  # type: ignore[attr-defined]
            response: Awaitable[HttpResponse] = get_response(request)
            return await response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        request.flags = RequestFlags(request)  # type: ignore[attr-defined]
        response: HttpResponse = get_response(request)
        return response

    return middleware

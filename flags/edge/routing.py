"""Routing glue of the edge app: Django behind every other path, and Starlette's errors in JSON."""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route


def everything_else(django_application: Any) -> Mount:
    """Django, for every path the edge does not answer, including ones with a newline.

    Starlette's "/" mount matches with ``.*$``: a path with %0A in it matched nothing
    (plain-text 404), or matched without its trailing slash (a 307 to the wrong path).
    """
    mount = Mount("/", app=django_application)
    mount.path_regex = re.compile(r"^/(?P<path>.*)\Z", re.DOTALL)
    return mount


def method_not_allowed_routes(routes: list[Any]) -> list[Route]:
    """For each edge path, a route answering every other method (before Django's mount)."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            methods.setdefault(route.path, set()).update(route.methods)
    return [Route(path, MethodNotAllowed(sorted(names))) for path, names in methods.items()]


def _error(status: int, code: str, message: str, headers: Any = None) -> Response:
    body = {"error": {"code": code, "message": message, "fields": {}}}
    return JSONResponse(body, status_code=status, headers=headers)


class MethodNotAllowed:
    """An edge path asked with a method it does not answer: 405 with Allow."""

    def __init__(self, methods: list[str]) -> None:
        self.allow = ", ".join(methods)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = f"{scope['method']} is not allowed here; use {self.allow}."
        response = _error(405, "method_not_allowed", message, {"Allow": self.allow})
        await response(scope, receive, send)


async def json_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (e.g. a path no route matches, such as one with %0A) in JSON."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No endpoint at {request.url.path!r}. The endpoints are listed at /api/docs/."
        return _error(404, "not_found", message, exc.headers)
    return _error(exc.status_code, "http_error", str(exc.detail), exc.headers)

"""Builds the one ASGI application: the SDK edge's routes, static files, and Django behind them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flags.edge import errors
from flags.edge.cors import SdkCors
from flags.edge.emergency import KillRoute
from flags.edge.fanout import Fanout, cancel_until_done
from flags.edge.http import MAX_OFREP_BODY, Edge
from flags.edge.ratelimit import RateLimiter
from flags.edge.routing import everything_else, json_http_error, method_not_allowed_routes
from flags.edge.state import EdgeState
from flagsvc import metrics
from flagsvc.middleware import BodyLimitASGI

logger = logging.getLogger("flags.edge")


class RawASGI:
    """Marks a handler as a plain ASGI app for Starlette's router (streams write their own body)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.handler(scope, receive, send)


_STATES: weakref.WeakSet[EdgeState] = weakref.WeakSet()  # of the applications built here


def end_streams() -> int:
    """End this process's open streams because it is stopping (see ``EdgeState.end_streams``);
    called by the launcher (flagsvc.serve) as soon as it is asked to stop."""
    return sum(state.end_streams() for state in list(_STATES))


def build_edge() -> tuple[Edge, Fanout]:
    state = EdgeState(key_lookups_per_second=settings.SDK_UNKNOWN_KEY_LOOKUPS_PER_SECOND)
    _STATES.add(state)
    state.on_version = lambda environment, version: metrics.SNAPSHOT_VERSION.labels(
        environment
    ).set(version)
    state.on_streams = lambda environment, count: metrics.OPEN_STREAMS.labels(environment).set(
        count
    )
    limiters = {
        "server": RateLimiter(settings.SDK_RATE_LIMIT_SERVER_PER_SECOND),
        "client": RateLimiter(settings.SDK_RATE_LIMIT_CLIENT_PER_SECOND),
    }
    return Edge(state, limiters), Fanout(state)


# Probes and scrapers reach these by the pod's address, which ALLOWED_HOSTS rarely lists
# (Kubernetes probes, Prometheus pod discovery); they take no key, put no Host in what
# they answer, and belong to the network the operator controls.
HOST_AGNOSTIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AllowedHosts:
    """Django's ALLOWED_HOSTS check (same patterns: ``*``, ``.example.com``, ports) for every
    path but the probes: a request for another host gets a JSON 400 before any handler (the
    edge's own, static files, or Django, which would refuse it the same way)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Host header -> allowed, for the current ALLOWED_HOSTS (a few hosts in practice).
        self.verdicts: dict[bytes, bool] = {}
        self.verdicts_for: object = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HOST_AGNOSTIC_PATHS:
            await self.app(scope, receive, send)
            return
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        if self.verdicts_for is not settings.ALLOWED_HOSTS:
            self.verdicts, self.verdicts_for = {}, settings.ALLOWED_HOSTS
        allowed = self.verdicts.get(host)
        if allowed is None:
            allowed = self.allowed(host.decode("latin-1"))
            if len(self.verdicts) < 1000:
                self.verdicts[host] = allowed
        if allowed:
            await self.app(scope, receive, send)
            return
        error = errors.EdgeError(
            400,
            "invalid_host",
            f"Host {host.decode('latin-1')[:100]!r} is not served here; "
            "use one of the names in ALLOWED_HOSTS.",
        )
        await errors.api_error(error)(scope, receive, send)

    @staticmethod
    def allowed(host: str) -> bool:
        domain, _port = split_domain_port(host)
        patterns = settings.ALLOWED_HOSTS
        if settings.DEBUG and not patterns:  # as Django's HttpRequest.get_host
            patterns = [".localhost", "127.0.0.1", "[::1]"]
        return bool(domain) and validate_host(domain, patterns)


class CloseAfterUnreadBody:
    """Answers that leave a large or chunked request body unread close the connection.

    Otherwise the server keeps reading (and discarding) the rest of the body to reuse
    the connection: a refused 20 MB upload would still be uploaded in full. A small
    body (an ordinary OFREP context) is cheaper to discard than a new connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_left = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                body_left = not value.isdigit() or int(value) > MAX_OFREP_BODY
            elif name == b"transfer-encoding":
                body_left = True
                break
        if not body_left:  # nearly every request: nothing worth watching
            await self.app(scope, receive, send)
            return

        async def receive_body() -> Message:
            nonlocal body_left
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_left = False
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and body_left:
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"connection", b"close")],
                }
            await send(message)

        await self.app(scope, receive_body, send_closing)


STREAM_PATH = "/api/v1/sdk/stream/"
# (path, action, what names the flags) of the kill endpoints the edge answers first.
KILL_ROUTES = (
    ("/api/v1/flags/{key}/kill/", "kill", "flag"),
    ("/api/v1/flags/{key}/restore/", "restore", "flag"),
    ("/api/v1/kill/", "kill", "tag"),
    ("/api/v1/restore/", "restore", "tag"),
    ("/api/v1/triggers/{secret}/", "kill", "trigger"),  # the trigger's own action decides
)


class EdgeFront:
    """The process's ASGI application: SSE streams straight to their handler, all else to Starlette.

    A stream lives for hours and is written to on every change; behind Starlette every
    event would pass through its error and exception middleware's ``send`` wrappers,
    a cost multiplied by every open stream on every kill. Streams still get the host
    check and CORS; they take no body, so nothing else of the middleware applies to them.
    """

    def __init__(self, application: Starlette, streams: ASGIApp) -> None:
        self.application = application
        self.streams = AllowedHosts(SdkCors(streams))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STREAM_PATH and scope["method"] == "GET":
            await self.streams(scope, receive, send)
        else:
            await self.application(scope, receive, send)

    def __getattr__(self, name: str) -> Any:  # state, routes, ... of the Starlette app
        return getattr(self.application, name)


def build_application(django_application: Any) -> EdgeFront:
    edge, fanout = build_edge()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await fanout.start()
        sync = asyncio.create_task(_sync_rate_limits(edge, fanout))
        # Everything loaded at start-up (Django, the apps, the first snapshots) lives as
        # long as the process: keep it out of the cyclic collector's way, so a full
        # collection does not pause a kill or a stream fan-out for tens of milliseconds.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await fanout.stop()
            await cancel_until_done([sync])

    django_behind_limit = BodyLimitASGI(django_application)
    routes = [
        Route("/api/v1/sdk/snapshot/", edge.snapshot, methods=["GET"]),
        Route("/api/v1/sdk/stream/", RawASGI(edge.stream), methods=["GET"]),
        Route("/ofrep/v1/evaluate/flags/{key}", edge.ofrep_flag, methods=["POST"]),
        Route("/ofrep/v1/evaluate/flags", edge.ofrep_bulk, methods=["POST"]),
        Route("/healthz", edge.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", edge.readyz, methods=["GET", "HEAD"]),
        Route("/metrics", edge.metrics, methods=["GET"]),
        # Kills and restores: the fast path, and through Redis while the database is out.
        *[
            Route(
                path,
                RawASGI(KillRoute(django_behind_limit, edge.state, action, kind)),
                methods=["POST"],
            )
            for path, action, kind in KILL_ROUTES
        ],
        Mount(
            "/" + settings.STATIC_URL.strip("/"),
            app=StaticFiles(directory=settings.STATIC_ROOT, check_dir=False),
            name="static",
        ),
        everything_else(django_behind_limit),
    ]
    # Another method on an edge path is a 405 naming the allowed ones, not Django's 404.
    routes[-1:-1] = method_not_allowed_routes(routes)
    application = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(CloseAfterUnreadBody),
            Middleware(AllowedHosts),
            Middleware(SdkCors),
        ],
        exception_handlers={HTTPException: json_http_error},
    )
    application.state.edge = edge
    application.state.fanout = fanout
    return EdgeFront(application, edge.stream)


async def _sync_rate_limits(edge: Edge, fanout: Fanout) -> None:
    while not fanout.stopping:  # the flag too: a cancellation can be lost (see Fanout)
        await asyncio.sleep(0.25)
        for limiter in (*edge.limiters.values(), edge.state.key_lookups):
            with contextlib.suppress(Exception):
                await limiter.sync(fanout._redis if fanout.redis_healthy else None)
        errors.bounded_refusals.flush_if_due()

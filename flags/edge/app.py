"""Builds the one ASGI application: the SDK edge's routes, static files, and Django behind them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flags.edge.fanout import Fanout
from flags.edge.http import Edge
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


def build_edge() -> tuple[Edge, Fanout]:
    state = EdgeState()
    state.on_version = lambda environment, version: metrics.SNAPSHOT_VERSION.labels(
        environment
    ).set(version)
    state.on_streams = lambda environment, count: metrics.OPEN_STREAMS.labels(environment).set(
        count
    )
    return Edge(state, RateLimiter(settings.SDK_RATE_LIMIT_PER_SECOND)), Fanout(state)


def build_application(django_application: Any) -> Starlette:
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
            sync.cancel()
            await fanout.stop()

    routes = [
        Route("/api/v1/sdk/snapshot/", edge.snapshot, methods=["GET"]),
        Route("/api/v1/sdk/stream/", RawASGI(edge.stream), methods=["GET"]),
        Route("/ofrep/v1/evaluate/flags/{key}", edge.ofrep_flag, methods=["POST"]),
        Route("/ofrep/v1/evaluate/flags", edge.ofrep_bulk, methods=["POST"]),
        Route("/ofrep/v1/evaluate/flags/{key}", edge.preflight, methods=["OPTIONS"]),
        Route("/ofrep/v1/evaluate/flags", edge.preflight, methods=["OPTIONS"]),
        Route("/api/v1/sdk/stream/", edge.preflight, methods=["OPTIONS"]),
        Route("/healthz", edge.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", edge.readyz, methods=["GET", "HEAD"]),
        Route("/metrics", edge.metrics, methods=["GET"]),
        Mount(
            "/" + settings.STATIC_URL.strip("/"),
            app=StaticFiles(directory=settings.STATIC_ROOT, check_dir=False),
            name="static",
        ),
        everything_else(BodyLimitASGI(django_application)),
    ]
    # Another method on an edge path is a 405 naming the allowed ones, not Django's 404.
    routes[-1:-1] = method_not_allowed_routes(routes)
    application = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: json_http_error}
    )
    application.state.edge = edge
    application.state.fanout = fanout
    return application


async def _sync_rate_limits(edge: Edge, fanout: Fanout) -> None:
    while True:
        await asyncio.sleep(0.25)
        with contextlib.suppress(Exception):
            await edge.limiter.sync(fanout._redis if fanout.redis_healthy else None)

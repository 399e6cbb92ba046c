"""The reference for bench/kill_propagation.py: a bare Starlette fan-out with flagsvc's topology.

The same launcher (``flagsvc.serve``, one SO_REUSEPORT socket per process), the
same Redis pub/sub between processes and the same raw SSE subscribers, but
nothing else: ``POST /api/v1/flags/{key}/{action}/`` takes a version from a Redis
counter and PUBLISHes it; every process writes the same patch event flagsvc sends
for the bench's kill (same size) to each of its streams. No Django, no database, no snapshot, no audit: the floor that any
kill propagation over HTTP + Redis + SSE on this machine stands on.

    python -m flagsvc.serve --app bench.bare_fanout:app --port 8123 --workers 2
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
CHANNEL = "bare:changes"
subscribers: set[asyncio.Queue[bytes]] = set()
# Polled under load like flagsvc's snapshot: a ready body of a similar size (gzip-sized).
SNAPSHOT = os.urandom(16 * 1024)


async def stream(scope: Any, receive: Any, send: Any) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    subscribers.add(queue)
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"id: 0\nevent: version\ndata: {}\n\n",
                "more_body": True,
            }
        )
        while True:
            event = await queue.get()
            await send({"type": "http.response.body", "body": event, "more_body": True})
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        subscribers.discard(queue)


async def kill(request: Request) -> Response:
    await request.body()
    client: aioredis.Redis = request.app.state.redis
    version = await client.incr("bare:version")
    await client.publish(CHANNEL, str(version))
    return JSONResponse({"environment_version": version})


# The patch flagsvc streams for a kill in bench/kill_propagation.py (one flag with a rule
# and a split, and its kill overlay): the reference writes the same bytes to each
# subscriber, so the comparison is of the servers, not of the event sizes.
KILLED_FLAG = {
    "key": "flag-007",
    "type": "boolean",
    "variants": {"on": True, "off": False},
    "off_variant": "off",
    "client_visible": False,
    "version": 2,
    "enabled": True,
    "kill": {
        "by": "bench-kill",
        "at": "2026-11-29T18:00:00.000000Z",
        "reason": "bench kill 0",
        "incident": "00000000-0000-4000-8000-000000000000",
    },
    "targets": [],
    "rules": [
        {
            "id": "de",
            "serve": {"variant": "on"},
            "conditions": [{"value": ["DE", "AT"], "operator": "in", "attribute": "country"}],
        }
    ],
    "default_serve": {
        "split": [{"weight": 2500, "variant": "on"}, {"weight": 7500, "variant": "off"}]
    },
    "prerequisites": [],
}


def patch_event(version: int) -> bytes:
    data = {
        "environment": "production",
        "version": version,
        "previous_version": version - 1,
        "flags": {"flag-007": KILLED_FLAG},
        "segments": {},
    }
    return f"id: {version}\nevent: patch\ndata: {json.dumps(data)}\n\n".encode()


async def listen(client: aioredis.Redis) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        event = patch_event(int(message["data"]))  # built once for every subscriber
        for queue in list(subscribers):
            queue.put_nowait(event)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.redis = aioredis.Redis.from_url(REDIS_URL)
    task = asyncio.create_task(listen(aioredis.Redis.from_url(REDIS_URL)))
    yield
    task.cancel()


class Router:
    """Streams are raw ASGI (as flagsvc's are); everything else goes through Starlette."""

    def __init__(self) -> None:
        self.starlette = Starlette(
            routes=[
                Route("/api/v1/flags/{key}/{action}/", kill, methods=["POST"]),
                Route("/readyz", lambda request: Response(b"ok")),
                Route("/api/v1/sdk/snapshot/", lambda request: Response(SNAPSHOT)),
            ],
            lifespan=lifespan,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/v1/sdk/stream/":
            await stream(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


app = Router()

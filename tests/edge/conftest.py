"""A real uvicorn server running the whole ASGI application, in a thread of the test process.

Running in-process lets the server share the test database (including SQLite's
in-memory one); the tests talk to it over TCP with a real HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from django.core.asgi import get_asgi_application

from audit.recorder import Actor
from flags import publish, services
from flags.edge import errors
from flags.edge.app import build_application
from flags.models import ApiToken, Environment, Flag


@dataclass
class LiveEdge:
    url: str
    application: Any

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        headers.setdefault("Accept-Encoding", "identity")
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_edge(transactional_db: None, settings: Any) -> Iterator[LiveEdge]:
    settings.EDGE_FALLBACK_WATCH_SECONDS = 0.2
    publish.local_store().clear()
    errors.bounded_refusals.flush()  # each test's first refusal is logged in full
    errors.bounded_refusals.quiet_until = 0.0
    if settings.REDIS_URL:  # the test database number (settings_test), never the developer's
        with contextlib.suppress(redis.ConnectionError):  # some tests point it at a dead port
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5).flushdb()
    application = build_application(get_asgi_application())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield LiveEdge(f"http://127.0.0.1:{port}", application)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        publish.local_store().clear()


@pytest.fixture
def world(transactional_db: None) -> dict[str, Any]:
    """Two environments, a few flags and one token of each kind (raw values)."""
    actor = Actor.cli("tester")
    production = services.environment_create(actor=actor, key="production")
    staging = services.environment_create(actor=actor, key="staging")
    checkout = services.flag_create(actor=actor, key="new-checkout", client_visible=True)
    services.flag_state_update(
        actor=actor,
        flag=checkout,
        environment=production,
        enabled=True,
        rules=[
            {
                "id": "de",
                "conditions": [{"attribute": "country", "operator": "equals", "value": "DE"}],
                "serve": {"variant": "on"},
            }
        ],
        default_serve={
            "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
        },
    )
    internal = services.flag_create(actor=actor, key="internal-tool")
    services.flag_state_update(actor=actor, flag=internal, environment=production, enabled=True)
    price = services.flag_create(
        actor=actor,
        key="price",
        type="number",
        variants={"low": 10, "high": 12.5},
        off_variant="low",
        client_visible=True,
    )
    services.flag_state_update(
        actor=actor,
        flag=price,
        environment=production,
        enabled=True,
        default_serve={"variant": "low"},
    )
    tokens = {}
    for kind, environment in (
        ("server", production),
        ("client", production),
        ("kill", production),
        ("admin", None),
    ):
        tokens[kind] = services.token_issue(
            actor=actor, kind=kind, name=f"{kind}-key", environment=environment
        )[1]
    tokens["staging_server"] = services.token_issue(
        actor=actor, kind="server", name="staging-server", environment=staging
    )[1]
    revoked_token, tokens["revoked"] = services.token_issue(
        actor=actor, kind="server", name="old-key", environment=production
    )
    services.token_revoke(actor=actor, token=revoked_token)
    return {
        "actor": actor,
        "production": production,
        "staging": staging,
        "checkout": checkout,
        "tokens": tokens,
    }


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def environment(key: str) -> Environment:
    return Environment.objects.get(key=key)


def token_named(name: str) -> ApiToken:
    return ApiToken.objects.get(name=name)


def flag(key: str) -> Flag:
    return Flag.objects.get(key=key)

"""The kill switch when parts of the platform are down: Redis unreachable, web tier down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from audit.models import AuditEvent
from flags.models import FlagState
from tests.edge.conftest import LiveEdge, wait_for
from tests.edge.test_stream import StreamReader

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_down(settings: Any) -> None:
    settings.REDIS_URL = CLOSED_PORT_REDIS
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED_PORT_REDIS,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }


def test_redis_down__kill_commits_and_services_still_converge(
    redis_down: None, live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # Given a streaming SDK and a polling SDK, with Redis unreachable for every process
    stream = StreamReader(live_edge, world["tokens"]["server"])
    poller = live_edge.client(world["tokens"]["server"])
    try:
        wait_for(lambda: bool(stream.events))
        etag = poller.get("/api/v1/sdk/snapshot/").headers["etag"]

        # When the commander kills through the API
        started = time.monotonic()
        response = live_edge.client(world["tokens"]["kill"]).post(
            "/api/v1/flags/new-checkout/kill/",
            json={"environment": "production", "reason": "Redis is down too"},
        )

        # Then the kill is committed and audited
        assert response.status_code == 200, response.text
        version = response.json()["environment_version"]
        assert FlagState.objects.get(flag__key="new-checkout", environment__key="production").killed
        assert AuditEvent.objects.filter(action="flag.kill", reason="Redis is down too").exists()
        # ...the stream falls back to its version watch and delivers it
        wait_for(lambda: any(int(e[2]) == version for e in stream.events), timeout=5)
        # ...and polling picks it up
        polled = poller.get("/api/v1/sdk/snapshot/", headers={"If-None-Match": etag})
        assert polled.status_code == 200 and polled.json()["version"] == version
        assert polled.json()["flags"]["new-checkout"]["kill"]["reason"] == "Redis is down too"
        assert time.monotonic() - started < 5
        # ...and the instance stays in rotation, saying what is degraded
        ready = live_edge.client().get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "cache": "down", "broker": "ok"}
    finally:
        stream.close()


def test_web_tier_down__manage_py_kill_works_with_only_the_database(
    transactional_db: None, world: dict[str, Any]
) -> None:
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        database_url = (
            f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        )
    else:
        database_url = f"sqlite:///{settings_dict['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
        "DEBUG": "false",
        "SECRET_KEY": "cli-only",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": CLOSED_PORT_REDIS,  # and Redis is down as well
    }
    # No web server is running in this test: only the database is reachable.
    with pytest.raises(httpx.HTTPError):
        httpx.get("http://127.0.0.1:8000/healthz", timeout=0.5)
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "kill",
            "new-checkout",
            "--environment",
            "production",
            "--reason",
            "web tier is down",
            "--actor",
            "oncall@laptop",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "KILLED new-checkout in production" in result.stdout
    state = FlagState.objects.get(flag__key="new-checkout", environment__key="production")
    assert (
        state.killed
        and state.killed_by == "oncall@laptop"
        and state.kill_reason == "web tier is down"
    )
    assert AuditEvent.objects.filter(
        action="flag.kill", actor="oncall@laptop", actor_kind="cli"
    ).exists()

"""Fan-out across processes: a change made here reaches streams on every uvicorn worker via Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.db import connection

from flags import services
from tests.edge.conftest import flag
from tests.edge.test_stream import StreamReader, revoke_server_key_then_kill

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = "redis://127.0.0.1:6379/14"

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Edge:
    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def wait_until_serving(url: str, path: str = "/readyz", timeout: float = 30) -> None:
    """Until ``url + path`` answers 200 (a server just started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.2)


@contextlib.contextmanager
def web_workers(
    redis_url: str, workers: int = 2, ready_path: str = "/readyz", **extra_env: str
) -> Iterator[_Edge]:
    """The production server (flagsvc.serve, N processes) on the test database and ``redis_url``."""
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
        "DEBUG": "false",
        # SECRET_KEY: the test process's (flagsvc.settings_test), as every process of one
        # deployment shares it: sealed webhook secrets open in all of them.
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "EDGE_WATCH_SECONDS": "60",  # only pub/sub can be this fast
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
        **extra_env,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flagsvc.serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--timeout-graceful-shutdown",
            "1",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    edge = _Edge(f"http://127.0.0.1:{port}")
    try:
        wait_until_serving(edge.url, ready_path)
        yield edge
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture
def two_workers(world: dict[str, Any], settings: Any) -> Iterator[_Edge]:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: set REDIS_URL")
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    settings.REDIS_URL = REDIS_TEST_URL
    with web_workers(REDIS_TEST_URL) as edge:
        yield edge


def open_streams(edge: _Edge, token: str, count: int = 8) -> list[StreamReader]:
    """``count`` streams (spread over the workers by the kernel), each past its first event."""
    readers = [StreamReader(edge, token) for _ in range(count)]  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while not all(r.events for r in readers):
        if time.monotonic() > deadline:
            for reader in readers:
                reader.close()
            raise AssertionError("the streams did not open")
        time.sleep(0.02)
    return readers


def wait_for_reports(count: int = 2) -> None:
    """Until ``count`` edge processes have reported what they serve (once a second each)."""
    deadline = time.monotonic() + 10
    while len(redis.Redis.from_url(REDIS_TEST_URL).hkeys("flagsvc:edges")) < count:
        assert time.monotonic() < deadline, "the workers did not report"
        time.sleep(0.1)


def test_kill__reaches_streams_on_both_workers_through_redis(
    two_workers: _Edge, world: dict[str, Any]
) -> None:
    readers = open_streams(two_workers, world["tokens"]["server"])
    try:
        started = time.monotonic()
        outcome = services.flag_kill(
            actor=world["actor"],
            flag=flag("new-checkout"),
            environment=world["production"],
            reason="fan-out",
        )
        while not all(len(r.events) >= 2 for r in readers):
            assert time.monotonic() - started < 2, [len(r.events) for r in readers]
            time.sleep(0.005)
        for reader in readers:
            _, event, event_id, _ = reader.events[1]
            assert event == "patch" and int(event_id) == outcome.environment_version
        assert max(r.events[1][0] for r in readers) - started < 0.5
    finally:
        for reader in readers:
            reader.close()


def test_kill_answer__confirmed_by_both_workers_within_a_second(
    two_workers: _Edge, world: dict[str, Any]
) -> None:
    wait_for_reports()
    with two_workers.client(world["tokens"]["kill"]) as client:
        answer = client.post(
            "/api/v1/flags/new-checkout/kill/",
            json={"environment": "production", "reason": "confirm"},
        ).json()
    propagation = answer["propagation"]
    print("kill answer with 2 worker processes:", propagation["message"])
    assert propagation["complete"] is True, propagation
    assert (propagation["confirmed"], propagation["live_processes"]) == (2, 2)
    assert propagation["message"].startswith("confirmed by 2 of 2 edge processes in ")
    assert propagation["elapsed_ms"] < 1000


def test_revoke__ends_the_key_streams_on_both_workers_within_a_second(
    two_workers: _Edge, world: dict[str, Any]
) -> None:
    readers = open_streams(two_workers, world["tokens"]["server"])
    try:
        started = revoke_server_key_then_kill(world)
        for reader in readers:
            assert reader.ended.wait(timeout=max(0.0, 1.0 - (time.monotonic() - started)))
        assert all([e[1] for e in r.events] == ["version"] for r in readers)
    finally:
        for reader in readers:
            reader.close()

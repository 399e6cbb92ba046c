"""The kill switch and readiness when parts of the platform are down: Redis, the database, the web tier."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

from audit.models import AuditEvent
from flags.models import FlagState
from tests.edge.conftest import LiveEdge, wait_for
from tests.edge.test_stream import StreamReader

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@pytest.mark.integration
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
    # This test starts no web server and points Redis at a closed port: only the database
    # is reachable (whatever else runs on this machine, e.g. `make run` on port 8000).
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


class DatabaseLink:
    """A TCP forwarder to the database that a test can cut, as a network partition would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        with contextlib.suppress(OSError):  # wakes the accepting thread; close() alone would not
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def database_link(transactional_db: None) -> Iterator[DatabaseLink]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    link = DatabaseLink(connection.settings_dict["HOST"] or "127.0.0.1", 5432)
    yield link
    link.cut()


def start_web(link: DatabaseLink, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
        "DEBUG": "false",
        "SECRET_KEY": "readiness-test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "FLAGSVC_ENV_FILE": "",
        "FLAGSVC_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{link.port}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    # -X faulthandler: a process that does not stop is asked (SIGABRT) where each thread is.
    command = ["-X", "faulthandler", "-m", "uvicorn", "flagsvc.asgi:application"]
    web = subprocess.Popen(
        [sys.executable, *command, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "web.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{url}/healthz"), timeout=30)
    return web, url


def stop_web(web: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as an orchestrator sends it: the process must stop on its own, database down.

    The bound is generous for a loaded 2-core machine; a process still running past it is
    killed and the test fails, so a hang at shutdown cannot pass unnoticed.
    """
    web.terminate()
    try:
        web.wait(timeout=60)
    except subprocess.TimeoutExpired:
        web.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to the log
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait(timeout=10)
        where = log.read_text(errors="replace")[-6000:]
        raise AssertionError(
            f"the web process did not stop within 60 s of SIGTERM:\n{where}"
        ) from None


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


@pytest.mark.integration
def test_database_cut_after_start_up__readyz_200_with_database_down_and_sdk_reads_served(
    database_link: DatabaseLink, world: dict[str, Any], tmp_path: Path
) -> None:
    # Given a web process that loaded its snapshots through the link
    web, url = start_web(database_link, tmp_path)
    try:
        assert readyz(url).json()["checks"]["database"] == "ok"
        server_key = {"Authorization": f"Bearer {world['tokens']['server']}"}
        assert httpx.get(f"{url}/api/v1/sdk/snapshot/", headers=server_key).status_code == 200

        # When the database becomes unreachable
        database_link.cut()

        # Then the instance stays ready, says the database is down, and still serves SDK reads
        wait_for(lambda: readyz(url).json()["checks"]["database"] == "down", timeout=15)
        response = readyz(url)
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
        assert httpx.get(f"{url}/api/v1/sdk/snapshot/", headers=server_key).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        assert 'flagsvc_dependency_state{dependency="database",state="down"} 1.0' in metrics
    finally:
        stop_web(web, tmp_path / "web.log")


@pytest.mark.integration
def test_database_unreachable_before_any_snapshot__readyz_503(
    database_link: DatabaseLink, world: dict[str, Any], tmp_path: Path
) -> None:
    database_link.cut()
    web, url = start_web(database_link, tmp_path)
    try:
        response = readyz(url)
        assert response.status_code == 503, response.text
        assert response.json()["checks"]["database"] == "down"
        assert "database is unreachable" in response.json()["error"]["message"]
    finally:
        stop_web(web, tmp_path / "web.log")

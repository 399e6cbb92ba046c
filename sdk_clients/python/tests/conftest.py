"""Fixtures for the SDK's tests: a scripted flagsvc double (exact protocol control) and a real
flagsvc server (``python -m tests.sdk_server`` from the repository root, started once)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SDK_ROOT = Path(__file__).resolve().parent.parent
REPO_ROOT = SDK_ROOT.parent.parent
FLAGSVC_PYTHON = os.environ.get("FLAGSVC_PYTHON", str(REPO_ROOT / ".venv" / "bin" / "python"))
SERVER_NAME = os.environ.get("FLAGSVC_SDK_TEST_NAME", "pysdk")
SERVER_REDIS_DB = os.environ.get("FLAGSVC_SDK_TEST_REDIS_DB", "8")


# -- snapshot documents -------------------------------------------------------------------


def flag(key: str, **state: Any) -> dict[str, Any]:
    """A boolean flag document, on for everyone unless ``state`` says otherwise."""
    return {
        "key": key,
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "enabled": True,
        "kill": None,
        "targets": [],
        "rules": [],
        "default_serve": {"variant": "on"},
        "prerequisites": [],
        **state,
    }


def snapshot(
    version: int, *flags: dict[str, Any], environment: str = "production"
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "environment": environment,
        "version": version,
        "lineage": "test",
        "revision": f"r{version}",
        "flags": {f["key"]: f for f in flags},
        "segments": {},
    }


def sse(event: str, version: int, data: dict[str, Any]) -> bytes:
    return f"id: {version}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def wait_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005) -> Any:
    """Poll ``check`` until truthy; returns its value, or fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(interval)


# -- a scripted flagsvc -------------------------------------------------------------------


class FakeFlagsvc:
    """Serves /api/v1/sdk/snapshot/ and /api/v1/sdk/stream/ as flagsvc does, from a script.

    ``document`` is served with ETag ``"<env>:<version>-<revision>"``; ``status`` forces an
    error status on both endpoints; ``stream_status`` on the stream only; events put in
    ``push`` reach the open stream; ``drop_streams()`` ends them. ``requests`` logs every
    request as (path, headers).
    """

    def __init__(self) -> None:
        self.document: dict[str, Any] = snapshot(1, flag("beta"))
        self.raw_body: bytes | None = None  # served instead of the document when set
        self.status: int | None = None
        self.stream_status: int | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.streams: list[queue.Queue[bytes | None]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    fake.requests.append((self.path, headers))
                status = fake.status
                if self.path.startswith("/api/v1/sdk/stream/"):
                    status = status or fake.stream_status
                if status is not None:
                    body = json.dumps({"code": "refused", "message": f"status {status}"}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path.startswith("/api/v1/sdk/snapshot/"):
                    self.snapshot(headers)
                elif self.path.startswith("/api/v1/sdk/stream/"):
                    self.stream()
                else:
                    self.send_error(404)

            def snapshot(self, headers: dict[str, str]) -> None:
                document = fake.document
                etag = f'"{document["environment"]}:{document["version"]}-{document["revision"]}"'
                body = fake.raw_body or json.dumps(document).encode()
                zipped = "gzip" in headers.get("accept-encoding", "")
                if zipped:
                    etag = etag[:-1] + ':gzip"'
                if headers.get("if-none-match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                if zipped:
                    body = gzip.compress(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                if zipped:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def stream(self) -> None:
                events: queue.Queue[bytes | None] = queue.Queue()
                with fake.lock:
                    fake.streams.append(events)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                version = fake.document["version"]
                opening = sse("version", version, {"environment": "production", "version": version})
                self.wfile.write(b"retry: 2000\n\n" + opening)
                self.wfile.flush()
                try:
                    while True:
                        event = events.get()
                        if event is None:
                            return
                        self.wfile.write(event)
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    with fake.lock:
                        fake.streams.remove(events)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def push(self, event: bytes) -> None:
        with self.lock:
            streams = list(self.streams)
        for events in streams:
            events.put(event)

    def drop_streams(self) -> None:
        with self.lock:
            streams = list(self.streams)
        for events in streams:
            events.put(None)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.requests if p.startswith(path))

    def last(self, path: str) -> dict[str, str]:
        with self.lock:
            return next(h for p, h in reversed(self.requests) if p.startswith(path))

    def close(self) -> None:
        self.drop_streams()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeFlagsvc]:
    server = FakeFlagsvc()
    yield server
    server.close()


@pytest.fixture
def closed_port() -> str:
    """A URL where nothing listens (connection refused at once)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- a real flagsvc -----------------------------------------------------------------------


class LiveFlagsvc:
    """A real flagsvc server (tests.sdk_server) with demo data and keys for production."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [
                FLAGSVC_PYTHON,
                "-m",
                "tests.sdk_server",
                "--name",
                SERVER_NAME,
                "--redis-db",
                SERVER_REDIS_DB,
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"tests.sdk_server exited with {self.process.wait()}")
        info = json.loads(line)
        self.url: str = info["url"]
        self.server_key: str = info["serverKey"]
        self.kill_key: str = info["killKey"]
        self.admin_token: str = info["adminToken"]
        self.environment: str = info["environment"]

    def _call(self, method: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def kill(self, key: str) -> dict[str, Any]:
        body = {"environment": self.environment, "reason": "SDK test"}
        return self._call("POST", f"/api/v1/flags/{key}/kill/", self.kill_key, body)

    def restore(self, key: str) -> dict[str, Any]:
        body = {"environment": self.environment, "reason": "SDK test"}
        return self._call("POST", f"/api/v1/flags/{key}/restore/", self.kill_key, body)

    def set_enabled(self, key: str, enabled: bool) -> dict[str, Any]:
        path = f"/api/v1/flags/{key}/environments/{self.environment}/"
        body = {"enabled": enabled, "reason": "SDK test"}
        return self._call("PATCH", path, self.admin_token, body)

    def _web(self, command: str, answer: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert json.loads(line) == {"web": answer}, line

    def stop_web(self) -> None:
        self._web("--stop-web", "stopped")

    def start_web(self) -> None:
        self._web("--start-web", "started")

    def stop(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def live() -> Iterator[LiveFlagsvc]:
    if not Path(FLAGSVC_PYTHON).exists():
        pytest.fail(f"FLAGSVC_PYTHON={FLAGSVC_PYTHON} does not exist (run `make install-dev`)")
    server = LiveFlagsvc()
    yield server
    server.stop()


@pytest.fixture
def python() -> str:
    return sys.executable

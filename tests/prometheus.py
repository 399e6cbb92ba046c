"""A real Prometheus (Debian's ``prometheus``) scraping an exporter the caller controls, for tests and benches.

    with Exporter() as exporter, Prometheus([exporter.target]) as prometheus:
        exporter.set(0.5)          # the value of the gauge ``checkout_error_ratio``
        prometheus.wait_for("checkout_error_ratio", 0.5)

Each instance owns a free port, a temporary folder and its process; scrape and
evaluation intervals are ``interval`` seconds (1 by default).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BINARY = os.environ.get("PROMETHEUS_BINARY", "prometheus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary() -> str | None:
    """The prometheus binary, or None when it is not installed."""
    return shutil.which(BINARY) or (BINARY if os.path.isfile(BINARY) else None)


class Exporter:
    """A /metrics endpoint with one gauge, ``checkout_error_ratio``; records when it changes."""

    def __init__(self, value: float = 0.0) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge(
            "checkout_error_ratio", "5xx share of checkout requests", registry=self.registry
        )
        self.gauge.set(value)
        self.changed_at = time.time()
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set(self, value: float) -> float:
        """Change the gauge; returns the wall-clock time of the change."""
        self.gauge.set(value)
        self.changed_at = time.time()
        return self.changed_at

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    """A Prometheus server scraping ``targets`` every ``interval`` seconds."""

    def __init__(self, targets: list[str], *, interval: float = 1.0) -> None:
        found = binary()
        if found is None:
            raise FileNotFoundError("prometheus is not installed: apt-get install -y prometheus")
        self.binary = found
        self.interval = interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="flagsvc-prometheus-"))
        every = f"{int(interval * 1000)}ms"
        config = {
            "global": {"scrape_interval": every, "evaluation_interval": every},
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": targets}]}],
        }
        (self.tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        log = (self.tmp / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response,
            ):
                if response.status == 200:
                    return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"prometheus did not become ready:\n{self.log()}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        path = self.tmp / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def query(self, promql: str) -> list[float]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            document = json.loads(response.read())
        return [float(series["value"][1]) for series in document["data"]["result"]]

    def wait_for(self, promql: str, value: float, timeout: float = 30) -> float:
        """Wait until the query answers ``value``; returns when (wall clock) it first did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, KeyError, ValueError):
                if value in self.query(promql):
                    return time.time()
            time.sleep(0.05)
        raise TimeoutError(f"Prometheus never answered {value} to {promql!r}:\n{self.log()}")

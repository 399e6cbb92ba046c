"""Starts flagsvc the way production runs it, for the benchmarks: PostgreSQL, Redis, uvicorn workers.

Each benchmark gets its own database (created fresh) and Redis database number,
so it never touches development or test data.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_tool(command: str, package: str) -> str:
    """The path of ``command``, installing its Debian package by name if it is missing."""
    found = shutil.which(command)
    if found:
        return found
    print(f"[bench] installing {package} (apt-get)…", flush=True)
    apt = ["apt-get", "install", "-y", "-q", package]
    if os.geteuid() != 0:
        apt.insert(0, "sudo")
    if subprocess.run(apt, capture_output=True).returncode != 0:
        subprocess.run([*apt[:-4], "update", "-q"], capture_output=True)
        subprocess.run(apt, check=True, capture_output=True)
    found = shutil.which(command)
    if not found:
        raise SystemExit(f"{command} is needed: apt-get install {package}")
    return found


def recreate_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


class Stack:
    """A production-shaped flagsvc: settings, a fresh database, and the processes it runs."""

    def __init__(
        self,
        name: str,
        *,
        workers: int = 2,
        redis_db: int = 3,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"flagsvc-{name}-"))
        metrics_dir = self.tmp / "prometheus"
        metrics_dir.mkdir()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))
            },
            "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "AUDIT_CHAIN_KEYS": "bench:" + secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": recreate_database(f"flagsvc_bench_{name}"),
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db + 1}",
            "FLAGSVC_VAR_DIR": str(self.tmp),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LOG_LEVEL": "WARNING",
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback; production sits behind TLS
            **(extra_env or {}),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        import redis

        for db in (redis_db, redis_db + 1):
            redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}").flushdb()

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def python(self, code: str) -> str:
        """Run ``code`` with Django set up against this stack's database; returns its stdout."""
        bootstrap = "import django; django.setup()\n" + code
        result = subprocess.run(
            [PYTHON, "-c", bootstrap], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"setup code failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start_web(self) -> None:
        """The production launcher: uvicorn processes balanced by SO_REUSEPORT (flagsvc/serve.py)."""
        command = [
            PYTHON,
            "-m",
            "flagsvc.serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backlog",
            "4096",
        ]
        self.processes.append(
            subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
        )
        self.wait_ready()

    def start_worker(self, *, beat: bool = True, concurrency: int = 1) -> subprocess.Popen[bytes]:
        command = [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "flagsvc",
            "worker",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
        ]
        if beat:
            command += ["--beat", f"--schedule={self.tmp / 'celerybeat-schedule'}"]
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the server did not become ready on {self.base_url}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def describe(self) -> str:
        return (
            f"python -m flagsvc.serve --workers {self.workers} (uvicorn processes on one SO_REUSEPORT port, "
            f"uvloop, httptools), DEBUG=false, "
            f"PostgreSQL {self.env['DATABASE_URL'].rsplit('@', 1)[-1]}, Redis {self.env['REDIS_URL']}"
        )


@contextlib.contextmanager
def running(name: str, **kwargs: object) -> Iterator[Stack]:
    stack = Stack(name, **kwargs)  # type: ignore[arg-type]
    try:
        stack.manage("migrate", "--no-input", "-v0")
        yield stack
    finally:
        stack.stop()


def machine() -> str:
    cpus = os.cpu_count()
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{cpus} cores ({model}), Python {sys.version.split()[0]}"


def dump(value: object) -> str:
    return json.dumps(value)

"""A production install (`pip install ./sdk_clients/python .`, no dev extras): Redis broker, worker, web and /readyz.

The venv is built as an operator would build it, from a copy of this source tree,
with pip's cache and the package registry; every process then runs from that venv
in a folder outside the source tree, so nothing is imported from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.recorder import Actor
from flags import rollouts, services
from flags.models import RolloutStep

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
# What pip prints when it cannot reach the package registry at all (not a packaging error).
NETWORK_ERRORS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Read timed out",
    "No route to host",
)
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", "var", "build", "dist", "*.egg-info", ".git", "node_modules", "__pycache__", ".*_cache"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    return f"sqlite:///{db['NAME']}"


@pytest.fixture(scope="module")
def production_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv holding `pip install ./sdk_clients/python .` and nothing else.

    The server imports the evaluation engine from the SDK package (one source), so an
    operator installs both in one pip command, which resolves `flagsvc-sdk` from the path.
    """
    base = tmp_path_factory.mktemp("production")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    interpreter = shutil.which("python3.11") or sys.executable
    subprocess.run([interpreter, "-m", "venv", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--retries",
            "1",
            "--timeout",
            "15",
            str(source / "sdk_clients" / "python"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = install.stdout + install.stderr
    if install.returncode != 0:
        if any(signature in output for signature in NETWORK_ERRORS):
            pytest.skip(f"no network to the package registry; pip said:\n{output[-1500:]}")
        pytest.fail(f"`pip install ./sdk_clients/python .` failed:\n{output[-3000:]}")
    return python


@pytest.fixture
def redis_url() -> str:
    url = settings.REDIS_URL or "redis://127.0.0.1:6379/" + os.environ.get("REDIS_TEST_DB", "15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {url} (the production broker)")
    return url


class Processes:
    """Background processes of the test, stopped (and their output kept) at the end."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.running: dict[str, tuple[subprocess.Popen[str], Path]] = {}

    def start(self, name: str, *command: str) -> None:
        log = self.cwd / f"{name}.log"
        process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.running[name] = (process, log)

    def output(self, name: str) -> str:
        return self.running[name][1].read_text()

    def stop(self) -> None:
        for process, _ in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def processes(tmp_path: Path, redis_url: str) -> Iterator[Processes]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "DJANGO_", "VIRTUAL_ENV"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="flagsvc.settings",
        DEBUG="false",
        SECRET_KEY="production-install-test-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        # Its own queue on the shared broker, so no other worker takes these tasks.
        CELERY_TASK_DEFAULT_QUEUE=f"production-install-{os.getpid()}",
        FLAGSVC_VAR_DIR=str(tmp_path / "var"),
    )
    running = Processes(tmp_path, env)
    try:
        yield running
    finally:
        running.stop()


def run(python: Path, processes: Processes, *args: str) -> str:
    result = subprocess.run(
        [str(python), *args],
        cwd=processes.cwd,
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def readyz(url: str, processes: Processes, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as error:
            last = f"{error.code} {error.read().decode()}"
        except OSError as error:
            last = str(error)
        time.sleep(0.3)
    pytest.fail(f"/readyz never answered 200 ({last}); web log:\n{processes.output('web')[-3000:]}")


def test_production_install__worker_on_redis_broker_applies_a_due_ramp_up_and_readyz_is_ready(
    production_python: Path, processes: Processes, transactional_db: None
) -> None:
    python = production_python
    # Given a production venv whose flagsvc is the installed package, not this checkout
    installed = run(python, processes, "-c", "import flagsvc, flags; print(flagsvc.__file__)")
    assert "site-packages" in installed
    run(python, processes, "-m", "django", "migrate", "--no-input")
    # ...with a ramp-up whose second step is already due
    actor = Actor.cli("tester")
    production = services.environment_create(actor=actor, key="production")
    flag = services.flag_create(actor=actor, key="new-checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    plan = rollouts.rollout_plan_create(
        actor=actor,
        flag=flag,
        environment=production,
        steps=[{"percentage": 10}, {"percentage": 50, "after": "1m"}],
        now=timezone.now() - timedelta(minutes=5),
    )

    # When the web server and a worker on the Redis broker run from that venv
    port = free_port()
    processes.start(
        "web", str(python), "-m", "flagsvc.serve", "--port", str(port), "--workers", "1"
    )
    processes.start(
        "worker",
        str(python),
        "-m",
        "celery",
        "-A",
        "flagsvc",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        f"--hostname=production-install-{os.getpid()}@%h",
    )

    # Then /readyz is ready and reports the broker reachable
    body = readyz(f"http://127.0.0.1:{port}", processes)
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}, body
    # ...and a ramp-up task sent through the broker runs on the worker and applies the step
    applied = RolloutStep.objects.filter(plan=plan, applied_at__isnull=False)
    before = applied.count()
    run(python, processes, "-m", "celery", "-A", "flagsvc", "call", "flags.advance_rollouts")
    deadline = time.monotonic() + 45
    while applied.count() == before:
        assert time.monotonic() < deadline, (
            f"the worker did not apply the due step; worker log:\n{processes.output('worker')[-3000:]}"
        )
        time.sleep(0.3)
    assert "flags.advance_rollouts" in processes.output("worker")


def test_production_install__ships_the_admin_templates(production_python: Path) -> None:
    site_packages = subprocess.run(
        [str(production_python), "-c", "import flags, os; print(os.path.dirname(flags.__file__))"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()
    shipped = sorted(p.name for p in Path(site_packages).glob("templates/admin/flags/*/*.html"))
    expected = sorted(p.name for p in (ROOT / "flags").glob("templates/admin/flags/*/*.html"))
    assert expected and shipped == expected

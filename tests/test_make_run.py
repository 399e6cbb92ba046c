"""`make run`'s stack on embedded defaults: web and worker come up, Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    env.update(
        DEBUG="true", FLAGSVC_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="flagsvc.settings"
    )
    return env


@pytest.mark.integration
def test_run__serves_admin_and_static_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    for command in (
        ["migrate", "--no-input"],
        ["collectstatic", "--no-input", "-v0"],
        ["seed_demo"],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    port = free_port()
    runner = subprocess.Popen(
        [sys.executable, "-m", "flagsvc.run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert runner.stdout is not None
        while time.monotonic() < deadline:
            line = runner.stdout.readline()
            output.append(line)
            if "flagsvc is up" in line or runner.poll() is not None:
                break
        while "Ctrl-C stops" not in output[-1] and runner.poll() is None:
            output.append(runner.stdout.readline())
        text = "".join(output)
        password = (tmp_path / "admin-password.txt").read_text().strip()
        assert f"login: admin / {password}" in text, text[-3000:]
        base = f"http://127.0.0.1:{port}"
        for path in ("/healthz", "/admin/login/", "/static/admin/css/base.css"):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                assert response.status == 200
        worker_ready = time.monotonic() + 30
        while "celery@" not in text or " ready." not in text:
            assert time.monotonic() < worker_ready, "the Celery worker did not start"
            output.append(runner.stdout.readline())
            text = "".join(output)
    finally:
        runner.send_signal(signal.SIGINT)
        rest, _ = runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert "stopping" in rest
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    for pattern in (f"--port {port}", str(tmp_path)):  # the web server, the worker
        leftover = subprocess.run(
            ["pgrep", "-f", pattern], capture_output=True, text=True
        ).stdout.strip()
        assert leftover == "", f"still running: {pattern}"

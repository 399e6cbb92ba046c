"""`make run`'s stack on embedded defaults: it says what it does, web and worker come up with
development keys, the runbook works in a second terminal, Ctrl-C stops all of it."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from audit.recorder import Actor
from flags import services
from flags.management.commands.dev_keys import read_exports
from flags.models import ApiToken
from flags.tokens import token_digest
from tests.edge.test_runbook import checkout_like, run_in_one_shell, runbook_commands, shell_env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "FLAGSVC_ENV_FILE")
    }
    env.update(
        DEBUG="true", FLAGSVC_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="flagsvc.settings"
    )
    return env


def run_output_until(runner: subprocess.Popen[str], *markers: str, timeout: float = 90) -> str:
    """The runner's output up to the line holding the last marker (in order)."""
    assert runner.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + timeout
    for marker in markers:
        while not output or marker not in output[-1]:
            assert time.monotonic() < deadline and runner.poll() is None, "".join(output)[-3000:]
            output.append(runner.stdout.readline())
    return "".join(output)


@pytest.mark.integration
def test_run__prepares_says_each_step_prints_keys_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    env = embedded_env(tmp_path)
    port = free_port()
    runner = subprocess.Popen(
        [sys.executable, "-m", "flagsvc.run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        text = run_output_until(runner, "flagsvc is up", "Ctrl-C stops")
        # It said what it did, step by step, before serving
        for step in (
            f"[run] writing the development settings to {tmp_path / 'dev.env'}",
            "[run] migrating the database",
            "[run] collecting static files",
            "[run] seeding the demo data",
            "[run] development keys",
        ):
            assert step in text, text[-3000:]
        password = (tmp_path / "admin-password.txt").read_text().strip()
        assert f"login: admin / {password}" in text, text[-3000:]
        # ...and printed ready-to-use keys, the same it keeps for a second terminal
        kept = read_exports(tmp_path / "dev-keys.env")
        for variable in ("FLAGSVC_SERVER_KEY", "FLAGSVC_CLIENT_KEY", "FLAGSVC_KILL_KEY"):
            assert f"{variable}={kept[variable]}" in text
        assert kept["FLAGSVC_URL"] == f"http://127.0.0.1:{port}"
        base = f"http://127.0.0.1:{port}"
        for path in ("/healthz", "/admin/login/", "/static/admin/css/base.css"):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                assert response.status == 200
        if " ready." not in text:  # the worker may have said so before the web server did
            text += run_output_until(runner, " ready.", timeout=30)
        assert "celery@" in text, "the Celery worker did not start"

        # The runbook works verbatim in a second terminal (no DEBUG, no SECRET_KEY there)
        folder = checkout_like(tmp_path / "checkout", tmp_path)
        terminal = shell_env(FLAGSVC_VAR_DIR=str(tmp_path))
        run_in_one_shell(runbook_commands(), folder, terminal)
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


def test_settings__read_make_runs_env_file_and_real_environment_variables_win(
    tmp_path: Path,
) -> None:
    (tmp_path / "dev.env").write_text("DEBUG=true\nREDIS_URL=redis://from-the-file:6379/0\n")
    env = {k: v for k, v in embedded_env(tmp_path).items() if k != "DEBUG"}
    env["REDIS_URL"] = "redis://from-the-environment:6379/0"
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.REDIS_URL)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.split() == ["True", "redis://from-the-environment:6379/0"]


def dev_keys(tmp_path: Path) -> dict[str, str]:
    call_command("dev_keys", "--url", "http://127.0.0.1:8000", "--file", str(tmp_path / "k.env"))
    return read_exports(tmp_path / "k.env")


def test_dev_keys__reused_on_the_next_run_and_issued_again_when_revoked_or_unknown(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    first = dev_keys(tmp_path)
    assert set(first) == {
        "FLAGSVC_URL",
        "FLAGSVC_SERVER_KEY",
        "FLAGSVC_CLIENT_KEY",
        "FLAGSVC_KILL_KEY",
        "FLAGSVC_ADMIN_TOKEN",
    }
    assert dev_keys(tmp_path) == first  # the next `make run` prints the same keys
    # A revoked key, or a reset database that no longer knows them, gets new ones
    kill = ApiToken.objects.get(digest=token_digest(first["FLAGSVC_KILL_KEY"]))
    services.token_revoke(actor=Actor.cli("tester"), token=kill)
    second = dev_keys(tmp_path)
    assert second["FLAGSVC_KILL_KEY"] != first["FLAGSVC_KILL_KEY"]
    assert second["FLAGSVC_SERVER_KEY"] == first["FLAGSVC_SERVER_KEY"]
    ApiToken.objects.all().delete()
    third = dev_keys(tmp_path)
    for variable in ("FLAGSVC_SERVER_KEY", "FLAGSVC_CLIENT_KEY", "FLAGSVC_ADMIN_TOKEN"):
        assert third[variable] != second[variable]
        assert ApiToken.objects.filter(digest=token_digest(third[variable])).exists()


def test_dev_keys__refuses_outside_development(db: None, settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=true"):
        call_command("dev_keys")

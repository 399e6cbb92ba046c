"""Runs docs/runbook.md's shell commands as written: the incident ones in order, in one shell,
against a real server; the backup-and-restore ones against scratch databases."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from flags import services
from flags.models import FlagState
from tests.edge.conftest import LiveEdge

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
BACKUP_SECTION = "## 5. Back up and restore the database"


def runbook_commands(backups: bool = False) -> list[str]:
    """The ```sh blocks of the runbook: the incident ones, or those of the backup section."""
    text = RUNBOOK.read_text()
    start = text.index(BACKUP_SECTION)
    end = text.index("\n## ", start + 1)
    section = text[start:end] if backups else text[:start] + text[end:]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def checkout_like(folder: Path, var_dir: Path) -> Path:
    """A folder laid out as the repository is for `make run`: manage.py, .venv and var/."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manage.py").symlink_to(ROOT / "manage.py")
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    if var_dir != folder / "var":
        (folder / "var").symlink_to(var_dir)
    return folder


def run_in_one_shell(commands: list[str], cwd: Path, env: dict[str, str]) -> str:
    """The commands as someone pastes them into one terminal, in order; stops at the first failure."""
    script = "".join(
        f"echo {shlex.quote(f'>>> runbook command {i}')}\n{command}\n"
        for i, command in enumerate(commands)
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        failed = re.findall(r">>> runbook command (\d+)", result.stdout)
        command = commands[int(failed[-1])] if failed else "?"
        pytest.fail(
            f"runbook command failed:\n{command}\n--- stdout\n{result.stdout[-3000:]}"
            f"\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result.stdout


def shell_env(**overrides: str) -> dict[str, str]:
    """This process's environment without its Django and flagsvc settings, plus ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FLAGSVC_", "PYTHON", "CELERY_"))
        and key not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
    }
    env.update(overrides)
    return env


def deployment_env(**overrides: str) -> dict[str, str]:
    """A production-like shell: its own settings, never `make run`'s env file."""
    return shell_env(
        DJANGO_SETTINGS_MODULE="flagsvc.settings",
        DEBUG="false",
        SECRET_KEY="runbook-test",
        ALLOWED_HOSTS="localhost",
        FLAGSVC_ENV_FILE="",
        **overrides,
    )


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    return f"sqlite:///{db['NAME']}"


def test_runbook__has_commands_for_every_way_to_kill_confirm_restore_audit_and_back_up() -> None:
    text = "\n".join(runbook_commands())
    for fragment in (
        "source var/dev-keys.env",
        "/kill/",
        "api/v1/kill/",
        "FLAGSVC_TRIGGER_URL",
        ".venv/bin/python manage.py kill",
        "/api/v1/kills/",
        "/restore/",
        ".venv/bin/python manage.py restore",
        "/api/v1/audit/",
        "audit_verify",
    ):
        assert fragment in text
    assert not re.search(r"(^|\s)python manage\.py", text)  # only the venv's python has Django
    backups = "\n".join(runbook_commands(backups=True))
    for fragment in ("pg_dump", "pg_restore", ".backup", ".restore"):
        assert fragment in backups
    assert "flush" not in RUNBOOK.read_text().lower()  # caches follow the database themselves


@pytest.mark.integration
def test_runbook__every_command_runs(
    live_edge: LiveEdge, world: dict[str, Any], tmp_path: Path
) -> None:
    actor, production = world["actor"], world["production"]
    for key in ("payments.provider-b", "payments.3ds-v2"):
        flag = services.flag_create(actor=actor, key=key, tags=["payments"])
        services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    # A deployment's folder: the keys file the runbook sources, as `make run` writes it.
    folder = checkout_like(tmp_path / "deployment", tmp_path / "deployment" / "var")
    (folder / "var").mkdir()
    keys = {
        "FLAGSVC_URL": live_edge.url,
        "FLAGSVC_KILL_KEY": world["tokens"]["kill"],
        "FLAGSVC_SERVER_KEY": world["tokens"]["server"],
        "FLAGSVC_ADMIN_TOKEN": world["tokens"]["admin"],
    }
    (folder / "var" / "dev-keys.env").write_text(
        "".join(f"export {name}={value}\n" for name, value in keys.items())
    )
    env = deployment_env(DATABASE_URL=_database_url(), REDIS_URL=settings.REDIS_URL)
    commands = runbook_commands()
    assert len(commands) >= 14
    run_in_one_shell(commands, folder, env)
    # The last kill/restore pair left the flag live again, and the trail is intact.
    assert not FlagState.objects.get(flag__key="new-checkout", environment=production).killed
    assert (folder / "incident-audit.csv").read_text().startswith("sequence,")


def block(commands: list[str], fragment: str) -> str:
    (found,) = [command for command in commands if fragment in command]
    return found


def kill_again(folder: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [".venv/bin/python", "manage.py", "kill", "new-checkout", "-e", "production", "-r", "x"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def backup_round_trip(folder: Path, env: dict[str, str], backup: str, restore: str) -> None:
    """Demo data, a backup, a kill after it; the restore brings back the flag as it was."""
    for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        subprocess.run([".venv/bin/python", "manage.py", *command], cwd=folder, env=env, check=True)
    run_in_one_shell([backup], folder, env)
    assert "KILLED new-checkout" in kill_again(folder, env)
    assert "already KILLED" in kill_again(folder, env)
    output = run_in_one_shell([restore], folder, env)
    assert "audit chain OK" in output, output
    # The kill made after the backup is gone: killing now changes the flag again.
    assert "KILLED new-checkout" in kill_again(folder, env)


@pytest.fixture
def scratch_postgres_url() -> Iterator[str]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("needs pg_dump and pg_restore (PostgreSQL's client tools)")
    db = connection.settings_dict
    name = f"flagsvc_backup_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    server = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{db['USER']}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(**server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backup_round_trip_as_written(tmp_path: Path, backup: str, restore: str, **env: str) -> None:
    """Runs the backup section's two blocks (found by ``backup`` and ``restore``) on a deployment."""
    (tmp_path / "var").mkdir()
    folder = checkout_like(tmp_path / "deployment", tmp_path / "var")
    deployment = deployment_env(FLAGSVC_VAR_DIR=str(tmp_path / "var"), **env)
    commands = runbook_commands(backups=True)
    backup_round_trip(folder, deployment, block(commands, backup), block(commands, restore))


@pytest.mark.integration
def test_runbook__postgresql_backup_and_restore_commands_bring_back_the_backed_up_state(
    scratch_postgres_url: str, tmp_path: Path
) -> None:
    backup_round_trip_as_written(
        tmp_path, "pg_dump", "pg_restore", DATABASE_URL=scratch_postgres_url
    )


@pytest.mark.integration
def test_runbook__sqlite_backup_and_restore_commands_bring_back_the_backed_up_state(
    tmp_path: Path,
) -> None:
    if not shutil.which("sqlite3"):
        pytest.skip("needs the sqlite3 command-line shell")
    backup_round_trip_as_written(tmp_path, ".backup", ".restore")

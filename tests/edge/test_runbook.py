"""Runs every shell command of docs/runbook.md, in order, against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from flags import services
from flags.models import FlagState
from tests.edge.conftest import LiveEdge

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"


def runbook_commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), flags=re.S)


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    return f"sqlite:///{db['NAME']}"


def test_runbook__has_commands_for_every_way_to_kill_confirm_restore_and_audit() -> None:
    text = "\n".join(runbook_commands())
    for fragment in (
        "/kill/",
        "api/v1/kill/",
        "FLAGSVC_TRIGGER_URL",
        "manage.py kill",
        "/api/v1/kills/",
        "/restore/",
        "manage.py restore",
        "/api/v1/audit/",
        "audit_verify",
    ):
        assert fragment in text


def test_runbook__every_command_runs(
    live_edge: LiveEdge, world: dict[str, Any], tmp_path: Path
) -> None:
    actor, production = world["actor"], world["production"]
    for key in ("payments.provider-b", "payments.3ds-v2"):
        flag = services.flag_create(actor=actor, key=key, tags=["payments"])
        services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    _, secret = services.trigger_create(
        actor=actor, name="apm", flag=world["checkout"], environment=production
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
        "DEBUG": "false",
        "SECRET_KEY": "runbook-test",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "FLAGSVC_URL": live_edge.url,
        "FLAGSVC_KILL_KEY": world["tokens"]["kill"],
        "FLAGSVC_SERVER_KEY": world["tokens"]["server"],
        "FLAGSVC_ADMIN_TOKEN": world["tokens"]["admin"],
        "FLAGSVC_TRIGGER_URL": f"{live_edge.url}/api/v1/triggers/{secret}/",
    }
    env.pop("PYTHONPATH", None)
    commands = runbook_commands()
    assert len(commands) >= 12
    # A deployment's directory: manage.py there (a link to ours), files written land here.
    (tmp_path / "manage.py").symlink_to(ROOT / "manage.py")
    for command in commands:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (
            f"runbook command failed:\n{command}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    # The last kill/restore pair left the flag live again, and the trail is intact.
    assert not FlagState.objects.get(flag__key="new-checkout", environment=production).killed
    assert (tmp_path / "incident-audit.csv").read_text().startswith("sequence,")

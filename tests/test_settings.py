"""Production settings: refuse to start unsafely, and pass Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "flagsvc.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.integration
def test_check_deploy__production_settings__clean() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="x" * 20 + "production-secret-key-with-enough-entropy-1234567890",
        ALLOWED_HOSTS="flags.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "flags.example.com"}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "s" * 60}, "ALLOWED_HOSTS is empty"),
    ],
)
def test_production__refuses_to_start_without_secrets(env: dict[str, str], message: str) -> None:
    result = manage("check", **env)
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.integration
def test_admin_login_throttle__configured_from_the_environment() -> None:
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, "
        "s.AXES_COOLOFF_TIME.total_seconds(), s.AXES_LOCKOUT_PARAMETERS, "
        "list(s.AXES_IPWARE_META_PRECEDENCE_ORDER))",
        DEBUG="true",
        ADMIN_LOGIN_FAILURE_LIMIT="4",
        ADMIN_LOGIN_COOLOFF_MINUTES="2.5",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "4 150.0 ['ip_address', 'username'] ['REMOTE_ADDR']"

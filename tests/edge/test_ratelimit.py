"""SDK request limits by key kind, and the older single setting still honoured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def limits_with(**environment: str) -> tuple[int, int]:
    """(server, client) requests per second the settings give for these variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDK_RATE_LIMIT")} | environment
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SDK_RATE_LIMIT_SERVER_PER_SECOND, s.SDK_RATE_LIMIT_CLIENT_PER_SECOND)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "flagsvc.settings_test"},
        capture_output=True,
        text=True,
        check=True,
    )
    server, client = result.stdout.split()
    return int(server), int(client)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, (2000, 200)),
        ({"SDK_RATE_LIMIT_PER_SECOND": "0"}, (0, 0)),
        ({"SDK_RATE_LIMIT_PER_SECOND": "50", "SDK_RATE_LIMIT_CLIENT_PER_SECOND": "20"}, (50, 20)),
        ({"SDK_RATE_LIMIT_SERVER_PER_SECOND": "5000"}, (5000, 200)),
    ],
)
def test_limits__per_key_kind__older_single_setting_is_the_default_of_both(
    environment: dict[str, str], expected: tuple[int, int]
) -> None:
    assert limits_with(**environment) == expected

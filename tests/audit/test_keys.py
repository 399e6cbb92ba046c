"""AUDIT_CHAIN_KEYS: production refuses to start without a real key; development has one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.keys import parse_chain_keys

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "production-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "flags.example.com",
}


def manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL", "AUDIT_CHAIN_KEYS")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "flagsvc.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (None, "AUDIT_CHAIN_KEYS is not set"),
        ("dev:flagsvc-development-only-audit-chain-key", "AUDIT_CHAIN_KEYS is not set"),
        ("k1:short", "secret of key 'k1' is too short"),
        ("no-secret-here", "entry 'no-secret-here' has no secret"),
    ],
)
def test_production__refuses_to_start_without_a_real_audit_chain_key(
    keys: str | None, message: str
) -> None:
    result = manage_check(**PRODUCTION, **({"AUDIT_CHAIN_KEYS": keys} if keys else {}))
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.integration
def test_production__with_a_key__starts() -> None:
    result = manage_check(**PRODUCTION, AUDIT_CHAIN_KEYS="k2026:" + "s" * 43)
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_development__starts_with_the_development_key() -> None:
    result = manage_check(DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_parse__first_key_signs_and_order_is_kept() -> None:
    assert list(parse_chain_keys(["new:s3cr:et", " old:older "])) == ["new", "old"]
    assert parse_chain_keys(["new:s3cr:et"])["new"] == "s3cr:et"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["a:x", "a:y"], "names key id 'a' twice"),
        (["bad id:x"], "key id 'bad id' is invalid"),
        ([":x"], "key id '' is invalid"),
    ],
)
def test_parse__bad_entries_say_what_to_fix(specs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_chain_keys(specs)

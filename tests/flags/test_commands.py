"""Management commands: demo data, and the kill switch with only the database reachable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit.models import AuditEvent
from audit.verify import audit_chain_verify
from flags.models import Environment, Flag, FlagState, RolloutPlan
from flags.selectors import snapshot_build
from flagsvc_sdk.engine import Engine

pytestmark = pytest.mark.django_db


def test_seed_demo__creates_realistic_data_and_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with override_settings(VAR_DIR=tmp_path):
        call_command("seed_demo")
        first = capsys.readouterr().out
        counts = (
            Environment.objects.count(),
            Flag.objects.count(),
            FlagState.objects.count(),
            AuditEvent.objects.count(),
        )
        call_command("seed_demo")
        second = capsys.readouterr().out
    assert counts == (
        Environment.objects.count(),
        Flag.objects.count(),
        FlagState.objects.count(),
        AuditEvent.objects.count(),
    )
    assert {e.key for e in Environment.objects.all()} == {"development", "staging", "production"}
    (plan,) = RolloutPlan.objects.all()  # a ramp-up for `make run`'s worker to carry on
    assert plan.flag.key == "new-checkout" and plan.status == "scheduled"
    password = (tmp_path / "admin-password.txt").read_text().strip()
    assert f"admin / {password}" in first and f"admin / {password}" in second
    production = snapshot_build(Environment.objects.get(key="production"))
    engine = Engine.from_snapshot(production)
    rollout = [
        engine.evaluate("new-checkout", {"targetingKey": f"u{i}"}).value for i in range(4000)
    ]
    assert 0.22 < sum(rollout) / len(rollout) < 0.28
    assert (
        engine.evaluate("eu-cookie-banner-v2", {"targetingKey": "u", "country": "DE"}).value is True
    )
    assert (
        engine.evaluate("search-ranking", {"targetingKey": "u", "email": "a@example.com"}).value
        == "hybrid"
    )
    assert Flag.objects.filter(tags__name="kill-switch").exists()
    assert audit_chain_verify().ok


def test_kill_and_restore_commands(
    make_flag: Callable[..., Flag], production: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = make_flag()
    call_command(
        "kill",
        "new-checkout",
        "--environment",
        "production",
        "--reason",
        "500s on pay",
        "--actor",
        "oncall-jane",
    )
    assert "KILLED new-checkout in production" in capsys.readouterr().out
    state = FlagState.objects.get(flag=flag, environment=production)
    assert state.killed and state.killed_by == "oncall-jane" and state.kill_reason == "500s on pay"
    call_command("kill", "new-checkout", "-e", "production", "-r", "again")
    assert "already KILLED" in capsys.readouterr().out
    call_command("restore", "new-checkout", "-e", "production", "-r", "fixed in 4.2.1")
    assert "RESTORED" in capsys.readouterr().out
    assert not FlagState.objects.get(flag=flag, environment=production).killed
    assert list(
        AuditEvent.objects.filter(flag_key="new-checkout")
        .values_list("action", flat=True)
        .order_by("sequence")
    ) == ["flag.create", "flag.kill", "flag.restore"]


def test_kill_command__unknown_flag_or_environment__clear_error(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    make_flag()
    with pytest.raises(CommandError, match="No flag 'nope'"):
        call_command("kill", "nope", "-e", "production", "-r", "x")
    with pytest.raises(
        CommandError, match="No environment 'prod'; known: development, staging, production"
    ):
        call_command("kill", "new-checkout", "-e", "prod", "-r", "x")
    with pytest.raises(CommandError, match="Give a reason"):
        call_command("kill", "new-checkout", "-e", "production", "-r", " ")

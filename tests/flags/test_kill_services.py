"""Tag kills (all or none, one incident) and trigger URLs at the service level."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audit import recorder
from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.errors import NotFound
from flags.models import Environment, Flag, FlagState, KillTrigger
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db


def test_kill_by_tag__kills_every_tagged_flag_under_one_incident(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    for key in ("pay-a", "pay-b", "pay-c"):
        make_flag(key, tags=["payments"])
    make_flag("search", tags=["search"])
    version = refreshed(production).version
    outcome = services.flag_kill_by_tag(
        actor=actor, tag="payments", environment=production, reason="PSP outage"
    )
    assert sorted(s.flag.key for s in outcome.changed) == ["pay-a", "pay-b", "pay-c"]
    assert outcome.environment_version == version + 1 == refreshed(production).version
    killed = FlagState.objects.filter(environment=production, killed_at__isnull=False)
    assert {s.kill_incident for s in killed} == {outcome.incident_id}
    events = AuditEvent.objects.filter(action="flag.kill")
    assert events.count() == 3 and {e.incident_id for e in events} == {outcome.incident_id}
    assert not FlagState.objects.get(flag__key="search", environment=production).killed


def test_kill_by_tag__failure_midway__kills_none(
    make_flag: Callable[..., Flag],
    production: Environment,
    actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("pay-a", "pay-b", "pay-c"):
        make_flag(key, tags=["payments"])
    real = recorder.audit_record
    calls = {"n": 0}

    def fail_on_second(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("audit write failed")
        return real(**kwargs)

    monkeypatch.setattr(recorder, "audit_record", fail_on_second)
    with pytest.raises(RuntimeError):
        services.flag_kill_by_tag(
            actor=actor, tag="payments", environment=production, reason="PSP outage"
        )
    assert not FlagState.objects.filter(killed_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="flag.kill").exists()


def test_kill_by_tag__already_killed_flags__untouched(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    a = make_flag("pay-a", tags=["payments"])
    make_flag("pay-b", tags=["payments"])
    first = services.flag_kill(
        actor=Actor.cli("alice"), flag=a, environment=production, reason="earlier"
    )
    outcome = services.flag_kill_by_tag(
        actor=actor, tag="payments", environment=production, reason="all"
    )
    assert [s.flag.key for s in outcome.changed] == ["pay-b"]
    assert (
        FlagState.objects.get(flag=a, environment=production).kill_incident
        == first.state.kill_incident
    )
    again = services.flag_kill_by_tag(
        actor=actor, tag="payments", environment=production, reason="again"
    )
    assert again.changed == [] and again.incident_id is None


def test_kill_by_tag__unknown_tag__not_found(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    make_flag()
    with pytest.raises(NotFound, match="No live flag carries the tag 'nope'"):
        services.flag_kill_by_tag(actor=actor, tag="nope", environment=production, reason="x")


def test_restore_by_tag__restores_the_tagged_kills(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    for key in ("pay-a", "pay-b"):
        make_flag(key, tags=["payments"])
    killed = services.flag_kill_by_tag(
        actor=actor, tag="payments", environment=production, reason="outage"
    )
    restored = services.flag_restore_by_tag(
        actor=actor, tag="payments", environment=production, reason="over"
    )
    assert len(restored.changed) == 2 and restored.incident_id == killed.incident_id
    assert not FlagState.objects.filter(killed_at__isnull=False).exists()


def test_trigger__secret_shown_once_stored_as_digest(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    trigger, secret = services.trigger_create(
        actor=actor, name="datadog", flag=make_flag(), environment=production
    )
    assert secret.startswith("fsv_trigger_") and len(secret) >= len("fsv_trigger_") + 43
    assert secret not in trigger.digest and trigger.hint == secret[-4:]
    event = AuditEvent.objects.get(action="trigger.create")
    assert secret not in event.after_json and trigger.digest not in event.after_json


def test_trigger_fire__kills_with_trigger_actor_and_caller_ip(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    trigger, _ = services.trigger_create(
        actor=actor, name="datadog", flag=flag, environment=production
    )
    outcome = services.trigger_fire(
        trigger=trigger, source_ip="203.0.113.9", note="checkout 5xx > 5%"
    )
    assert outcome.changed and outcome.state.killed_by == "trigger:datadog"
    event = AuditEvent.objects.get(action="flag.kill")
    assert (event.actor, event.actor_kind, event.source_ip) == (
        "trigger:datadog",
        "trigger",
        "203.0.113.9",
    )
    assert "checkout 5xx" in event.reason
    services.trigger_fire(trigger=trigger, source_ip="203.0.113.9")
    repeat = AuditEvent.objects.get(action="trigger.fire")
    assert "already killed, nothing changed" in repeat.reason
    assert AuditEvent.objects.filter(action="flag.kill").count() == 1


def test_trigger_revoke__audited(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    trigger, _ = services.trigger_create(
        actor=actor, name="datadog", flag=make_flag(), environment=production, action="restore"
    )
    services.trigger_revoke(actor=actor, trigger=trigger, reason="rotated after the incident")
    assert KillTrigger.objects.get().revoked
    event = AuditEvent.objects.get(action="trigger.revoke")
    assert (event.actor, event.target_type) == (actor.name, "trigger")
    assert event.target_key.startswith("datadog (")  # the name and a hint of the secret
    assert (event.flag_key, event.environment_key) == ("new-checkout", "production")
    assert event.before["revoked"] is False and event.after["revoked"] is True
    assert event.reason == "rotated after the incident"

"""Services: validated, versioned, audited in the same transaction, published after commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audit import recorder
from audit.models import AuditEvent
from audit.recorder import Actor
from flags import publish, services
from flags.errors import AlreadyExists, FlagArchived, ValidationFailed, VersionConflict
from flags.models import Environment, Flag, FlagState
from flags.selectors import snapshot_build
from flagsvc_sdk.engine import Engine
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db

SPLIT_25 = {"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]}


def test_flag_create__gives_an_off_state_in_every_environment(
    make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    flag = make_flag("new-checkout", tags=["payments"], owner="payments-team")
    states = FlagState.objects.filter(flag=flag)
    assert {s.environment.key for s in states} == set(environments)
    assert all(not s.enabled and s.default_serve == {"variant": "on"} for s in states)
    event = AuditEvent.objects.get(action="flag.create")
    assert event.actor == "tester" and event.flag_key == "new-checkout"
    assert event.after["tags"] == ["payments"] and event.before is None


def test_environment_create__gives_a_state_for_every_flag(
    make_flag: Callable[..., Flag], actor: Actor
) -> None:
    make_flag("a")
    make_flag("b")
    environment = services.environment_create(actor=actor, key="qa")
    assert FlagState.objects.filter(environment=environment).count() == 2


def test_environment_create__copy_from__copies_states_and_segments(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.segment_create(actor=actor, environment=production, key="staff", included=["u1"])
    services.flag_state_update(
        actor=actor, flag=flag, environment=production, enabled=True, default_serve=SPLIT_25
    )
    copy = services.environment_create(actor=actor, key="production-eu", copy_from=production)
    state = FlagState.objects.get(flag=flag, environment=copy)
    assert state.enabled and state.default_serve == SPLIT_25
    assert copy.segments.get().included == ["u1"]


def test_every_write__bumps_version_and_publishes_after_commit(
    make_flag: Callable[..., Flag],
    production: Environment,
    actor: Actor,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published: list[tuple[str, int]] = []
    monkeypatch.setattr(
        publish,
        "environment_version_published",
        lambda _id, key, version, *changed, **identity: published.append((key, version)),
    )
    flag = make_flag()
    start = refreshed(production).version
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
        assert published == []  # nothing is published before commit
    assert len(callbacks) == 1
    for callback in callbacks:
        callback()
    assert published == [("production", start + 1)]
    assert refreshed(production).version == start + 1


def test_audit_failure__rolls_the_change_back(
    make_flag: Callable[..., Flag],
    production: Environment,
    actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag = make_flag()
    version = refreshed(production).version

    def broken_audit(**_: Any) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(recorder, "audit_record", broken_audit)
    with pytest.raises(RuntimeError):
        services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    with pytest.raises(RuntimeError):
        services.flag_kill(actor=actor, flag=flag, environment=production, reason="x")
    with pytest.raises(RuntimeError):
        services.flag_create(actor=actor, key="other")
    state = FlagState.objects.get(flag=flag, environment=production)
    assert not state.enabled and not state.killed and state.version == 1
    assert refreshed(production).version == version
    assert not Flag.objects.filter(key="other").exists()


def _contexts() -> list[dict[str, Any]]:
    countries = ["DE", "FR", "US", "JP"]
    return [
        {"targetingKey": f"user-{i}", "country": countries[i % 4], "age": i % 90}
        for i in range(1000)
    ]


def _evaluate_all(environment: Environment, key: str) -> list[tuple[Any, str | None, str]]:
    evaluator = Engine.from_snapshot(snapshot_build(refreshed(environment)))
    return [
        (r.value, r.variant, r.reason) for r in (evaluator.evaluate(key, c) for c in _contexts())
    ]


def test_kill_then_restore__1000_contexts_evaluate_exactly_as_before(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        enabled=True,
        targets=[{"variant": "on", "values": ["user-7"]}],
        rules=[
            {
                "id": "fr",
                "conditions": [{"attribute": "country", "operator": "equals", "value": "FR"}],
                "serve": {"variant": "on"},
            }
        ],
        default_serve=SPLIT_25,
    )
    before = _evaluate_all(production, "new-checkout")
    definition = FlagState.objects.get(flag=flag, environment=production).definition()

    outcome = services.flag_kill(
        actor=actor, flag=flag, environment=production, reason="errors spiking"
    )
    killed = _evaluate_all(production, "new-checkout")
    assert outcome.changed and set(killed) == {(False, "off", "DISABLED")}
    assert FlagState.objects.get(flag=flag, environment=production).definition() == definition

    services.flag_restore(actor=actor, flag=flag, environment=production, reason="fixed")
    assert _evaluate_all(production, "new-checkout") == before
    assert {r for r in before} >= {
        (True, "on", "TARGETING_MATCH"),
        (True, "on", "SPLIT"),
        (False, "off", "SPLIT"),
    }


def test_kill__already_killed__writes_nothing_and_returns_the_existing_kill(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    first = services.flag_kill(
        actor=Actor.cli("alice"), flag=flag, environment=production, reason="first"
    )
    events = AuditEvent.objects.count()
    second = services.flag_kill(
        actor=Actor.cli("bob"), flag=flag, environment=production, reason="second"
    )
    assert not second.changed
    assert second.state.killed_by == "alice" and second.state.kill_reason == "first"
    assert second.environment_version == first.environment_version == refreshed(production).version
    assert AuditEvent.objects.count() == events


def test_kill__records_who_when_why_and_incident(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    outcome = services.flag_kill(
        actor=Actor.cli("alice"), flag=flag, environment=production, reason="checkout 500s"
    )
    event = AuditEvent.objects.get(action="flag.kill")
    assert event.reason == "checkout 500s" and event.environment_key == "production"
    assert event.before["kill"] is None and event.after["kill"]["by"] == "alice"
    assert event.incident_id == outcome.state.kill_incident is not None


def test_kill__needs_a_reason_of_at_most_500_characters(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    with pytest.raises(ValidationFailed, match="Give a reason"):
        services.flag_kill(actor=actor, flag=flag, environment=production, reason="  ")
    with pytest.raises(ValidationFailed, match="keep it to 500"):
        services.flag_kill(actor=actor, flag=flag, environment=production, reason="x" * 501)
    assert not FlagState.objects.get(flag=flag, environment=production).killed


def test_restore__not_killed__writes_nothing(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    events = AuditEvent.objects.count()
    assert not services.flag_restore(
        actor=actor, flag=flag, environment=production, reason="x"
    ).changed
    assert AuditEvent.objects.count() == events


def test_edit_while_killed__stays_killed_and_restore_serves_the_edit(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.flag_kill(actor=actor, flag=flag, environment=production, reason="incident")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    assert set(_evaluate_all(production, "new-checkout")) == {(False, "off", "DISABLED")}
    services.flag_restore(actor=actor, flag=flag, environment=production, reason="ok")
    assert set(_evaluate_all(production, "new-checkout")) == {(True, "on", "STATIC")}


def test_state_update__stale_version__conflicts_and_changes_nothing(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.flag_state_update(
        actor=actor, flag=flag, environment=production, enabled=True, expected_version=1
    )
    with pytest.raises(VersionConflict, match="is at version 2, not 1"):
        services.flag_state_update(
            actor=actor, flag=flag, environment=production, enabled=False, expected_version=1
        )
    assert FlagState.objects.get(flag=flag, environment=production).enabled


def test_state_update__invalid__raises_with_fields_and_writes_nothing(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as error:
        services.flag_state_update(
            actor=actor,
            flag=flag,
            environment=production,
            enabled=True,
            default_serve={"split": [{"variant": "on", "weight": 0}]},
        )
    assert "default_serve.split" in error.value.fields
    assert AuditEvent.objects.count() == events
    assert not FlagState.objects.get(flag=flag, environment=production).enabled


def test_state_update__no_change__writes_nothing(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    events, version = AuditEvent.objects.count(), refreshed(production).version
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=False)
    assert (AuditEvent.objects.count(), refreshed(production).version) == (events, version)


def test_flag_create__duplicate_or_bad_key__refused(
    make_flag: Callable[..., Flag], actor: Actor
) -> None:
    make_flag("dup")
    with pytest.raises(AlreadyExists):
        services.flag_create(actor=actor, key="dup")
    with pytest.raises(ValidationFailed, match="not valid"):
        services.flag_create(actor=actor, key="Bad Key")
    with pytest.raises(ValidationFailed, match="needs its variants"):
        services.flag_create(actor=actor, key="color", type="string")


def test_flag_update__removing_a_variant_in_use__names_the_environment(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag(
        "theme",
        type="string",
        variants={"dark": "d", "light": "l", "auto": "a"},
        off_variant="light",
    )
    services.flag_state_update(
        actor=actor, flag=flag, environment=production, default_serve={"variant": "auto"}
    )
    with pytest.raises(ValidationFailed) as error:
        services.flag_update(actor=actor, flag=flag, variants={"dark": "d", "light": "l"})
    assert "environments.production.default_serve.variant" in error.value.fields
    assert Flag.objects.get(pk=flag.pk).variants == {"dark": "d", "light": "l", "auto": "a"}


def test_flag_update__metadata_only__audits_without_bumping_versions(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    version = refreshed(production).version
    services.flag_update(actor=actor, flag=flag, owner="search-team", tags=["search"])
    event = AuditEvent.objects.filter(action="flag.update").get()
    assert (
        event.before["owner"] == ""
        and event.after["owner"] == "search-team"
        and event.after["tags"] == ["search"]
    )
    assert refreshed(production).version == version
    with pytest.raises(ValidationFailed, match="cannot be changed"):
        services.flag_update(actor=actor, flag=flag, type="string")


def test_archive__prerequisite_of_another_flag__refused(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    base = make_flag("payments-api")
    dependent = make_flag("checkout")
    services.flag_state_update(
        actor=actor,
        flag=dependent,
        environment=production,
        prerequisites=[{"flag": "payments-api", "variant": "on"}],
    )
    with pytest.raises(ValidationFailed, match="prerequisite of checkout \\(production\\)"):
        services.flag_archive(actor=actor, flag=base)


def test_archive__flag_leaves_the_snapshot_and_refuses_edits(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.flag_archive(actor=actor, flag=flag, reason="shipped")
    assert "new-checkout" not in snapshot_build(refreshed(production))["flags"]
    with pytest.raises(FlagArchived):
        services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    services.flag_unarchive(actor=actor, flag=flag)
    assert "new-checkout" in snapshot_build(refreshed(production))["flags"]


def test_segment__used_by_a_rule__cannot_be_deleted(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    segment = services.segment_create(
        actor=actor, environment=production, key="beta", included=["u1"]
    )
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        enabled=True,
        rules=[
            {
                "conditions": [{"operator": "in_segment", "value": "beta"}],
                "serve": {"variant": "off"},
            }
        ],
    )
    with pytest.raises(ValidationFailed, match="used by new-checkout"):
        services.segment_delete(actor=actor, segment=segment)
    services.segment_update(actor=actor, segment=segment, included=["u2"])
    evaluator = Engine.from_snapshot(snapshot_build(refreshed(production)))
    assert evaluator.evaluate("new-checkout", {"targetingKey": "u2"}).variant == "off"
    assert evaluator.evaluate("new-checkout", {"targetingKey": "u1"}).variant == "on"


def test_every_service_write__is_one_audit_event_with_the_actor(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    alice = Actor("user", "alice", request_id="req-1", source_ip="10.0.0.5")
    flag = services.flag_create(actor=alice, key="f")
    services.flag_state_update(
        actor=alice, flag=flag, environment=production, enabled=True, reason="launch"
    )
    services.flag_kill(actor=alice, flag=flag, environment=production, reason="bad")
    services.flag_restore(actor=alice, flag=flag, environment=production, reason="good")
    services.flag_archive(actor=alice, flag=flag)
    events = list(AuditEvent.objects.filter(actor="alice").order_by("sequence"))
    assert [e.action for e in events] == [
        "flag.create",
        "flag_state.update",
        "flag.kill",
        "flag.restore",
        "flag.archive",
    ]
    assert all(e.request_id == "req-1" and e.source_ip == "10.0.0.5" for e in events)


def test_segment_create__a_string_instead_of_a_list__refused(
    production: Environment, actor: Actor
) -> None:
    with pytest.raises(ValidationFailed, match="included must be a list"):
        services.segment_create(actor=actor, environment=production, key="beta", included="user-1")


def test_segment_create__keeps_the_name_and_description_it_was_given(
    production: Environment, actor: Actor
) -> None:
    segment = services.segment_create(
        actor=actor, environment=production, key="staff", name="Staff", description="Employees"
    )
    segment.refresh_from_db()
    assert segment.name == "Staff" and segment.description == "Employees"
    event = AuditEvent.objects.get(action="segment.create")
    assert event.after["name"] == "Staff" and event.target_key == "staff@production"

"""Guardrails against a real Prometheus (1 s scrapes) scraping an exporter the test controls.

A rollout ramps while the exporter reports a healthy error ratio; when the ratio jumps,
the guardrail pauses, steps back or kills as configured, exactly once, audited as
``guardrail:<name>``. A Prometheus that cannot answer blocks the plan's next step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import guardrails, rollouts, services
from flags.errors import AlreadyExists, ValidationFailed
from flags.models import Environment, Flag, FlagState, Guardrail, GuardrailCheck, RolloutPlan
from tests import prometheus as prom

QUERY = "max(checkout_error_ratio)"
HEALTHY, BROKEN = 0.01, 0.4


@pytest.fixture(scope="module")
def exporter() -> Iterator[prom.Exporter]:
    with prom.Exporter(HEALTHY) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(exporter: prom.Exporter) -> Iterator[prom.Prometheus]:
    if prom.binary() is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (.ci/run installs the Debian package)")
        pytest.skip("prometheus is not installed: apt-get install -y prometheus")
    with prom.Prometheus([exporter.target], interval=1.0) as server:
        server.wait_for(QUERY, HEALTHY)
        yield server


@pytest.fixture
def ratio(
    exporter: prom.Exporter, prometheus: prom.Prometheus
) -> Iterator[Callable[[float], None]]:
    def set_and_wait(value: float) -> None:
        exporter.set(value)
        prometheus.wait_for(QUERY, value)

    set_and_wait(HEALTHY)
    yield set_and_wait
    exporter.set(HEALTHY)


@pytest.fixture
def checkout(make_flag: Callable[..., Flag], production: Environment, actor: Actor) -> Flag:
    flag = make_flag("checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return flag


def ramp(flag: Flag, environment: Environment, actor: Actor) -> RolloutPlan:
    return rollouts.rollout_plan_create(
        actor=actor,
        flag=flag,
        environment=environment,
        steps=[
            {"percentage": 10},
            {"percentage": 50, "after": 1},
            {"percentage": 100, "after": "1h"},
        ],
    )


def guard(flag: Flag, environment: Environment, actor: Actor, url: str, **fields: Any) -> Guardrail:
    return guardrails.guardrail_create(
        actor=actor,
        flag=flag,
        environment=environment,
        name=fields.pop("name", "checkout-errors"),
        query=fields.pop("query", QUERY),
        threshold=fields.pop("threshold", 0.05),
        prometheus_url=url,
        **fields,
    )


def percentage(flag: Flag, environment: Environment) -> float:
    state = FlagState.objects.get(flag=flag, environment=environment)
    return state.default_serve["split"][0]["weight"] / 100


def tick() -> int:
    """One beat tick of each task, guardrails first (as they are scheduled)."""
    guardrails.guardrails_check_due()
    return rollouts.rollout_plans_advance_due()


def actions_by(actor_name: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor=actor_name)
        .order_by("sequence")
        .values_list("action", flat=True)
    )


@pytest.mark.integration
@pytest.mark.parametrize("action", ["pause", "step_back", "kill"])
def test_guardrail__error_ratio_jumps_mid_ramp__acts_once_as_configured_and_audited(
    action: str,
    ratio: Callable[[float], None],
    prometheus: prom.Prometheus,
    checkout: Flag,
    production: Environment,
    actor: Actor,
) -> None:
    # Given a plan ramping while the exporter reports 1% errors
    plan = ramp(checkout, production, actor)
    guard(checkout, production, actor, prometheus.url, action=action)
    assert tick() == 1
    assert percentage(checkout, production) == 10
    time.sleep(1.1)
    assert tick() == 1
    assert percentage(checkout, production) == 50

    # When the error ratio jumps to 40% and Prometheus has scraped it
    ratio(BROKEN)
    tick()
    tick()  # the breach goes on: nothing more happens

    # Then the guardrail acted exactly once, as guardrail:checkout-errors, with the numbers
    plan.refresh_from_db()
    state = FlagState.objects.get(flag=checkout, environment=production)
    expected = {
        "pause": ["rollout_plan.pause", "guardrail.breach"],
        "step_back": ["rollout_plan.step_back", "rollout_plan.pause", "guardrail.breach"],
        "kill": ["flag.kill", "rollout_plan.pause", "guardrail.breach"],
    }[action]
    assert actions_by("guardrail:checkout-errors") == expected
    breach = AuditEvent.objects.get(action="guardrail.breach")
    assert breach.actor_kind == "guardrail"
    assert breach.reason == (f"guardrail checkout-errors breached: {QUERY} = 0.4 > 0.05")
    assert plan.status == RolloutPlan.Status.PAUSED
    assert GuardrailCheck.objects.exclude(acted="").count() == 1
    if action == "kill":
        assert state.killed and state.killed_by == "guardrail:checkout-errors"
        assert "= 0.4 > 0.05" in state.kill_reason
    elif action == "step_back":
        assert not state.killed and percentage(checkout, production) == 10
        assert plan.steps.get(number=2).applied_at is None  # a resume re-applies it
    else:
        assert not state.killed and percentage(checkout, production) == 50
    # And once healthy again, a resumed plan carries on; a new breach acts again
    ratio(HEALTHY)
    guardrails.guardrails_check_due()  # watched: the state changed within watch_seconds
    assert Guardrail.objects.get().breach_started_at is None
    if action != "kill":
        rollouts.rollout_plan_resume(actor=actor, plan=plan, reason="fixed")
        ratio(BROKEN)
        guardrails.guardrails_check_due()
        assert GuardrailCheck.objects.exclude(acted="").count() == 2


@pytest.mark.integration
def test_guardrail__breach_must_hold_for_its_duration__and_blocks_the_step_meanwhile(
    ratio: Callable[[float], None],
    prometheus: prom.Prometheus,
    checkout: Flag,
    production: Environment,
    actor: Actor,
) -> None:
    plan = ramp(checkout, production, actor)
    guard(checkout, production, actor, prometheus.url, action="kill", for_seconds=2)
    tick()
    ratio(BROKEN)
    time.sleep(1.1)  # step 2 is due
    tick()
    plan.refresh_from_db()
    assert percentage(checkout, production) == 10  # held back by the pending breach
    assert "checkout-errors: pending" in plan.blocked_reason
    assert not FlagState.objects.get(flag=checkout, environment=production).killed
    time.sleep(2.1)
    tick()
    assert FlagState.objects.get(flag=checkout, environment=production).killed
    assert actions_by("guardrail:checkout-errors")[0] == "flag.kill"


@pytest.mark.integration
def test_guardrail__query_without_data__blocks_the_step_and_is_shown(
    ratio: Callable[[float], None],
    prometheus: prom.Prometheus,
    checkout: Flag,
    production: Environment,
    actor: Actor,
) -> None:
    plan = ramp(checkout, production, actor)
    guard(checkout, production, actor, prometheus.url, query="checkout_error_ratio{route='nope'}")
    assert tick() == 0
    plan.refresh_from_db()
    assert "no_data (the query answered no series)" in plan.blocked_reason
    document = rollouts.rollout_plan_document(plan)
    assert document["guardrail_checks"][0]["health"] == "no_data"
    assert document["steps"][0]["status"] == "next"


@pytest.mark.django_db
def test_guardrail__prometheus_unreachable__blocks_the_step_visibly_then_resumes(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    closed = f"http://127.0.0.1:{prom.free_port()}"
    plan = ramp(checkout, production, actor)
    guardrail = guard(checkout, production, actor, closed)
    assert rollouts.rollout_plans_advance_due() == 0  # never checked: not known healthy
    plan.refresh_from_db()
    assert "checkout-errors: no check in the last" in plan.blocked_reason
    assert tick() == 0
    plan.refresh_from_db()
    assert "checkout-errors: error (Prometheus at" in plan.blocked_reason
    assert "unreachable" in plan.blocked_reason
    document = rollouts.rollout_plan_document(plan)
    assert document["blocked_reason"] == plan.blocked_reason
    assert document["guardrail_checks"][0]["health"] == "error"
    assert not AuditEvent.objects.filter(action="guardrail.breach").exists()
    # A disabled guardrail no longer holds the plan
    guardrails.guardrail_disable(actor=actor, guardrail=guardrail, reason="prometheus moved")
    assert tick() == 1
    plan.refresh_from_db()
    assert plan.blocked_reason == ""
    assert AuditEvent.objects.filter(action="guardrail.disable").count() == 1


@pytest.mark.django_db
def test_guardrail__stale_check__blocks_the_step(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    ramp(checkout, production, actor)
    guardrail = guard(checkout, production, actor, "http://127.0.0.1:9")
    Guardrail.objects.filter(pk=guardrail.pk).update(health="ok", last_checked_at=None)
    with override_settings(GUARDRAIL_FRESH_SECONDS=5):
        assert rollouts.rollout_plans_advance_due() == 0


@pytest.mark.django_db
def test_guardrail_create__bad_fields__named_and_duplicates_refused(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        guardrails.guardrail_create(
            actor=actor,
            flag=checkout,
            environment=production,
            name="errors",
            query=" ",
            threshold=float("nan"),
            comparison="eq",
            action="explode",
            for_seconds=-1,
            prometheus_url="ftp://x",
        )
    assert set(refused.value.fields) == {
        "query",
        "threshold",
        "comparison",
        "action",
        "for_seconds",
        "prometheus_url",
    }
    guard(checkout, production, actor, "", name="errors")
    with pytest.raises(AlreadyExists):
        guard(checkout, production, actor, "", name="errors")


@pytest.mark.django_db
def test_guardrails_to_check__only_running_plans_or_recent_changes(
    make_flag: Callable[..., Flag], checkout: Flag, production: Environment, actor: Actor
) -> None:
    from datetime import timedelta

    from flags import selectors

    quiet = make_flag("quiet")
    watched = guard(checkout, production, actor, "", watch_seconds=60)
    idle = guard(quiet, production, actor, "", watch_seconds=60)
    FlagState.objects.filter(flag=quiet).update(updated_at=timezone.now() - timedelta(minutes=5))
    FlagState.objects.filter(flag=checkout).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert selectors.guardrails_to_check(timezone.now()) == []
    ramp(checkout, production, actor)
    assert selectors.guardrails_to_check(timezone.now()) == [watched.pk]
    services.flag_state_update(actor=actor, flag=quiet, environment=production, enabled=True)
    assert selectors.guardrails_to_check(timezone.now()) == [watched.pk, idle.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["kill", "step_back"])
def test_guardrail__eight_workers_check_the_same_breach_at_once__act_once(
    action: str,
    checkout: Flag,
    production: Environment,
    actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.flags.test_rollouts import _at_once

    plan = ramp(checkout, production, actor)
    guardrail = guard(checkout, production, actor, "", action=action)
    Guardrail.objects.filter(pk=guardrail.pk).update(health="ok", last_checked_at=timezone.now())
    rollouts.rollout_plans_advance_due()
    breach = guardrails.checks.Reading(True, Guardrail.Health.PENDING, 0.4, "0.4 > 0.05")
    monkeypatch.setattr(guardrails.checks, "guardrail_read", lambda guardrail: breach)

    errors = _at_once(8, lambda n: guardrails.guardrail_check(guardrail=guardrail.pk))

    assert errors == []
    assert AuditEvent.objects.filter(action="guardrail.breach").count() == 1
    assert GuardrailCheck.objects.filter(guardrail=guardrail).count() == 8
    assert GuardrailCheck.objects.exclude(acted="").count() == 1
    first = {"kill": "flag.kill", "step_back": "rollout_plan.step_back"}[action]
    assert actions_by("guardrail:checkout-errors").count(first) == 1
    plan.refresh_from_db()
    assert plan.status == RolloutPlan.Status.PAUSED


@pytest.mark.django_db
def test_step_back__first_step__serves_zero_percent_and_pauses(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = ramp(checkout, production, actor)
    rollouts.rollout_plans_advance_due()
    assert percentage(checkout, production) == 10
    rollouts.rollout_plan_step_back(actor=Actor.guardrail("errors"), plan=plan, reason="5xx")
    plan.refresh_from_db()
    assert percentage(checkout, production) == 0
    assert (
        plan.status == "paused"
        and plan.status_reason == "stepped back and paused by guardrail:errors: 5xx"
    )
    assert plan.steps.get(number=1).applied_at is None
    rollouts.rollout_plan_resume(actor=actor, plan=plan, reason="fixed")
    rollouts.rollout_plans_advance_due()
    assert percentage(checkout, production) == 10  # the undone step comes back


@pytest.mark.django_db
def test_step_back__completed_plan__returns_to_the_previous_split_paused(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = rollouts.rollout_plan_create(
        actor=actor,
        flag=checkout,
        environment=production,
        steps=[{"percentage": 10}, {"percentage": 100, "after": 0}],
    )
    rollouts.rollout_plans_advance_due()
    plan.refresh_from_db()
    assert plan.status == "completed" and percentage(checkout, production) == 100
    rollouts.rollout_plan_step_back(actor=actor, plan=plan, reason="errors at 100%")
    plan.refresh_from_db()
    assert plan.status == "paused" and percentage(checkout, production) == 10
    event = AuditEvent.objects.get(action="rollout_plan.step_back")
    assert (
        event.reason
        == f"step back from rollout plan #{plan.pk} step 2/2: 100% to 10%: errors at 100%"
    )

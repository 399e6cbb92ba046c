"""Rollout plan services with a controlled clock: steps, exactly once, missed steps, interplay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connections

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import rollouts, services
from flags.errors import AlreadyExists, FlagArchived, RolloutPlanConflict, ValidationFailed
from flags.models import Environment, Flag, FlagState, RolloutPlan
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RAMP: list[dict[str, Any]] = [
    {"percentage": 1},
    {"percentage": 5, "after": "30m"},
    {"percentage": 25, "after": "1h"},
    {"percentage": 100, "after": "1d"},
]


def split(percentage: float, on: str = "on", off: str = "off") -> dict[str, Any]:
    weight = round(percentage * 100)
    return {
        "split": [{"variant": on, "weight": weight}, {"variant": off, "weight": 10000 - weight}]
    }


def state_of(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


@pytest.fixture
def checkout(make_flag: Callable[..., Flag], production: Environment, actor: Actor) -> Flag:
    flag = make_flag("new-checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return flag


@pytest.fixture
def plan_for(checkout: Flag, production: Environment, actor: Actor) -> Callable[..., RolloutPlan]:
    def make(steps: list[dict[str, Any]] = RAMP, **kwargs: Any) -> RolloutPlan:
        kwargs.setdefault("now", T0)
        return rollouts.rollout_plan_create(
            actor=actor, flag=checkout, environment=production, steps=steps, **kwargs
        )

    return make


def advance(plan: RolloutPlan, at: datetime) -> list[int]:
    return [step.number for step in rollouts.rollout_plan_advance(plan=plan, now=at)]


def fresh(plan: RolloutPlan) -> RolloutPlan:
    return RolloutPlan.objects.get(pk=plan.pk)


# --- creating ----------------------------------------------------------------------------------


def test_create__scheduled_with_first_step_due_now_and_audited(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment
) -> None:
    plan = plan_for(reason="launch")
    assert plan.status == "scheduled" and plan.next_due_at == T0
    assert [(s.number, s.weight) for s in plan.steps.all()] == [
        (1, 100),
        (2, 500),
        (3, 2500),
        (4, 10000),
    ]
    (event,) = events("rollout_plan.create")
    assert event.actor == "tester" and event.reason == "launch"
    assert event.target_key == "new-checkout@production" and event.after["id"] == plan.pk
    assert state_of(checkout, production).default_serve == {"variant": "on"}  # nothing yet


def test_create__second_active_plan__refused(plan_for: Callable[..., RolloutPlan]) -> None:
    plan_for()
    with pytest.raises(AlreadyExists, match="already has rollout plan"):
        plan_for()


def test_create__bad_input__names_every_field_and_leaves_nothing(
    plan_for: Callable[..., RolloutPlan],
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        plan_for(
            steps=[{"percentage": 10}, {"percentage": 5, "after": 60}, {"percentage": 1.234}],
            rule="no-such-rule",
            timezone_name="Nowhere/Land",
        )
    assert set(refused.value.fields) == {
        "rule",
        "timezone",
        "steps[1].percentage",
        "steps[2].percentage",
        "steps[2]",
    }
    assert RolloutPlan.objects.count() == 0 and not events("rollout_plan.create")


def test_create__non_boolean_flag__needs_an_explicit_variant_pair(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    color = make_flag(
        "button-color",
        type="string",
        variants={"blue": "#00f", "green": "#0f0", "red": "#f00"},
        off_variant="blue",
    )
    with pytest.raises(ValidationFailed) as refused:
        rollouts.rollout_plan_create(
            actor=actor, flag=color, environment=production, steps=RAMP, now=T0
        )
    assert {"variant", "baseline_variant"} <= set(refused.value.fields)
    plan = rollouts.rollout_plan_create(
        actor=actor,
        flag=color,
        environment=production,
        steps=RAMP,
        variant="green",
        baseline_variant="blue",
        now=T0,
    )
    advance(plan, T0)
    assert state_of(color, production).default_serve == split(1, "green", "blue")


def test_create__archived_flag__refused(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, actor: Actor
) -> None:
    services.flag_archive(actor=actor, flag=checkout)
    with pytest.raises(FlagArchived):
        plan_for()


def test_create__killed_flag__starts_paused(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    services.flag_kill(actor=actor, flag=checkout, environment=production, reason="incident")
    plan = plan_for()
    assert plan.status == "paused" and plan.next_due_at is None
    assert "killed" in plan.status_reason and advance(plan, T0 + timedelta(days=9)) == []


def test_create__keeps_the_bucketing_attribute_of_the_split_it_takes_over(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    services.flag_state_update(
        actor=actor,
        flag=checkout,
        environment=production,
        default_serve={**split(0), "bucket_by": "accountId"},
    )
    plan = plan_for()
    advance(plan, T0)
    assert state_of(checkout, production).default_serve == {**split(1), "bucket_by": "accountId"}


# --- advancing -----------------------------------------------------------------------------------


def test_advance__applies_each_step_when_due_through_the_audited_write(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment
) -> None:
    plan = plan_for()
    version = refreshed(production).version
    assert advance(plan, T0) == [1]
    state = state_of(checkout, production)
    assert state.default_serve == split(1) and refreshed(production).version == version + 1
    (event,) = events("rollout_plan.step")
    assert event.actor == "scheduler" and event.actor_kind == "scheduler"
    assert event.reason == f"rollout plan #{plan.pk} step 1/4: 1%"
    assert event.before["default_serve"] == {"variant": "on"}
    assert event.after["default_serve"] == split(1)
    assert event.after["rollout_plan"]["step"] == 1 and event.after["rollout_plan"]["of"] == 4
    plan = fresh(plan)
    assert plan.status == "running" and plan.next_due_at == T0 + 30 * MINUTE


def test_advance__same_moment_twice__applies_nothing_more(
    plan_for: Callable[..., RolloutPlan],
) -> None:
    plan = plan_for()
    assert advance(plan, T0) == [1]
    assert advance(plan, T0) == []
    assert advance(plan, T0 + 29 * MINUTE) == []
    assert len(events("rollout_plan.step")) == 1


def test_advance__every_step_once_then_completed(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment
) -> None:
    plan = plan_for()
    applied = []
    moment = T0
    while (plan := fresh(plan)).next_due_at is not None:
        moment = plan.next_due_at
        applied += advance(plan, moment)
        applied += advance(plan, moment)  # a duplicate tick
    assert applied == [1, 2, 3, 4]
    assert [e.reason.split(": ")[-1] for e in events("rollout_plan.step")] == [
        "1%",
        "5%",
        "25%",
        "100%",
    ]
    assert plan.status == "completed" and state_of(checkout, production).default_serve == split(100)
    assert moment == T0 + timedelta(days=1, minutes=90)


def test_advance__delay_counts_from_when_the_previous_step_was_applied(
    plan_for: Callable[..., RolloutPlan],
) -> None:
    plan = plan_for()
    late = T0 + 10 * MINUTE  # the scheduler was 10 minutes late
    assert advance(plan, late) == [1]
    assert fresh(plan).next_due_at == late + 30 * MINUTE
    assert advance(plan, T0 + 30 * MINUTE) == []  # no stage loses its soak time


def test_advance__steps_missed_while_beat_was_down__applied_in_order_none_skipped(
    plan_for: Callable[..., RolloutPlan], production: Environment
) -> None:
    plan = plan_for(
        steps=[
            {"percentage": 1, "at": "2026-11-30T09:00:00Z"},
            {"percentage": 5, "at": "2026-11-30T10:00:00Z"},
            {"percentage": 25, "at": "2026-11-30T11:00:00Z"},
            {"percentage": 50, "after": "30m"},
        ]
    )
    version = refreshed(production).version
    back = datetime(2026, 11, 30, 12, 15, tzinfo=UTC)  # beat was down from 08:30 to 12:15
    assert advance(plan, back) == [1, 2, 3]
    steps = events("rollout_plan.step")
    assert [e.after["rollout_plan"]["step"] for e in steps] == [1, 2, 3]
    assert [e.after["default_serve"] for e in steps] == [split(1), split(5), split(25)]
    assert refreshed(production).version == version + 3  # each its own version
    recorded = list(fresh(plan).steps.values_list("due_at", "applied_at"))
    assert recorded[0] == (datetime(2026, 11, 30, 9, 0, tzinfo=UTC), back)
    assert fresh(plan).next_due_at == back + 30 * MINUTE


def test_advance_due__finds_due_plans_across_flags_and_environments(
    make_flag: Callable[..., Flag], environments: dict[str, Environment], actor: Actor
) -> None:
    for key in ("a", "b"):
        flag = make_flag(key)
        for environment in environments.values():
            rollouts.rollout_plan_create(
                actor=actor, flag=flag, environment=environment, steps=RAMP, now=T0
            )
    assert rollouts.rollout_plans_advance_due(now=T0) == 6
    assert rollouts.rollout_plans_advance_due(now=T0) == 0
    assert rollouts.rollout_plans_advance_due(now=T0 + 30 * MINUTE) == 6


def test_advance__rule_plan__drives_only_that_rules_split(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    beta = {
        "id": "beta",
        "conditions": [{"attribute": "beta", "operator": "equals", "value": True}],
        "serve": {"variant": "off"},
    }
    services.flag_state_update(actor=actor, flag=checkout, environment=production, rules=[beta])
    plan = plan_for(rule="beta")
    advance(plan, T0)
    state = state_of(checkout, production)
    assert state.rules == [{**beta, "serve": split(1)}]
    assert state.default_serve == {"variant": "on"}


# --- pause, resume, abort, skip -------------------------------------------------------------------


def test_pause_then_resume__delay_restarts_from_the_resume(
    plan_for: Callable[..., RolloutPlan], actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    plan = rollouts.rollout_plan_pause(actor=actor, plan=plan, reason="watching errors", now=T0)
    assert plan.status == "paused" and plan.next_due_at is None
    assert plan.status_reason == "paused by tester: watching errors"
    assert advance(plan, T0 + timedelta(days=3)) == []
    resumed = T0 + timedelta(hours=5)
    plan = rollouts.rollout_plan_resume(actor=actor, plan=plan, now=resumed)
    assert plan.status == "running" and plan.next_due_at == resumed + 30 * MINUTE
    assert [e.action for e in AuditEvent.objects.filter(target_type="rollout_plan")] == [
        "rollout_plan.resume",
        "rollout_plan.pause",
        "rollout_plan.create",
    ]


def test_pause_resume_abort__repeated__write_nothing_more(
    plan_for: Callable[..., RolloutPlan], actor: Actor
) -> None:
    plan = plan_for()
    rollouts.rollout_plan_resume(actor=actor, plan=plan)  # not paused: nothing to do
    rollouts.rollout_plan_pause(actor=actor, plan=plan)
    rollouts.rollout_plan_pause(actor=actor, plan=plan)
    rollouts.rollout_plan_abort(actor=actor, plan=plan)
    rollouts.rollout_plan_abort(actor=actor, plan=plan)
    assert AuditEvent.objects.filter(target_type="rollout_plan").count() == 3
    with pytest.raises(RolloutPlanConflict, match="is aborted"):
        rollouts.rollout_plan_resume(actor=actor, plan=plan)


def test_abort__stops_the_plan_and_keeps_the_current_percentage(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    plan = rollouts.rollout_plan_abort(actor=actor, plan=plan, reason="not worth it")
    assert plan.status == "aborted" and plan.next_due_at is None
    assert advance(plan, T0 + timedelta(days=3)) == []
    assert state_of(checkout, production).default_serve == split(1)


def test_skip__applies_the_step_now_and_marks_the_ones_before_skipped(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    plan = rollouts.rollout_plan_skip_to_step(
        actor=actor, plan=plan, step=3, reason="metrics fine", now=T0 + MINUTE
    )
    assert state_of(checkout, production).default_serve == split(25)
    steps = list(plan.steps.order_by("number"))
    assert steps[1].skipped_at == T0 + MINUTE and steps[2].applied_at == T0 + MINUTE
    assert plan.status == "running" and plan.next_due_at == T0 + MINUTE + timedelta(days=1)
    (event,) = events("rollout_plan.skip")
    assert event.actor == "tester"
    assert event.reason == (
        f"skip to rollout plan #{plan.pk} step 3/4: 25% (skipped step 2): metrics fine"
    )
    assert event.after["rollout_plan"]["skipped"] == [2]
    with pytest.raises(RolloutPlanConflict, match="only goes forward"):
        rollouts.rollout_plan_skip_to_step(actor=actor, plan=plan, step=2)
    with pytest.raises(ValidationFailed, match="steps 1-4"):
        rollouts.rollout_plan_skip_to_step(actor=actor, plan=plan, step=5)


def test_skip__to_the_last_step__completes_the_plan(
    plan_for: Callable[..., RolloutPlan], actor: Actor
) -> None:
    plan = rollouts.rollout_plan_skip_to_step(actor=actor, plan=plan_for(), step=4, now=T0)
    assert plan.status == "completed" and plan.next_due_at is None


def test_skip__paused_plan__applies_the_step_and_stays_paused(
    plan_for: Callable[..., RolloutPlan], actor: Actor
) -> None:
    plan = rollouts.rollout_plan_pause(actor=actor, plan=plan_for())
    plan = rollouts.rollout_plan_skip_to_step(actor=actor, plan=plan, step=2, now=T0)
    assert plan.status == "paused" and plan.next_due_at is None


def test_replace__aborts_the_active_plan_in_one_audited_change(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    old = plan_for()
    advance(old, T0)
    new = rollouts.rollout_plan_replace(
        actor=actor,
        flag=checkout,
        environment=production,
        steps=[{"percentage": 2}, {"percentage": 50, "after": "2h"}],
        reason="faster",
        now=T0 + MINUTE,
    )
    old = fresh(old)
    assert old.status == "aborted" and old.status_reason == (
        f"replaced by plan #{new.pk} by tester: faster"
    )
    assert new.replaces_id == old.pk and new.status == "scheduled"
    (event,) = events("rollout_plan.replace")
    assert event.before["id"] == old.pk and event.after["id"] == new.pk
    assert advance(new, T0 + MINUTE) == [1]
    assert state_of(checkout, production).default_serve == split(2)


# --- interplay with kills, edits and archiving ------------------------------------------------------


def test_kill__pauses_the_plan_with_the_incident_and_restore_leaves_it_paused(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    outcome = services.flag_kill(
        actor=actor, flag=checkout, environment=production, reason="checkout 500s"
    )
    plan = fresh(plan)
    assert plan.status == "paused" and plan.next_due_at is None
    (pause,) = events("rollout_plan.pause")
    assert (
        pause.reason
        == f"paused: flag killed (incident {outcome.state.kill_incident}): checkout 500s"
    )
    assert pause.incident_id is None or pause.incident_id == outcome.state.kill_incident
    assert advance(plan, T0 + timedelta(days=3)) == []
    with pytest.raises(RolloutPlanConflict, match="restore it first"):
        rollouts.rollout_plan_resume(actor=actor, plan=plan)
    services.flag_restore(actor=actor, flag=checkout, environment=production, reason="fixed")
    assert fresh(plan).status == "paused"
    rollouts.rollout_plan_resume(actor=actor, plan=plan, now=T0 + timedelta(hours=1))
    assert advance(plan, T0 + timedelta(hours=2)) == [2]


def test_tag_kill__pauses_the_plans_of_every_killed_flag(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    plans = [
        rollouts.rollout_plan_create(
            actor=actor,
            flag=make_flag(key, tags=["payments"]),
            environment=production,
            steps=RAMP,
            now=T0,
        )
        for key in ("a", "b")
    ]
    services.flag_kill_by_tag(actor=actor, tag="payments", environment=production, reason="x")
    assert {fresh(p).status for p in plans} == {"paused"}
    assert len(events("rollout_plan.pause")) == 2


def test_kill_in_another_environment__leaves_the_plan_running(
    plan_for: Callable[..., RolloutPlan],
    checkout: Flag,
    environments: dict[str, Environment],
    actor: Actor,
) -> None:
    plan = plan_for()
    services.flag_kill(actor=actor, flag=checkout, environment=environments["staging"], reason="x")
    assert fresh(plan).status == "scheduled"


def test_manual_edit_of_the_driven_split__pauses_the_plan_with_a_clear_reason(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    services.flag_state_update(
        actor=Actor.cli("alice"),
        flag=checkout,
        environment=production,
        default_serve=split(50),
        reason="going faster by hand",
    )
    plan = fresh(plan)
    assert plan.status == "paused"
    (pause,) = events("rollout_plan.pause")
    assert pause.actor == "alice"
    assert pause.reason.startswith("paused: the default serve was changed by alice")
    assert "going faster by hand" in pause.reason
    assert advance(plan, T0 + timedelta(days=3)) == []
    assert state_of(checkout, production).default_serve == split(50)  # the person wins


def test_edits_that_leave_the_driven_split_alone__do_not_pause(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    services.flag_state_update(
        actor=actor,
        flag=checkout,
        environment=production,
        enabled=False,
        targets=[{"variant": "on", "values": ["qa-user"]}],
    )
    assert fresh(plan).status == "running" and not events("rollout_plan.pause")


def test_removing_or_renaming_the_driven_rule__pauses_the_plan(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    rule = {"id": "beta", "conditions": [], "serve": {"variant": "off"}}
    services.flag_state_update(actor=actor, flag=checkout, environment=production, rules=[rule])
    plan = plan_for(rule="beta")
    services.flag_state_update(
        actor=actor, flag=checkout, environment=production, rules=[{**rule, "id": "beta-2"}]
    )
    assert fresh(plan).status == "paused"
    assert "rule 'beta' was removed or renamed" in events("rollout_plan.pause")[0].reason
    with pytest.raises(RolloutPlanConflict, match="no longer exists"):
        rollouts.rollout_plan_resume(actor=actor, plan=plan)


def test_resume_after_a_manual_edit__carries_on_from_the_edited_split(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = plan_for()
    advance(plan, T0)
    services.flag_state_update(
        actor=actor, flag=checkout, environment=production, default_serve=split(3)
    )
    rollouts.rollout_plan_resume(actor=actor, plan=plan, now=T0 + MINUTE)
    assert advance(plan, T0 + 31 * MINUTE) == [2]
    assert state_of(checkout, production).default_serve == split(5)


def test_resume_on_a_split_edited_to_weights_one_one__next_step_writes_basis_points(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment, actor: Actor
) -> None:
    # Given a plan paused because someone set the split to flagd-style weights [1, 1]
    plan = plan_for()
    advance(plan, T0)
    heads_tails = {"split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]}
    services.flag_state_update(
        actor=actor, flag=checkout, environment=production, default_serve=heads_tails
    )
    assert fresh(plan).status == "paused"
    # When it resumes, then the next step writes its own percentage in basis points
    rollouts.rollout_plan_resume(actor=actor, plan=plan, now=T0 + MINUTE)
    assert advance(plan, T0 + 31 * MINUTE) == [2]
    assert state_of(checkout, production).default_serve == split(5)


def test_archive__aborts_the_flags_plans_in_every_environment(
    checkout: Flag, environments: dict[str, Environment], actor: Actor
) -> None:
    plans = [
        rollouts.rollout_plan_create(
            actor=actor, flag=checkout, environment=environment, steps=RAMP, now=T0
        )
        for environment in environments.values()
    ]
    rollouts.rollout_plan_pause(actor=actor, plan=plans[0])
    services.flag_archive(actor=actor, flag=checkout, reason="launched")
    assert {fresh(p).status for p in plans} == {"aborted"}
    assert [e.reason for e in events("rollout_plan.abort")] == [
        "aborted: the flag was archived"
    ] * 3


def test_split_changed_behind_the_plans_back__the_step_pauses_instead_of_overwriting(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment
) -> None:
    # What a step finds if an edit committed while the step held the plan row.
    plan = plan_for()
    advance(plan, T0)
    FlagState.objects.filter(flag=checkout, environment=production).update(default_serve=split(40))
    assert advance(plan, T0 + timedelta(hours=1)) == []
    plan = fresh(plan)
    assert plan.status == "paused"
    assert "changed outside the plan; rollout plan" in plan.status_reason
    assert events("rollout_plan.pause")[0].actor == "scheduler"


def test_killed_behind_the_plans_back__the_step_pauses(
    plan_for: Callable[..., RolloutPlan], checkout: Flag, production: Environment
) -> None:
    plan = plan_for()
    FlagState.objects.filter(flag=checkout, environment=production).update(killed_at=T0)
    assert advance(plan, T0) == []
    assert fresh(plan).status == "paused" and "flag killed" in fresh(plan).status_reason


def test_variant_removed_since__the_step_pauses_instead_of_failing(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    color = make_flag(
        "button-color",
        type="string",
        variants={"blue": "b", "teal": "t", "green": "g"},
        off_variant="blue",
    )
    plan = rollouts.rollout_plan_create(
        actor=actor,
        flag=color,
        environment=production,
        steps=RAMP,
        variant="green",
        baseline_variant="blue",
        now=T0,
    )
    services.flag_update(actor=actor, flag=color, variants={"blue": "b", "teal": "t"})
    assert advance(plan, T0) == []
    assert "would not be a valid state" in fresh(plan).status_reason


# --- real concurrency (PostgreSQL) ----------------------------------------------------------------


def _at_once(count: int, work: Callable[[int], Any]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_workers_at_the_same_instant__apply_each_due_step_once(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flags = [make_flag(f"flag-{n}") for n in range(3)]
    for flag in flags:
        rollouts.rollout_plan_create(
            actor=actor,
            flag=flag,
            environment=production,
            steps=[
                {"percentage": 1, "at": "2026-11-30T09:00:00Z"},
                {"percentage": 5, "at": "2026-11-30T10:00:00Z"},
                {"percentage": 10, "after": "1h"},
            ],
            now=T0,
        )
    applied: list[int] = []
    errors = _at_once(
        10,
        lambda n: applied.append(
            rollouts.rollout_plans_advance_due(now=datetime(2026, 11, 30, 10, 30, tzinfo=UTC))
        ),
    )
    assert errors == []
    assert sum(applied) == 6
    steps = events("rollout_plan.step")
    assert sorted((e.flag_key, e.after["rollout_plan"]["step"]) for e in steps) == sorted(
        (f.key, n) for f in flags for n in (1, 2)
    )
    for flag in flags:
        assert state_of(flag, production).default_serve == split(5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kills_racing_steps__never_deadlock_and_never_step_a_killed_flag(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flags = [make_flag(f"flag-{n}") for n in range(6)]
    plans = [
        rollouts.rollout_plan_create(
            actor=actor, flag=flag, environment=production, steps=RAMP, now=T0
        )
        for flag in flags
    ]

    def work(n: int) -> None:
        if n % 2:
            services.flag_kill(
                actor=actor, flag=flags[n // 2 * 2], environment=production, reason="race"
            )
            services.flag_state_update(
                actor=actor,
                flag=flags[n // 2 * 2 + 1],
                environment=production,
                default_serve=split(7),
            )
        else:
            rollouts.rollout_plans_advance_due(now=T0)

    assert _at_once(6, work) == []
    for plan in plans:
        plan = fresh(plan)
        state = state_of(plan.flag, production)
        steps = AuditEvent.objects.filter(action="rollout_plan.step", flag_key=plan.flag.key)
        assert steps.count() <= 1
        if plan.flag.key in {f.key for f in flags[::2]}:
            # killed: either stepped before the kill and then paused, or paused unstepped
            assert state.killed and plan.status == "paused"
        elif plan.flag.key in {f.key for f in flags[1::2]}:
            # edited by hand: the person's split stands and the plan is paused
            assert state.default_serve == split(7) and plan.status == "paused"

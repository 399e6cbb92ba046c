"""The scheduler's step: apply every due rollout step exactly once, in order, through the audited state write.

A step changes the flag's state through the same write as a person's edit
(``flags.services.core.state_write``), recorded as ``rollout_plan.step`` with
the actor ``scheduler`` and a reason like ``rollout plan #12 step 3/5: 25%``.

**Exactly once.** A step is applied by ``_step_apply`` in one transaction that
claims the plan row with ``SELECT … FOR UPDATE SKIP LOCKED`` filtered on "active
and due now", locks the environment and the flag state like every service,
re-checks the flag (archived: abort; killed or its split changed by someone
else: pause), waits while any of the flag's guardrails is not known healthy
(``blocked_reason`` says which; see ``flags.guardrails``), applies the step, writes the step's ``applied_at`` and the plan's
next due time, and commits. A second worker at the same instant skips the
claimed row; one arriving after the commit finds nothing due; a worker killed
before the commit leaves nothing (the transaction rolls back, and the
late-acked message is delivered again or the next tick applies the step). On
SQLite ``FOR UPDATE`` is a no-op, but its IMMEDIATE transactions serialise writers.

**Missed steps** (beat down, worker stopped, plan paused): applied in order, each
in its own transaction with its own audit event and environment version, none
skipped. A delay counts from when the previous step was actually applied (or
from the resume, if later): every stage keeps its soak time. See
``flags.rollouts.schedule``.

**Lock order.** Services that come to plans while holding an environment lock
(kill, a person's edit of the split, archive) take the plan rows with SKIP
LOCKED and never wait for them (``flags.rollouts.hooks``); a plan action by a
person (pause, resume, abort, skip, replace) and the scheduler take the plan
first, then the environment. No cycle, so no deadlock. A plan such a service
skipped because a step was in flight is dealt with by the step itself, which
re-checks kill, archive and the split once it holds the environment.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.recorder import Actor
from flags import selectors
from flags.models import RolloutPlan, RolloutStep
from flags.rollouts import schedule
from flags.rollouts.plans import (
    MISSING,
    Status,
    driven_serve,
    plan_abort_for_archive,
    plan_next_due,
    plan_pause,
    plan_progress,
    plan_status_set,
    serve_replaced,
    split_serve,
    step_annotation,
    step_label,
)
from flags.services import core

logger = logging.getLogger(__name__)

DUE_BATCH = 500


def rollout_plans_advance_due(*, now: datetime | None = None) -> int:
    """Apply every step that is due, plan by plan; returns how many steps were applied.

    What the ``advance_rollouts`` task runs. One plan failing (say, a lost database
    connection) is logged and retried at the next tick; the others go on.
    """
    moment = now or timezone.now()
    due = list(
        RolloutPlan.objects.filter(status__in=RolloutPlan.ADVANCING, next_due_at__lte=moment)
        .order_by("next_due_at", "id")
        .values_list("id", flat=True)[:DUE_BATCH]
    )
    applied = 0
    for plan_id in due:
        try:
            applied += len(rollout_plan_advance(plan=plan_id, now=now))
        except Exception:
            logger.exception("rollout plan #%s could not advance; the next tick retries", plan_id)
    return applied


def rollout_plan_advance(
    *, plan: RolloutPlan | int, now: datetime | None = None, actor: Actor | None = None
) -> list[RolloutStep]:
    """Apply the plan's due steps in order, each in its own transaction; returns those applied.

    Safe to call from any number of workers at once: each step is applied exactly
    once (see the module docstring). ``now`` fixes the clock (tests); by default
    each step reads the real time.
    """
    plan_id = plan if isinstance(plan, int) else plan.pk
    actor = actor or Actor.scheduler()
    applied: list[RolloutStep] = []
    for _ in range(schedule.MAX_STEPS):
        step = _step_apply(plan_id, now=now, actor=actor)
        if step is None:
            break
        applied.append(step)
    return applied


@transaction.atomic
def _step_apply(plan_id: int, *, now: datetime | None, actor: Actor) -> RolloutStep | None:
    """Apply the plan's next step if it is due: one transaction, one audit event."""
    claimed = (
        RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("flag", "environment")
        .filter(
            pk=plan_id,
            status__in=RolloutPlan.ADVANCING,
            next_due_at__lte=now or timezone.now(),
        )
        .first()
    )
    if claimed is None:
        return None  # not due, finished, or another worker has it right now
    plan = claimed
    environment, state = core.locked_state(plan.flag, plan.environment)
    moment = now or timezone.now()
    steps = list(plan.steps.order_by("number"))
    total = len(steps)
    pending = schedule.next_step(plan_progress(steps))
    if pending is None:  # cannot happen through the services; settle it rather than loop
        plan_status_set(
            plan,
            Status.COMPLETED,
            actor=actor,
            action="complete",
            reason="no steps left",
            now=moment,
        )
        return None
    step = steps[pending]
    label = step_label(plan, step, total)
    # Re-checked here, under the environment lock: a kill, edit or archive that could
    # not take this plan's row while this step held it is caught now.
    if state.flag.archived:
        plan_abort_for_archive(plan, actor=actor, now=moment)
        return None
    if state.killed:
        plan_pause(
            plan,
            actor=actor,
            reason=f"paused: flag killed (incident {state.kill_incident}); {label} not applied",
            now=moment,
        )
        return None
    current = driven_serve(state.definition(), plan.rule_id)
    if current is MISSING or (plan.expected_serve is not None and current != plan.expected_serve):
        what = (
            f"the rule {plan.rule_id!r} was removed or renamed"
            if current is MISSING
            else f"the {plan.target_label} was changed outside the plan"
        )
        plan_pause(
            plan,
            actor=actor,
            reason=f"paused: {what}; {label} not applied",
            now=moment,
        )
        return None
    blocked = selectors.guardrails_blocking(plan.flag_id, plan.environment_id, moment)
    if blocked:  # a guardrail not known healthy holds the step; the next tick tries again
        note = f"{label} waits: " + "; ".join(blocked)
        if plan.blocked_reason != note:
            plan.blocked_reason = note
            plan.save(update_fields=["blocked_reason"])
        return None
    serve = split_serve(plan, step.weight)
    proposed = serve_replaced(state.definition(), plan.rule_id, serve)
    problems = core.state_problems(state, environment, proposed)
    if problems:
        field, problem = next(iter(problems.items()))
        plan_pause(
            plan,
            actor=actor,
            reason=f"paused: {label} would not be a valid state ({field}: {problem})",
            now=moment,
        )
        return None
    step.due_at, step.applied_at = plan.next_due_at, moment
    step.save(update_fields=["due_at", "applied_at"])
    plan.expected_serve = serve
    plan.blocked_reason = ""
    if pending == total - 1:
        plan.status = Status.COMPLETED
        plan.status_reason = f"completed: all {total} steps applied"
        plan.status_changed_at, plan.status_changed_by = moment, actor.name
        plan.next_due_at = None
    else:
        plan.status = Status.RUNNING
        plan.next_due_at = plan_next_due(plan, steps)
    plan.save()
    core.state_write(
        actor=actor,
        state=state,
        environment=environment,
        proposed=proposed,
        reason=label,
        action="rollout_plan.step",
        annotation={"rollout_plan": step_annotation(plan, step, total)},
    )
    return step

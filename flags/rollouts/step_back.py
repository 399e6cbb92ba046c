"""Step a rollout plan back to its previous split and pause it (what a guardrail's ``step_back`` does)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.recorder import Actor
from flags.errors import RolloutPlanConflict
from flags.models import RolloutPlan
from flags.rollouts import schedule
from flags.rollouts.plans import (
    MISSING,
    Status,
    driven_serve,
    person_reason,
    plan_lock,
    plan_status_set,
    serve_replaced,
    split_serve,
    step_annotation,
    step_label,
)
from flags.services import core


@transaction.atomic
def rollout_plan_step_back(
    *, actor: Actor, plan: RolloutPlan, reason: str, now: datetime | None = None
) -> RolloutPlan:
    """Serve the split of the step before the last applied one (0% before the first), and pause.

    The last applied step becomes pending again, so a resume re-applies it after its
    soak. A completed plan comes back as paused (unless another plan is active).
    Two audit events: ``rollout_plan.step_back`` for the state, ``rollout_plan.pause``.
    """
    reason = core.check_reason(reason, required=True)
    plan = plan_lock(plan)
    if plan.status == Status.ABORTED or (
        plan.status == Status.COMPLETED
        and RolloutPlan.objects.filter(
            flag_id=plan.flag_id, environment_id=plan.environment_id, status__in=RolloutPlan.ACTIVE
        ).exists()
    ):
        raise RolloutPlanConflict(
            f"Rollout plan #{plan.pk} is {plan.status}; there is nothing to step back.",
            {"status": plan.status},
        )
    moment = now or timezone.now()
    environment, state = core.locked_state(plan.flag, plan.environment)
    steps = list(plan.steps.order_by("number"))
    applied = [step for step in steps if step.applied_at is not None]
    if applied and driven_serve(state.definition(), plan.rule_id) is not MISSING:
        last = applied[-1]
        weight = applied[-2].weight if len(applied) > 1 else 0
        serve = split_serve(plan, weight)
        proposed = serve_replaced(state.definition(), plan.rule_id, serve)
        core.raise_definition(core.state_problems(state, environment, proposed))
        last.applied_at, last.due_at = None, None
        last.save(update_fields=["applied_at", "due_at"])
        plan.expected_serve = serve
        core.state_write(
            actor=actor,
            state=state,
            environment=environment,
            proposed=proposed,
            reason=f"step back from {step_label(plan, last, len(steps))} to "
            f"{schedule.percentage_label(weight)}: {reason}",
            action="rollout_plan.step_back",
            annotation={"rollout_plan": step_annotation(plan, last, len(steps))},
        )
    plan_status_set(
        plan,
        Status.PAUSED,
        actor=actor,
        action="pause",
        reason=reason,
        now=moment,
        status_reason=person_reason("stepped back and paused", actor, reason),
    )
    return plan

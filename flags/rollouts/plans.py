"""What every rollout plan action shares: the split it drives, its audit record, its status changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from audit import recorder
from audit.recorder import Actor
from flags.errors import RolloutPlanConflict
from flags.models import FlagState, RolloutPlan, RolloutStep
from flags.rollouts import schedule
from flagsvc_sdk.engine import DEFAULT_BUCKET_BY

Status = RolloutPlan.Status
MISSING: Any = object()
"""What ``driven_serve`` answers when the rule a plan drives is gone."""


# --- the split a plan drives ----------------------------------------------------------------


def driven_serve(definition: Mapping[str, Any], rule_id: str) -> Any:
    """The serve a plan drives in a state definition; ``MISSING`` if its rule is gone."""
    if not rule_id:
        return definition.get("default_serve")
    for rule in definition.get("rules") or ():
        if isinstance(rule, Mapping) and rule.get("id") == rule_id:
            return rule.get("serve")
    return MISSING


def serve_replaced(definition: Mapping[str, Any], rule_id: str, serve: dict[str, Any]) -> dict:
    """A copy of the state definition with the serve the plan drives replaced by ``serve``."""
    proposed = dict(definition)
    if not rule_id:
        proposed["default_serve"] = serve
        return proposed
    proposed["rules"] = [
        {**rule, "serve": serve} if rule.get("id") == rule_id else rule
        for rule in definition.get("rules") or ()
    ]
    return proposed


def split_serve(plan: RolloutPlan, weight: int) -> dict[str, Any]:
    """The serve of a step: ``weight`` basis points of the plan's variant, the rest baseline."""
    serve: dict[str, Any] = {
        "split": [
            {"variant": plan.variant, "weight": weight},
            {"variant": plan.baseline_variant, "weight": schedule.SPLIT_TOTAL - weight},
        ]
    }
    if plan.bucket_by != DEFAULT_BUCKET_BY:
        serve["bucket_by"] = plan.bucket_by
    return serve


# --- records and shared steps ---------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def rollout_plan_record(plan: RolloutPlan, steps: Sequence[RolloutStep] | None = None) -> dict:
    """The plan as the audit trail records it (before/after)."""
    if steps is None:
        steps = list(plan.steps.order_by("number"))
    return {
        "id": plan.pk,
        "rule": plan.rule_id or None,
        "variant": plan.variant,
        "baseline_variant": plan.baseline_variant,
        "bucket_by": plan.bucket_by,
        "allow_decrease": plan.allow_decrease,
        "timezone": plan.timezone,
        "status": plan.status,
        "status_reason": plan.status_reason,
        "next_due_at": _iso(plan.next_due_at),
        "replaces": plan.replaces_id,
        "steps": [
            {
                "step": step.number,
                "percentage": schedule.weight_percentage(step.weight),
                "at": _iso(step.at),
                "after": step.after_seconds,
                "applied_at": _iso(step.applied_at),
                "skipped_at": _iso(step.skipped_at),
            }
            for step in steps
        ],
    }


def plan_progress(steps: Sequence[RolloutStep]) -> list[schedule.StepProgress]:
    """The steps as the pure schedule sees them."""
    return [schedule.StepProgress(s.at, s.after_seconds, s.applied_at, s.skipped_at) for s in steps]


def plan_next_due(plan: RolloutPlan, steps: Sequence[RolloutStep]) -> datetime | None:
    """When the plan's next pending step falls due (None: no step left)."""
    progress = plan_progress(steps)
    index = schedule.next_step(progress)
    if index is None:
        return None
    return schedule.due_at(progress, index, started_at=plan.started_at, resumed_at=plan.resumed_at)


def step_label(plan: RolloutPlan, step: RolloutStep, total: int) -> str:
    """How reasons name a step, e.g. ``rollout plan #12 step 3/5: 25%``."""
    return f"rollout plan #{plan.pk} step {step.number}/{total}: {schedule.percentage_label(step.weight)}"


def _target_key(plan: RolloutPlan) -> str:
    return f"{plan.flag.key}@{plan.environment.key}"


def plan_status_set(
    plan: RolloutPlan,
    status: str,
    *,
    actor: Actor,
    action: str,
    reason: str,
    now: datetime,
    status_reason: str | None = None,
) -> None:
    """Move a locked plan to ``status`` and write its one audit event (``rollout_plan.<action>``)."""
    steps = list(plan.steps.order_by("number"))
    before = rollout_plan_record(plan, steps)
    plan.status = status
    plan.status_reason = status_reason if status_reason is not None else reason
    plan.status_changed_at = now
    plan.status_changed_by = actor.name
    plan.next_due_at = plan_next_due(plan, steps) if status in RolloutPlan.ADVANCING else None
    plan.save()
    recorder.audit_record(
        actor=actor,
        action=f"rollout_plan.{action}",
        target_type="rollout_plan",
        target_key=_target_key(plan),
        flag_key=plan.flag.key,
        environment_key=plan.environment.key,
        before=before,
        after=rollout_plan_record(plan, steps),
        reason=reason,
    )


def plan_pause(plan: RolloutPlan, *, actor: Actor, reason: str, now: datetime) -> None:
    """Pause a locked plan for something other than a person's pause (a kill, an edit, a bad step)."""
    plan_status_set(plan, Status.PAUSED, actor=actor, action="pause", reason=reason, now=now)


def plan_abort_for_archive(plan: RolloutPlan, *, actor: Actor, now: datetime) -> None:
    """Abort a locked plan because its flag was archived."""
    reason = "aborted: the flag was archived"
    plan_status_set(plan, Status.ABORTED, actor=actor, action="abort", reason=reason, now=now)


def plan_lock(plan: RolloutPlan) -> RolloutPlan:
    """The plan, locked (waiting for a step in flight to finish) and re-read."""
    return (
        RolloutPlan.objects.select_for_update(of=("self",))
        .select_related("flag", "environment")
        .get(pk=plan.pk)
    )


def person_reason(verb: str, actor: Actor, reason: str) -> str:
    """The status reason of a person's action, e.g. ``paused by alice: checkout errors``."""
    return f"{verb} by {actor.name}" + (f": {reason}" if reason else "")


def finished_conflict(plan: RolloutPlan, wanted: str) -> RolloutPlanConflict:
    """The error for an action on a completed or aborted plan."""
    return RolloutPlanConflict(
        f"Rollout plan #{plan.pk} for {plan.flag.key} in {plan.environment.key} is {plan.status}; "
        f"there is nothing to {wanted}. Create a new plan with PUT.",
        {"status": plan.status},
    )


def killed_conflict(plan: RolloutPlan, state: FlagState, wanted: str) -> RolloutPlanConflict:
    """The error for resuming or skipping while the flag is killed."""
    return RolloutPlanConflict(
        f"{plan.flag.key} is killed in {plan.environment.key} (incident {state.kill_incident}); "
        f"restore it first, then {wanted} the plan.",
        {"status": "flag killed"},
    )


def step_annotation(
    plan: RolloutPlan, step: RolloutStep, total: int, skipped: Sequence[RolloutStep] = ()
) -> dict[str, Any]:
    """The plan and step as a rollout step's state audit event carries them (``after.rollout_plan``)."""
    annotation: dict[str, Any] = {
        "id": plan.pk,
        "step": step.number,
        "of": total,
        "percentage": schedule.weight_percentage(step.weight),
        "status": plan.status,
        "next_due_at": _iso(plan.next_due_at),
    }
    if skipped:
        annotation["skipped"] = [s.number for s in skipped]
    return annotation

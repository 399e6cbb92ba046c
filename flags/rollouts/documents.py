"""A rollout plan as the API and the admin show it: its settings, status and step timeline."""

from __future__ import annotations

from typing import Any

from flags import selectors
from flags.models import RolloutPlan
from flags.rollouts import schedule


def _moment(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def rollout_plan_document(plan: RolloutPlan) -> dict[str, Any]:
    """A plan as the API and the admin show it: settings, status, and a timeline of its steps.

    Each step is ``done``, ``skipped``, ``next``, ``later`` or (plan aborted)
    ``cancelled``; ``due_at`` is when a done step fell due, or when a pending one is
    expected to (None while the plan is paused or the time depends on an earlier step).
    """
    steps = list(plan.steps.all())
    steps.sort(key=lambda s: s.number)
    progress = [
        schedule.StepProgress(s.at, s.after_seconds, s.applied_at, s.skipped_at) for s in steps
    ]
    pending = schedule.next_step(progress)
    projected = schedule.projected_due_times(
        progress, next_due=plan.next_due_at if plan.status in RolloutPlan.ADVANCING else None
    )
    applied = [s for s in steps if s.applied_at is not None]
    timeline = []
    for index, step in enumerate(steps):
        if step.applied_at is not None:
            state, due = "done", step.due_at
        elif step.skipped_at is not None:
            state, due = "skipped", None
        elif not plan.active:
            state, due = "cancelled", None
        else:
            state = "next" if index == pending else "later"
            due = projected[index] if plan.status != RolloutPlan.Status.PAUSED else step.at
        timeline.append(
            {
                "step": step.number,
                "percentage": schedule.weight_percentage(step.weight),
                "weight": step.weight,
                "at": _moment(step.at),
                "after": step.after_seconds,
                "timezone": step.timezone,
                "status": state,
                "due_at": _moment(due),
                "applied_at": _moment(step.applied_at),
                "skipped_at": _moment(step.skipped_at),
            }
        )
    replaced_by = getattr(plan, "replaced_by", None)
    return {
        "id": plan.pk,
        "flag": plan.flag.key,
        "environment": plan.environment.key,
        "status": plan.status,
        "status_reason": plan.status_reason,
        "status_changed_at": _moment(plan.status_changed_at),
        "status_changed_by": plan.status_changed_by,
        "rule": plan.rule_id or None,
        "variant": plan.variant,
        "baseline_variant": plan.baseline_variant,
        "bucket_by": plan.bucket_by,
        "allow_decrease": plan.allow_decrease,
        "timezone": plan.timezone,
        "last_applied_step": applied[-1].number if applied else None,
        "last_applied_percentage": (
            schedule.weight_percentage(applied[-1].weight) if applied else None
        ),
        "next_step": pending + 1 if pending is not None and plan.active else None,
        "next_due_at": _moment(plan.next_due_at),
        "blocked_reason": plan.blocked_reason or None,
        "steps": timeline,
        "guardrail_checks": [
            {
                "guardrail": check.guardrail.name,
                "checked_at": _moment(check.checked_at),
                "health": check.health,
                "value": check.value,
                "message": check.message,
                "acted": check.acted or None,
            }
            for check in selectors.guardrail_checks_of_plan(plan.pk)
        ],
        "replaces": plan.replaces_id,
        "replaced_by": replaced_by.pk if replaced_by is not None else None,
        "started_at": _moment(plan.started_at),
        "resumed_at": _moment(plan.resumed_at),
        "created_at": _moment(plan.created_at),
        "created_by": plan.created_by,
    }


# -- main (the edge's reads)

"""Rollout plans: scheduled ramp-ups, carried out by Celery through the audited state write.

Writes in the style of ``flags.services``: keyword-only arguments, an explicit
actor, one transaction per change, one audit event per change, publish after
commit. A step changes the flag's state through the same internal write as a
person's edit (``services._state_write``), recorded as ``rollout_plan.step``
with the actor ``scheduler`` and a reason like ``rollout plan #12 step 3/5: 25%``.

**Exactly once.** A step is applied by ``_step_apply`` in one transaction that
claims the plan row with ``SELECT … FOR UPDATE SKIP LOCKED`` filtered on "active
and due now", locks the environment and the flag state like every service,
re-checks the flag (archived: abort; killed or its split changed by someone
else: pause), applies the step, writes the step's ``applied_at`` and the plan's
next due time, and commits. A second worker at the same instant skips the
claimed row; one arriving after the commit finds nothing due; a worker killed
before the commit leaves nothing (the transaction rolls back, and the
late-acked message is delivered again or the next tick applies the step). On
SQLite ``FOR UPDATE`` is a no-op, but its IMMEDIATE transactions serialise writers.

**Missed steps** (beat down, worker stopped, plan paused): applied in order, each
in its own transaction with its own audit event and environment version, none
skipped. A delay counts from when the previous step was actually applied (or
from the resume, if later): every stage keeps its soak time. See
``flags.rollout_schedule``.

**Lock order.** Services that come to plans while holding an environment lock
(kill, a person's edit of the split, archive) take the plan rows with SKIP
LOCKED and never wait for them; a plan action by a person (pause, resume,
abort, skip, replace) and the scheduler take the plan first, then the
environment. No cycle, so no deadlock. A plan such a service skipped because a
step was in flight is dealt with by the step itself, which re-checks kill,
archive and the split once it holds the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.recorder import Actor, audit_record
from flags import rollout_schedule as schedule
from flags import services
from flags.errors import (
    AlreadyExists,
    FlagArchived,
    RolloutPlanConflict,
    ValidationFailed,
)
from flags.models import Environment, Flag, FlagState, RolloutPlan, RolloutStep
from flagsvc_sdk.engine import DEFAULT_BUCKET_BY

logger = logging.getLogger(__name__)

Status = RolloutPlan.Status
_MISSING: Any = object()
DUE_BATCH = 500


# --- the split a plan drives ----------------------------------------------------------------


def driven_serve(definition: Mapping[str, Any], rule_id: str) -> Any:
    """The serve a plan drives in a state definition; ``_MISSING`` if its rule is gone."""
    if not rule_id:
        return definition.get("default_serve")
    for rule in definition.get("rules") or ():
        if isinstance(rule, Mapping) and rule.get("id") == rule_id:
            return rule.get("serve")
    return _MISSING


def _with_serve(definition: Mapping[str, Any], rule_id: str, serve: dict[str, Any]) -> dict:
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


def _progress(steps: Sequence[RolloutStep]) -> list[schedule.StepProgress]:
    return [schedule.StepProgress(s.at, s.after_seconds, s.applied_at, s.skipped_at) for s in steps]


def _next_due(plan: RolloutPlan, steps: Sequence[RolloutStep]) -> datetime | None:
    progress = _progress(steps)
    index = schedule.next_step(progress)
    if index is None:
        return None
    return schedule.due_at(progress, index, started_at=plan.started_at, resumed_at=plan.resumed_at)


def _step_label(plan: RolloutPlan, step: RolloutStep, total: int) -> str:
    return f"rollout plan #{plan.pk} step {step.number}/{total}: {schedule.percentage_label(step.weight)}"


def _target_key(plan: RolloutPlan) -> str:
    return f"{plan.flag.key}@{plan.environment.key}"


def _set_status(
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
    plan.next_due_at = _next_due(plan, steps) if status in RolloutPlan.ADVANCING else None
    plan.save()
    audit_record(
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


def _lock_plan(plan: RolloutPlan) -> RolloutPlan:
    """The plan, locked (waiting for a step in flight to finish) and re-read."""
    return (
        RolloutPlan.objects.select_for_update(of=("self",))
        .select_related("flag", "environment")
        .get(pk=plan.pk)
    )


def _person_reason(verb: str, actor: Actor, reason: str) -> str:
    return f"{verb} by {actor.name}" + (f": {reason}" if reason else "")


def _finished(plan: RolloutPlan, wanted: str) -> RolloutPlanConflict:
    return RolloutPlanConflict(
        f"Rollout plan #{plan.pk} for {plan.flag.key} in {plan.environment.key} is {plan.status}; "
        f"there is nothing to {wanted}. Create a new plan with PUT.",
        {"status": plan.status},
    )


def _killed(plan: RolloutPlan, state: FlagState, wanted: str) -> RolloutPlanConflict:
    return RolloutPlanConflict(
        f"{plan.flag.key} is killed in {plan.environment.key} (incident {state.kill_incident}); "
        f"restore it first, then {wanted} the plan.",
        {"status": "flag killed"},
    )


# --- creating and replacing ------------------------------------------------------------------


def _plan_fields(
    *,
    flag: Flag,
    state: FlagState,
    steps: Any,
    rule: Any,
    variant: Any,
    baseline_variant: Any,
    bucket_by: Any,
    allow_decrease: Any,
    plan_timezone: Any,
    now: datetime,
) -> tuple[dict[str, Any], list[schedule.StepSpec]]:
    """Validated plan fields and steps; raises ValidationFailed naming every bad field."""
    errors: dict[str, str] = {}
    rule_id = ""
    if rule not in (None, ""):
        ids = [r.get("id") for r in state.rules or () if isinstance(r, Mapping) and r.get("id")]
        if not isinstance(rule, str):
            errors["rule"] = "must be the id of one of the flag's rules (a string), or null"
        elif rule not in ids:
            known = ", ".join(map(repr, ids)) or "none (give rules an id to target them)"
            errors["rule"] = (
                f"no rule with id {rule!r} in {state.environment.key}; rule ids: {known}"
            )
        else:
            rule_id = rule
    names = list(flag.variants)
    if flag.type == Flag.Type.BOOLEAN:
        variant = "on" if variant in (None, "") else variant
        baseline_variant = "off" if baseline_variant in (None, "") else baseline_variant
    for field, value in (("variant", variant), ("baseline_variant", baseline_variant)):
        if value in (None, ""):
            errors[field] = (
                f"required for a {flag.type} flag: name the variant to roll out and the one "
                f"everyone else keeps (variants: {', '.join(names)})"
            )
        elif value not in flag.variants:
            errors[field] = f"must name one of the variants ({', '.join(names)}); got {value!r}"
    if "variant" not in errors and "baseline_variant" not in errors and variant == baseline_variant:
        errors["baseline_variant"] = "must differ from variant"
    if bucket_by in (None, ""):
        current = driven_serve(state.definition(), rule_id)
        bucket_by = (
            current.get("bucket_by", DEFAULT_BUCKET_BY)
            if isinstance(current, Mapping) and "split" in current
            else DEFAULT_BUCKET_BY
        )
    if not isinstance(bucket_by, str) or len(bucket_by) > 256:
        errors["bucket_by"] = "must be the name of a context attribute (1-256 characters)"
    if not isinstance(allow_decrease, bool):
        errors["allow_decrease"] = "must be true or false"
        allow_decrease = False
    plan_timezone = plan_timezone or ""
    if plan_timezone:
        _, problem = schedule.zone_of(plan_timezone)
        if problem:
            errors["timezone"] = problem
            plan_timezone = ""
    specs, step_errors = schedule.parse_steps(
        steps, plan_timezone=plan_timezone, allow_decrease=allow_decrease, now=now
    )
    errors.update(step_errors)
    services._raise_definition(errors)
    return {
        "rule_id": rule_id,
        "variant": variant,
        "baseline_variant": baseline_variant,
        "bucket_by": bucket_by,
        "allow_decrease": allow_decrease,
        "timezone": plan_timezone,
    }, specs


def _plan_put(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    steps: Any,
    replace: bool,
    rule: Any,
    variant: Any,
    baseline_variant: Any,
    bucket_by: Any,
    allow_decrease: Any,
    timezone_name: Any,
    reason: str,
    now: datetime | None,
) -> RolloutPlan:
    reason = services._check_reason(reason)
    moment = now or timezone.now()
    current = RolloutPlan.objects.filter(
        flag=flag, environment=environment, status__in=RolloutPlan.ACTIVE
    ).first()
    if current is not None and not replace:
        raise AlreadyExists(
            f"{flag.key} already has rollout plan #{current.pk} in {environment.key} "
            f"({current.status}); replace it (PUT) or abort it first.",
            {"plan": "an active plan exists"},
        )
    if current is not None:
        current = _lock_plan(current)  # plan before environment, like every plan action
        if not current.active:
            current = None
    environment, state = services._locked_state(flag, environment)
    if state.flag.archived:
        raise FlagArchived(
            f"Flag {flag.key!r} is archived; unarchive it before planning a rollout."
        )
    others = RolloutPlan.objects.filter(
        flag=flag, environment=environment, status__in=RolloutPlan.ACTIVE
    )
    if current is not None:
        others = others.exclude(pk=current.pk)
    racing = others.first()
    if racing is not None:
        raise RolloutPlanConflict(
            f"Rollout plan #{racing.pk} was created for {flag.key} in {environment.key} at the "
            "same time; read it (GET) and replace it if you still mean to.",
            {"plan": "changed concurrently"},
        )
    fields, specs = _plan_fields(
        flag=state.flag,
        state=state,
        steps=steps,
        rule=rule,
        variant=variant,
        baseline_variant=baseline_variant,
        bucket_by=bucket_by,
        allow_decrease=allow_decrease,
        plan_timezone=timezone_name,
        now=moment,
    )
    before = None
    if current is not None:
        before = rollout_plan_record(current)
        current.status = Status.ABORTED
        current.status_changed_at = moment
        current.status_changed_by = actor.name
        current.next_due_at = None
        current.save()
    plan = RolloutPlan(
        flag=state.flag,
        environment=environment,
        started_at=moment,
        created_by=actor.name,
        replaces=current,
        expected_serve=driven_serve(state.definition(), fields["rule_id"]),
        status_changed_at=moment,
        status_changed_by=actor.name,
        **fields,
    )
    if state.killed:
        plan.status = Status.PAUSED
        plan.status_reason = (
            f"paused: the flag is killed in {environment.key} (incident {state.kill_incident}); "
            "restore it, then resume the plan"
        )
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError:
        raise RolloutPlanConflict(
            f"Another rollout plan for {flag.key} in {environment.key} was created at the same "
            "time; read it (GET) and replace it if you still mean to.",
            {"plan": "changed concurrently"},
        ) from None
    created = RolloutStep.objects.bulk_create(
        RolloutStep(
            plan=plan,
            number=number,
            weight=spec.weight,
            at=spec.at,
            after_seconds=spec.after_seconds,
            timezone=spec.timezone,
        )
        for number, spec in enumerate(specs, start=1)
    )
    if plan.status != Status.PAUSED:
        plan.next_due_at = _next_due(plan, created)
        plan.save(update_fields=["next_due_at"])
    if current is not None:
        current.status_reason = _person_reason(f"replaced by plan #{plan.pk}", actor, reason)
        current.save(update_fields=["status_reason"])
    audit_record(
        actor=actor,
        action="rollout_plan.replace" if current is not None else "rollout_plan.create",
        target_type="rollout_plan",
        target_key=f"{flag.key}@{environment.key}",
        flag_key=flag.key,
        environment_key=environment.key,
        before=before,
        after=rollout_plan_record(plan, created),
        reason=reason,
    )
    return plan


@transaction.atomic
def rollout_plan_create(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    steps: Sequence[Mapping[str, Any]],
    rule: str | None = None,
    variant: str | None = None,
    baseline_variant: str | None = None,
    bucket_by: str | None = None,
    allow_decrease: bool = False,
    timezone_name: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> RolloutPlan:
    """Schedule a ramp-up of ``flag`` in ``environment``; refused if it already has an active plan.

    ``steps``: ``[{"percentage": 1}, {"percentage": 5, "after": "30m"},
    {"percentage": 25, "at": "2026-12-01T09:00:00", "timezone": "Europe/Berlin"}]``.
    ``rule`` names the rule (by id) whose split the plan drives; none: the default
    serve. Boolean flags roll out ``on`` against ``off``; other flags name their
    ``variant`` and ``baseline_variant``. A plan for a killed flag starts paused.
    """
    return _plan_put(
        actor=actor,
        flag=flag,
        environment=environment,
        steps=steps,
        replace=False,
        rule=rule,
        variant=variant,
        baseline_variant=baseline_variant,
        bucket_by=bucket_by,
        allow_decrease=allow_decrease,
        timezone_name=timezone_name,
        reason=reason,
        now=now,
    )


@transaction.atomic
def rollout_plan_replace(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    steps: Sequence[Mapping[str, Any]],
    rule: str | None = None,
    variant: str | None = None,
    baseline_variant: str | None = None,
    bucket_by: str | None = None,
    allow_decrease: bool = False,
    timezone_name: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> RolloutPlan:
    """Create a plan, aborting the active one if there is one (its steps stop; the flag keeps
    serving what the last applied step set). ``plan.replaces`` is the aborted plan."""
    return _plan_put(
        actor=actor,
        flag=flag,
        environment=environment,
        steps=steps,
        replace=True,
        rule=rule,
        variant=variant,
        baseline_variant=baseline_variant,
        bucket_by=bucket_by,
        allow_decrease=allow_decrease,
        timezone_name=timezone_name,
        reason=reason,
        now=now,
    )


# --- a person's actions ----------------------------------------------------------------------


@transaction.atomic
def rollout_plan_pause(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Stop advancing until someone resumes; the flag keeps serving the current step."""
    reason = services._check_reason(reason)
    plan = _lock_plan(plan)
    if plan.status == Status.PAUSED:
        return plan
    if not plan.active:
        raise _finished(plan, "pause")
    _set_status(
        plan,
        Status.PAUSED,
        actor=actor,
        action="pause",
        reason=reason,
        now=now or timezone.now(),
        status_reason=_person_reason("paused", actor, reason),
    )
    return plan


@transaction.atomic
def rollout_plan_resume(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Carry on from the next step. Its delay counts from now (a fresh soak), absolute times stand.

    Whatever the split is now (say, someone edited it while the plan was paused) is
    the new starting point. Refused while the flag is killed.
    """
    reason = services._check_reason(reason)
    plan = _lock_plan(plan)
    if plan.status in RolloutPlan.ADVANCING:
        return plan
    if not plan.active:
        raise _finished(plan, "resume")
    moment = now or timezone.now()
    environment, state = services._locked_state(plan.flag, plan.environment)
    if state.flag.archived:
        raise FlagArchived(f"Flag {plan.flag.key!r} is archived; unarchive it first.")
    if state.killed:
        raise _killed(plan, state, "resume")
    current = driven_serve(state.definition(), plan.rule_id)
    if current is _MISSING:
        raise RolloutPlanConflict(
            f"The rule {plan.rule_id!r} this plan drives no longer exists in {environment.key}; "
            "replace the plan (PUT) or abort it.",
            {"rule": "no longer exists"},
        )
    plan.resumed_at = moment
    plan.expected_serve = current
    applied = plan.steps.filter(applied_at__isnull=False).exists()
    _set_status(
        plan,
        Status.RUNNING if applied else Status.SCHEDULED,
        actor=actor,
        action="resume",
        reason=reason,
        now=moment,
        status_reason=_person_reason("resumed", actor, reason),
    )
    return plan


@transaction.atomic
def rollout_plan_abort(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Stop the plan for good. The flag keeps serving what the last applied step set."""
    reason = services._check_reason(reason)
    plan = _lock_plan(plan)
    if plan.status == Status.ABORTED:
        return plan
    if not plan.active:
        raise _finished(plan, "abort")
    _set_status(
        plan,
        Status.ABORTED,
        actor=actor,
        action="abort",
        reason=reason,
        now=now or timezone.now(),
        status_reason=_person_reason("aborted", actor, reason),
    )
    return plan


@transaction.atomic
def rollout_plan_skip_to_step(
    *,
    actor: Actor,
    plan: RolloutPlan,
    step: int,
    reason: str = "",
    now: datetime | None = None,
) -> RolloutPlan:
    """Apply step ``step`` (1-based) now, marking the pending steps before it as skipped.

    Forward only. A paused plan stays paused (its next step waits for resume); a
    scheduled or running one carries on from there. One audit event
    (``rollout_plan.skip``) for the state change and the skipped steps.
    """
    reason = services._check_reason(reason)
    plan = _lock_plan(plan)
    if not plan.active:
        raise _finished(plan, "skip")
    moment = now or timezone.now()
    environment, state = services._locked_state(plan.flag, plan.environment)
    steps = list(plan.steps.order_by("number"))
    total = len(steps)
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= total:
        raise ValidationFailed(
            f"step: the plan has steps 1-{total}; got {step!r}.", {"step": f"must be 1-{total}"}
        )
    pending = schedule.next_step(_progress(steps))
    assert pending is not None  # an active plan has a pending step
    if step - 1 < pending:
        raise RolloutPlanConflict(
            f"Step {step} of plan #{plan.pk} is already done; skipping only goes forward "
            f"(the next step is {pending + 1}).",
            {"step": f"the next step is {pending + 1}"},
        )
    if state.flag.archived:
        raise FlagArchived(f"Flag {plan.flag.key!r} is archived; unarchive it first.")
    if state.killed:
        raise _killed(plan, state, "skip")
    if driven_serve(state.definition(), plan.rule_id) is _MISSING:
        raise RolloutPlanConflict(
            f"The rule {plan.rule_id!r} this plan drives no longer exists in {environment.key}; "
            "replace the plan (PUT) or abort it.",
            {"rule": "no longer exists"},
        )
    target = steps[step - 1]
    serve = split_serve(plan, target.weight)
    proposed = _with_serve(state.definition(), plan.rule_id, serve)
    services._raise_definition(services._state_problems(state, environment, proposed))
    skipped = steps[pending : step - 1]
    for passed in skipped:
        passed.skipped_at = moment
        passed.save(update_fields=["skipped_at"])
    target.applied_at = moment
    target.save(update_fields=["applied_at"])
    plan.expected_serve = serve
    if step == total:
        plan.status = Status.COMPLETED
        plan.status_reason = _person_reason(f"completed by skipping to step {step}", actor, reason)
        plan.status_changed_at, plan.status_changed_by = moment, actor.name
    elif plan.status == Status.SCHEDULED:
        plan.status = Status.RUNNING
    plan.next_due_at = _next_due(plan, steps) if plan.status in RolloutPlan.ADVANCING else None
    plan.save()
    label = _step_label(plan, target, total)
    passed_over = (
        f" (skipped step{'s' if len(skipped) > 1 else ''} {', '.join(str(s.number) for s in skipped)})"
        if skipped
        else ""
    )
    services._state_write(
        actor=actor,
        state=state,
        environment=environment,
        proposed=proposed,
        reason=f"skip to {label}{passed_over}" + (f": {reason}" if reason else ""),
        action="rollout_plan.skip",
        annotation={"rollout_plan": _step_annotation(plan, target, total, skipped)},
    )
    return plan


def _step_annotation(
    plan: RolloutPlan, step: RolloutStep, total: int, skipped: Sequence[RolloutStep] = ()
) -> dict[str, Any]:
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


# --- the scheduler ------------------------------------------------------------------------------


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
    environment, state = services._locked_state(plan.flag, plan.environment)
    moment = now or timezone.now()
    steps = list(plan.steps.order_by("number"))
    total = len(steps)
    pending = schedule.next_step(_progress(steps))
    if pending is None:  # cannot happen through the services; settle it rather than loop
        _set_status(
            plan,
            Status.COMPLETED,
            actor=actor,
            action="complete",
            reason="no steps left",
            now=moment,
        )
        return None
    step = steps[pending]
    label = _step_label(plan, step, total)
    # Re-checked here, under the environment lock: a kill, edit or archive that could
    # not take this plan's row while this step held it is caught now.
    if state.flag.archived:
        _set_status(
            plan,
            Status.ABORTED,
            actor=actor,
            action="abort",
            reason="aborted: the flag was archived",
            now=moment,
        )
        return None
    if state.killed:
        _set_status(
            plan,
            Status.PAUSED,
            actor=actor,
            action="pause",
            reason=f"paused: flag killed (incident {state.kill_incident}); {label} not applied",
            now=moment,
        )
        return None
    current = driven_serve(state.definition(), plan.rule_id)
    if current is _MISSING or (plan.expected_serve is not None and current != plan.expected_serve):
        what = (
            f"the rule {plan.rule_id!r} was removed or renamed"
            if current is _MISSING
            else f"the {plan.target_label} was changed outside the plan"
        )
        _set_status(
            plan,
            Status.PAUSED,
            actor=actor,
            action="pause",
            reason=f"paused: {what}; {label} not applied",
            now=moment,
        )
        return None
    serve = split_serve(plan, step.weight)
    proposed = _with_serve(state.definition(), plan.rule_id, serve)
    problems = services._state_problems(state, environment, proposed)
    if problems:
        field, problem = next(iter(problems.items()))
        _set_status(
            plan,
            Status.PAUSED,
            actor=actor,
            action="pause",
            reason=f"paused: {label} would not be a valid state ({field}: {problem})",
            now=moment,
        )
        return None
    step.due_at, step.applied_at = plan.next_due_at, moment
    step.save(update_fields=["due_at", "applied_at"])
    plan.expected_serve = serve
    if pending == total - 1:
        plan.status = Status.COMPLETED
        plan.status_reason = f"completed: all {total} steps applied"
        plan.status_changed_at, plan.status_changed_by = moment, actor.name
        plan.next_due_at = None
    else:
        plan.status = Status.RUNNING
        plan.next_due_at = _next_due(plan, steps)
    plan.save()
    services._state_write(
        actor=actor,
        state=state,
        environment=environment,
        proposed=proposed,
        reason=label,
        action="rollout_plan.step",
        annotation={"rollout_plan": _step_annotation(plan, step, total)},
    )
    return step


# --- what other services call, inside their transaction -------------------------------------------


def _advancing_plans(flag_ids: Sequence[int], environment_ids: Sequence[int] | None = None) -> list:
    """Plans that would still advance, taken with SKIP LOCKED: the caller holds an environment
    lock and must not wait for a plan row (a step holding one re-checks for itself)."""
    plans = (
        RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("flag", "environment")
        .filter(flag_id__in=flag_ids, status__in=RolloutPlan.ADVANCING)
        .order_by("id")
    )
    if environment_ids is not None:
        plans = plans.filter(environment_id__in=environment_ids)
    return list(plans)


def rollout_plans_pause_for_kill(
    *, actor: Actor, states: Sequence[FlagState], environment: Environment
) -> None:
    """A kill pauses the killed flags' plans in that environment (restore leaves them paused)."""
    by_flag = {state.flag_id: state for state in states}
    if not by_flag:
        return
    moment = timezone.now()
    for plan in _advancing_plans(list(by_flag), [environment.pk]):
        state = by_flag[plan.flag_id]
        _set_status(
            plan,
            Status.PAUSED,
            actor=actor,
            action="pause",
            reason=f"paused: flag killed (incident {state.kill_incident}): {state.kill_reason}",
            now=moment,
        )


def rollout_plans_pause_for_edit(
    *,
    actor: Actor,
    state: FlagState,
    environment: Environment,
    previous: Mapping[str, Any],
    reason: str,
) -> None:
    """A person changing the split a plan drives (or removing its rule) pauses the plan."""
    moment = timezone.now()
    for plan in _advancing_plans([state.flag_id], [environment.pk]):
        after = driven_serve(state.definition(), plan.rule_id)
        if after is _MISSING:
            what = f"rule {plan.rule_id!r} was removed or renamed"
        elif after != driven_serve(previous, plan.rule_id):
            what = f"the {plan.target_label} was changed"
        else:
            continue
        _set_status(
            plan,
            Status.PAUSED,
            actor=actor,
            action="pause",
            reason=f"paused: {what} by {actor.name}; resume the plan to let it carry on from there"
            + (f" (edit reason: {reason})" if reason else ""),
            now=moment,
        )


def rollout_plans_abort_for_archive(*, actor: Actor, flag: Flag) -> None:
    """Archiving a flag aborts its plans in every environment."""
    moment = timezone.now()
    plans = (
        RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("flag", "environment")
        .filter(flag_id=flag.pk, status__in=RolloutPlan.ACTIVE)
        .order_by("id")
    )
    for plan in plans:
        _set_status(
            plan,
            Status.ABORTED,
            actor=actor,
            action="abort",
            reason="aborted: the flag was archived",
            now=moment,
        )

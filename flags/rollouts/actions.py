"""People's rollout plan actions: create, replace, pause, resume, abort and skip to a step.

Writes in the style of ``flags.services``: keyword-only arguments, an explicit
actor, one transaction per change, one audit event per change, publish after
commit. A person's plan action takes the plan row first, then the environment
(``flags.rollouts.scheduler`` explains why that order cannot deadlock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags.errors import (
    AlreadyExists,
    FlagArchived,
    RolloutPlanConflict,
    ValidationFailed,
)
from flags.models import Environment, Flag, FlagState, RolloutPlan, RolloutStep
from flags.rollouts import schedule
from flags.rollouts.plans import (
    MISSING,
    Status,
    driven_serve,
    finished_conflict,
    killed_conflict,
    person_reason,
    plan_lock,
    plan_next_due,
    plan_progress,
    plan_status_set,
    rollout_plan_record,
    serve_replaced,
    split_serve,
    step_annotation,
    step_label,
)
from flags.services import core
from flagsvc_sdk.engine import DEFAULT_BUCKET_BY


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
    core.raise_definition(errors)
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
    rule: Any = None,
    variant: Any = None,
    baseline_variant: Any = None,
    bucket_by: Any = None,
    allow_decrease: Any = False,
    timezone_name: Any = "",
    reason: str = "",
    now: datetime | None = None,
) -> RolloutPlan:
    reason = core.check_reason(reason)
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
        current = plan_lock(current)  # plan before environment, like every plan action
        if not current.active:
            current = None
    environment, state = core.locked_state(flag, environment)
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
        plan.next_due_at = plan_next_due(plan, created)
        plan.save(update_fields=["next_due_at"])
    if current is not None:
        current.status_reason = person_reason(f"replaced by plan #{plan.pk}", actor, reason)
        current.save(update_fields=["status_reason"])
    recorder.audit_record(
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


class PlanOptions(TypedDict, total=False):
    """What a plan may say besides its steps, all optional (see ``rollout_plan_create``)."""

    rule: str | None
    variant: str | None
    baseline_variant: str | None
    bucket_by: str | None
    allow_decrease: bool
    timezone_name: str
    reason: str
    now: datetime | None


@transaction.atomic
def rollout_plan_create(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    steps: Sequence[Mapping[str, Any]],
    **options: Unpack[PlanOptions],
) -> RolloutPlan:
    """Schedule a ramp-up of ``flag`` in ``environment``; refused if it already has an active plan.

    ``steps``: ``[{"percentage": 1}, {"percentage": 5, "after": "30m"},
    {"percentage": 25, "at": "2026-12-01T09:00:00", "timezone": "Europe/Berlin"}]``.
    ``rule`` names the rule (by id) whose split the plan drives; none: the default
    serve. Boolean flags roll out ``on`` against ``off``; other flags name their
    ``variant`` and ``baseline_variant``. A plan for a killed flag starts paused.
    """
    return _plan_put(
        actor=actor, flag=flag, environment=environment, steps=steps, replace=False, **options
    )


@transaction.atomic
def rollout_plan_replace(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    steps: Sequence[Mapping[str, Any]],
    **options: Unpack[PlanOptions],
) -> RolloutPlan:
    """Create a plan, aborting the active one if there is one (its steps stop; the flag keeps
    serving what the last applied step set). ``plan.replaces`` is the aborted plan."""
    return _plan_put(
        actor=actor, flag=flag, environment=environment, steps=steps, replace=True, **options
    )


# --- a person's actions ----------------------------------------------------------------------


def _plan_stop(
    plan: RolloutPlan, status: str, *, actor: Actor, reason: str, now: datetime | None
) -> RolloutPlan:
    """Pause or abort a plan for a person (nothing if it already is so; refused once finished)."""
    action, verb = ("pause", "paused") if status == Status.PAUSED else ("abort", "aborted")
    reason = core.check_reason(reason)
    plan = plan_lock(plan)
    if plan.status == status:
        return plan
    if not plan.active:
        raise finished_conflict(plan, action)
    plan_status_set(
        plan,
        status,
        actor=actor,
        action=action,
        reason=reason,
        now=now or timezone.now(),
        status_reason=person_reason(verb, actor, reason),
    )
    return plan


@transaction.atomic
def rollout_plan_pause(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Stop advancing until someone resumes; the flag keeps serving the current step."""
    return _plan_stop(plan, Status.PAUSED, actor=actor, reason=reason, now=now)


@transaction.atomic
def rollout_plan_resume(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Carry on from the next step. Its delay counts from now (a fresh soak), absolute times stand.

    Whatever the split is now (say, someone edited it while the plan was paused) is
    the new starting point. Refused while the flag is killed.
    """
    reason = core.check_reason(reason)
    plan = plan_lock(plan)
    if plan.status in RolloutPlan.ADVANCING:
        return plan
    if not plan.active:
        raise finished_conflict(plan, "resume")
    moment = now or timezone.now()
    environment, state = core.locked_state(plan.flag, plan.environment)
    if state.flag.archived:
        raise FlagArchived(f"Flag {plan.flag.key!r} is archived; unarchive it first.")
    if state.killed:
        raise killed_conflict(plan, state, "resume")
    current = driven_serve(state.definition(), plan.rule_id)
    if current is MISSING:
        raise RolloutPlanConflict(
            f"The rule {plan.rule_id!r} this plan drives no longer exists in {environment.key}; "
            "replace the plan (PUT) or abort it.",
            {"rule": "no longer exists"},
        )
    plan.resumed_at = moment
    plan.expected_serve = current
    applied = plan.steps.filter(applied_at__isnull=False).exists()
    plan_status_set(
        plan,
        Status.RUNNING if applied else Status.SCHEDULED,
        actor=actor,
        action="resume",
        reason=reason,
        now=moment,
        status_reason=person_reason("resumed", actor, reason),
    )
    return plan


@transaction.atomic
def rollout_plan_abort(
    *, actor: Actor, plan: RolloutPlan, reason: str = "", now: datetime | None = None
) -> RolloutPlan:
    """Stop the plan for good. The flag keeps serving what the last applied step set."""
    return _plan_stop(plan, Status.ABORTED, actor=actor, reason=reason, now=now)


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
    reason = core.check_reason(reason)
    plan = plan_lock(plan)
    if not plan.active:
        raise finished_conflict(plan, "skip")
    moment = now or timezone.now()
    environment, state = core.locked_state(plan.flag, plan.environment)
    steps = list(plan.steps.order_by("number"))
    total = len(steps)
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= total:
        raise ValidationFailed(
            f"step: the plan has steps 1-{total}; got {step!r}.", {"step": f"must be 1-{total}"}
        )
    pending = schedule.next_step(plan_progress(steps))
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
        raise killed_conflict(plan, state, "skip")
    if driven_serve(state.definition(), plan.rule_id) is MISSING:
        raise RolloutPlanConflict(
            f"The rule {plan.rule_id!r} this plan drives no longer exists in {environment.key}; "
            "replace the plan (PUT) or abort it.",
            {"rule": "no longer exists"},
        )
    target = steps[step - 1]
    serve = split_serve(plan, target.weight)
    proposed = serve_replaced(state.definition(), plan.rule_id, serve)
    core.raise_definition(core.state_problems(state, environment, proposed))
    skipped = steps[pending : step - 1]
    for passed in skipped:
        passed.skipped_at = moment
        passed.save(update_fields=["skipped_at"])
    target.applied_at = moment
    target.save(update_fields=["applied_at"])
    plan.expected_serve = serve
    if step == total:
        plan.status = Status.COMPLETED
        plan.status_reason = person_reason(f"completed by skipping to step {step}", actor, reason)
        plan.status_changed_at, plan.status_changed_by = moment, actor.name
    elif plan.status == Status.SCHEDULED:
        plan.status = Status.RUNNING
    plan.next_due_at = plan_next_due(plan, steps) if plan.status in RolloutPlan.ADVANCING else None
    plan.save()
    label = step_label(plan, target, total)
    passed_over = (
        f" (skipped step{'s' if len(skipped) > 1 else ''} {', '.join(str(s.number) for s in skipped)})"
        if skipped
        else ""
    )
    core.state_write(
        actor=actor,
        state=state,
        environment=environment,
        proposed=proposed,
        reason=f"skip to {label}{passed_over}" + (f": {reason}" if reason else ""),
        action="rollout_plan.skip",
        annotation={"rollout_plan": step_annotation(plan, target, total, skipped)},
    )
    return plan

"""Evaluate a guardrail: ask Prometheus, record the check, and act once per breach.

**Exactly once.** The query runs outside any transaction; its answer is then
recorded in one transaction that locks the guardrail row (so checks of the same
guardrail queue behind each other), re-reads the breach it is in, and acts only if
that breach has not been acted on (``acted_for``). The action (a kill, a pause, a
step back through the audited services, as ``guardrail:<name>``) commits with the
check and the ``guardrail.breach`` audit event, or not at all; a unique constraint
on (guardrail, breach start) for acting checks makes a second action impossible
even for a writer that ignored the lock. Lock order: guardrail, then plan, then
environment — the scheduler and the services never take a guardrail row, so no cycle.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags import rollouts, selectors, services
from flags.errors import ServiceError
from flags.guardrails.prometheus import QueryFailed, instant_query
from flags.models import Guardrail, GuardrailCheck, RolloutPlan

logger = logging.getLogger(__name__)

Health = Guardrail.Health
COMPARE: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "gt": (operator.gt, ">"),
    "gte": (operator.ge, ">="),
    "lt": (operator.lt, "<"),
    "lte": (operator.le, "<="),
}


@dataclass(frozen=True)
class Reading:
    """What the query answered now: a health (ok, pending-or-breach, error, no data) and a value."""

    breaching: bool
    health: str
    value: float | None
    message: str


def guardrail_read(guardrail: Guardrail) -> Reading:
    """Ask Prometheus; never raises (a failure is a reading too). Acts on nothing."""
    compare, symbol = COMPARE[guardrail.comparison]
    try:
        answer = instant_query(
            guardrail.prometheus_url or settings.PROMETHEUS_URL,
            guardrail.query,
            timeout=settings.GUARDRAIL_QUERY_TIMEOUT_SECONDS,
        )
    except QueryFailed as error:
        return Reading(False, Health.ERROR, None, str(error)[:1000])
    if not answer.values:
        what = "no series" if not answer.series else "no finite value (NaN: no traffic?)"
        return Reading(False, Health.NO_DATA, None, f"the query answered {what}")
    # Several series: the worst one decides (the highest for >, the lowest for <).
    value = max(answer.values) if symbol.startswith(">") else min(answer.values)
    breaching = compare(value, guardrail.threshold)
    relation = symbol if breaching else {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[symbol]
    return Reading(
        breaching,
        Health.PENDING if breaching else Health.OK,
        value,
        f"{value:g} {relation} {guardrail.threshold:g}",
    )


def guardrails_check_due(*, now: datetime | None = None) -> int:
    """Check every guardrail being watched (what the beat task runs); returns how many acted."""
    acted = 0
    for guardrail_id in selectors.guardrails_to_check(now or timezone.now()):
        try:
            check = guardrail_check(guardrail=guardrail_id)
        except Exception:
            logger.exception(
                "guardrail #%s could not be checked; the next tick retries", guardrail_id
            )
            continue
        acted += check.acted not in ("", "none")
    return acted


def guardrail_check(*, guardrail: Guardrail | int, act: bool = True) -> GuardrailCheck:
    """Evaluate the guardrail now, record the check and (``act``) act on a breach held long enough."""
    guardrail_id = guardrail if isinstance(guardrail, int) else guardrail.pk
    current = Guardrail.objects.select_related("flag", "environment").get(pk=guardrail_id)
    reading = guardrail_read(current)
    return _record(guardrail_id, reading, act=act)


@transaction.atomic
def _record(guardrail_id: int, reading: Reading, *, act: bool) -> GuardrailCheck:
    guardrail = (
        Guardrail.objects.select_for_update(of=("self",))
        .select_related("flag", "environment")
        .get(pk=guardrail_id)
    )
    moment = timezone.now()
    plan = (
        RolloutPlan.objects.filter(
            flag_id=guardrail.flag_id, environment_id=guardrail.environment_id
        )
        .order_by("-id")
        .first()
    )
    health, message = reading.health, reading.message
    if reading.health == Health.OK:
        guardrail.breach_started_at = guardrail.acted_for = None
    elif reading.breaching:
        guardrail.breach_started_at = guardrail.breach_started_at or moment
        held = (moment - guardrail.breach_started_at).total_seconds()
        if held >= guardrail.for_seconds:
            health = Health.BREACH
        else:
            message += f" for {held:.0f}s of {guardrail.for_seconds}s"
    # A failing query neither starts nor ends a breach: it only blocks the plan.
    check = GuardrailCheck(
        guardrail=guardrail,
        plan=plan,
        checked_at=moment,
        health=health,
        value=reading.value,
        message=message,
        breach_started_at=guardrail.breach_started_at,
    )
    if (
        act
        and health == Health.BREACH
        and guardrail.enabled
        and guardrail.acted_for != guardrail.breach_started_at
    ):
        check.acted, check.message = _act(guardrail, plan, reading, message)
        guardrail.acted_for = guardrail.breach_started_at
    if act:
        guardrail.health = health
        guardrail.last_value = reading.value
        guardrail.last_message = check.message
        guardrail.last_checked_at = moment
        guardrail.save(
            update_fields=[
                "health",
                "last_value",
                "last_message",
                "last_checked_at",
                "breach_started_at",
                "acted_for",
                "updated_at",
            ]
        )
        check.save()
    return check


def breach_reason(guardrail: Guardrail, value: float | None) -> str:
    """The reason a breach's actions carry: the query, the observed value and the threshold."""
    symbol = COMPARE[guardrail.comparison][1]
    held = f" for {guardrail.for_seconds}s" if guardrail.for_seconds else ""
    return (
        f"guardrail {guardrail.name} breached: {guardrail.query} = {value:g} "
        f"{symbol} {guardrail.threshold:g}{held}"
    )


def _act(
    guardrail: Guardrail, plan: RolloutPlan | None, reading: Reading, message: str
) -> tuple[str, str]:
    """Carry out the guardrail's action; returns (the action taken or "none", the check's message)."""
    actor = Actor.guardrail(guardrail.name)
    reason = breach_reason(guardrail, reading.value)
    flag, environment = guardrail.flag, guardrail.environment
    done = "none"
    outcome = ""
    try:
        with transaction.atomic():
            if guardrail.action == Guardrail.Action.KILL:
                result = services.flag_kill(
                    actor=actor, flag=flag, environment=environment, reason=reason[:500]
                )
                done, outcome = "kill", "killed" if result.changed else "already killed"
            elif plan is None:
                outcome = "no rollout plan to act on"
            elif guardrail.action == Guardrail.Action.STEP_BACK:
                rollouts.rollout_plan_step_back(actor=actor, plan=plan, reason=reason)
                done, outcome = "step_back", f"stepped plan #{plan.pk} back and paused it"
            elif plan.status in RolloutPlan.ADVANCING:
                rollouts.rollout_plan_pause(actor=actor, plan=plan, reason=reason)
                done, outcome = "pause", f"paused plan #{plan.pk}"
            else:
                outcome = f"plan #{plan.pk} is {plan.status}: nothing to pause"
    except ServiceError as error:
        done, outcome = "none", f"could not {guardrail.action}: {error}"
    recorder.audit_record(
        actor=actor,
        action="guardrail.breach",
        target_type="guardrail",
        target_key=f"{flag.key}@{environment.key}:{guardrail.name}",
        flag_key=flag.key,
        environment_key=environment.key,
        after={
            "guardrail": guardrail.name,
            "query": guardrail.query,
            "value": reading.value,
            "comparison": guardrail.comparison,
            "threshold": guardrail.threshold,
            "for_seconds": guardrail.for_seconds,
            "action": guardrail.action,
            "outcome": outcome,
            "plan": plan.pk if plan is not None else None,
        },
        reason=reason,
    )
    return done, f"{message}: {outcome}"

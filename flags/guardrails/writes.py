"""People's guardrail writes: create, change, enable or disable, delete — validated and audited."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from audit import recorder
from audit.recorder import Actor
from flags.errors import AlreadyExists, ValidationFailed
from flags.models import Environment, Flag, Guardrail
from flags.services import core

GUARDRAIL_FIELDS = (
    "query",
    "comparison",
    "threshold",
    "for_seconds",
    "action",
    "watch_seconds",
    "prometheus_url",
)
MAX_QUERY = 2000
MAX_SECONDS = 7 * 24 * 3600


def guardrail_record(guardrail: Guardrail) -> dict[str, Any]:
    """A guardrail as the audit trail and the API show its settings."""
    return {
        "name": guardrail.name,
        "flag": guardrail.flag.key,
        "environment": guardrail.environment.key,
        **{field: getattr(guardrail, field) for field in GUARDRAIL_FIELDS},
        "enabled": guardrail.enabled,
    }


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields given, validated; raises ValidationFailed naming every bad one."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for field, value in fields.items():
        if field == "query":
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_QUERY:
                errors[field] = f"a PromQL instant query (1-{MAX_QUERY} characters)"
            else:
                clean[field] = value.strip()
        elif field in ("comparison", "action"):
            choices = Guardrail.Comparison if field == "comparison" else Guardrail.Action
            if value not in choices.values:
                errors[field] = f"one of {', '.join(choices.values)}"
            else:
                clean[field] = value
        elif field == "threshold":
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                errors[field] = "a finite number"
            else:
                clean[field] = float(value)
        elif field in ("for_seconds", "watch_seconds"):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= MAX_SECONDS
            ):
                errors[field] = f"whole seconds, 0-{MAX_SECONDS}"
            else:
                clean[field] = value
        elif field == "prometheus_url":
            value = (value or "").strip()
            if (value and not value.startswith(("http://", "https://"))) or len(value) > 500:
                errors[field] = (
                    "an http(s) URL of Prometheus (or empty: the PROMETHEUS_URL setting)"
                )
            else:
                clean[field] = value
        else:
            errors[field] = "unknown field"
    core.raise_definition(errors)
    return clean


def _audit(actor: Actor, action: str, guardrail: Guardrail, before: Any, reason: str) -> None:
    recorder.audit_record(
        actor=actor,
        action=f"guardrail.{action}",
        target_type="guardrail",
        target_key=f"{guardrail.flag.key}@{guardrail.environment.key}:{guardrail.name}",
        flag_key=guardrail.flag.key,
        environment_key=guardrail.environment.key,
        before=before,
        after=guardrail_record(guardrail) if action != "delete" else None,
        reason=reason,
    )


@transaction.atomic
def guardrail_create(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    name: str,
    query: str,
    threshold: float,
    comparison: str = "gt",
    for_seconds: int = 0,
    action: str = "pause",
    watch_seconds: int = 900,
    prometheus_url: str = "",
    enabled: bool = True,
    reason: str = "",
) -> Guardrail:
    """Watch ``flag`` in ``environment`` with a Prometheus query (see ``flags.guardrails``)."""
    reason = core.check_reason(reason)
    core.check_key(name, "Guardrail")
    fields = _checked(
        {
            "query": query,
            "comparison": comparison,
            "threshold": threshold,
            "for_seconds": for_seconds,
            "action": action,
            "watch_seconds": watch_seconds,
            "prometheus_url": prometheus_url,
        }
    )
    guardrail = Guardrail(
        flag=flag,
        environment=environment,
        name=name,
        enabled=enabled,
        created_by=actor.name,
        **fields,
    )
    try:
        with transaction.atomic():
            guardrail.save()
    except IntegrityError:
        raise AlreadyExists(
            f"{flag.key} already has a guardrail named {name!r} in {environment.key}.",
            {"name": "already exists"},
        ) from None
    _audit(actor, "create", guardrail, None, reason)
    return guardrail


def _locked(guardrail: Guardrail) -> Guardrail:
    return (
        Guardrail.objects.select_for_update(of=("self",))
        .select_related("flag", "environment")
        .get(pk=guardrail.pk)
    )


@transaction.atomic
def guardrail_update(
    *, actor: Actor, guardrail: Guardrail, reason: str = "", **fields: Any
) -> Guardrail:
    """Change some of a guardrail's settings (any of ``GUARDRAIL_FIELDS`` and ``enabled``)."""
    reason = core.check_reason(reason)
    enabled = fields.pop("enabled", None)
    if enabled is not None and not isinstance(enabled, bool):
        raise ValidationFailed("enabled: must be true or false", {"enabled": "true or false"})
    clean = _checked(fields)
    guardrail = _locked(guardrail)
    before = guardrail_record(guardrail)
    for field, value in clean.items():
        setattr(guardrail, field, value)
    if enabled is not None:
        guardrail.enabled = enabled
    if guardrail_record(guardrail) == before:
        return guardrail
    if not guardrail.enabled or set(clean) & {"query", "comparison", "threshold", "prometheus_url"}:
        # A changed (or switched off) guardrail starts afresh: its old answers do not count.
        guardrail.health = Guardrail.Health.UNKNOWN
        guardrail.breach_started_at = guardrail.acted_for = guardrail.last_checked_at = None
    guardrail.save()
    action = (
        "update"
        if set(clean) or enabled is None
        else ("enable" if guardrail.enabled else "disable")
    )
    _audit(actor, action, guardrail, before, reason)
    return guardrail


def guardrail_enable(*, actor: Actor, guardrail: Guardrail, reason: str = "") -> Guardrail:
    """Watch again (it must answer healthy before the plan's next step)."""
    return guardrail_update(actor=actor, guardrail=guardrail, enabled=True, reason=reason)


def guardrail_disable(*, actor: Actor, guardrail: Guardrail, reason: str = "") -> Guardrail:
    """Stop watching: no checks, no actions, and it no longer holds the plan's steps."""
    return guardrail_update(actor=actor, guardrail=guardrail, enabled=False, reason=reason)


@transaction.atomic
def guardrail_delete(*, actor: Actor, guardrail: Guardrail, reason: str = "") -> None:
    """Remove a guardrail and its check history (the audit trail keeps its record)."""
    reason = core.check_reason(reason)
    guardrail = _locked(guardrail)
    before = guardrail_record(guardrail)
    _audit(actor, "delete", guardrail, before, reason)
    guardrail.delete()

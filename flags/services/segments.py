"""Segments: reusable audiences of one environment, which flags' rules refer to by key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from audit import recorder
from audit.recorder import Actor
from flags import validation
from flags.errors import AlreadyExists, ValidationFailed
from flags.models import Environment, FlagState, Segment
from flags.selectors import segment_document
from flags.services import core

SEGMENT_FIELDS = ("name", "description", "included", "excluded", "rules")


def _segment_record(segment: Segment) -> dict[str, Any]:
    return {**segment_document(segment), "name": segment.name, "description": segment.description}


def _segment_audit(
    actor: Actor,
    action: str,
    segment: Segment,
    environment: Environment,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str,
) -> None:
    recorder.audit_record(
        actor=actor,
        action=action,
        target_type="segment",
        target_key=f"{segment.key}@{environment.key}",
        environment_key=environment.key,
        before=before,
        after=after,
        reason=reason,
    )


@transaction.atomic
def segment_create(
    *,
    actor: Actor,
    environment: Environment,
    key: str,
    name: str = "",
    description: str = "",
    included: Sequence[str] = (),
    excluded: Sequence[str] = (),
    rules: Sequence[Mapping[str, Any]] = (),
    reason: str = "",
) -> Segment:
    """Create a reusable audience in one environment."""
    reason = core.check_reason(reason)
    core.check_key(key, "Segment")
    for field, value in (("included", included), ("excluded", excluded), ("rules", rules)):
        if isinstance(value, str | bytes | Mapping):
            raise ValidationFailed(f"{field} must be a list.", {field: "must be a list"})
    definition = {"included": list(included), "excluded": list(excluded), "rules": list(rules)}
    core.raise_definition(validation.check_segment(definition))
    (environment,) = core.lock_environments([environment.id])
    if Segment.objects.filter(environment=environment, key=key).exists():
        raise AlreadyExists(
            f"Segment {key!r} already exists in {environment.key}.", {"key": "already exists"}
        )
    segment = Segment.objects.create(
        environment=environment, key=key, name=name, description=description, **definition
    )
    core.bump_versions([environment], segments=[key])
    _segment_audit(
        actor, "segment.create", segment, environment, None, _segment_record(segment), reason
    )
    return segment


@transaction.atomic
def segment_update(*, actor: Actor, segment: Segment, reason: str = "", **changes: Any) -> Segment:
    """Change a segment; every flag using it in that environment follows."""
    reason = core.check_reason(reason)
    unknown = set(changes) - set(SEGMENT_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Unknown segment fields: {', '.join(sorted(unknown))}.",
            dict.fromkeys(sorted(unknown), "unknown field"),
        )
    (environment,) = core.lock_environments([segment.environment_id])
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    before = _segment_record(segment)
    for field, value in changes.items():
        setattr(segment, field, value)
    core.raise_definition(validation.check_segment(segment.definition()))
    after = _segment_record(segment)
    if after == before:
        return segment
    segment.save()
    core.bump_versions([environment], segments=[segment.key])
    _segment_audit(actor, "segment.update", segment, environment, before, after, reason)
    return segment


@transaction.atomic
def segment_delete(*, actor: Actor, segment: Segment, reason: str = "") -> None:
    """Delete a segment that no flag's rules use any more."""
    reason = core.check_reason(reason)
    (environment,) = core.lock_environments([segment.environment_id])
    users = sorted(
        s.flag.key
        for s in FlagState.objects.filter(environment=environment).select_related("flag")
        if any(
            c.get("operator") in ("in_segment", "not_in_segment")
            and segment.key
            in (c["value"] if isinstance(c.get("value"), list) else [c.get("value")])
            for rule in s.rules or ()
            for c in rule.get("conditions") or ()
        )
    )
    if users:
        raise ValidationFailed(
            f"Segment {segment.key!r} is used by {', '.join(users)} in {environment.key}; "
            "remove it from their rules first.",
            {"key": "still in use"},
        )
    before = segment_document(segment)
    segment.delete()
    core.bump_versions([environment], segments=[segment.key])
    _segment_audit(actor, "segment.delete", segment, environment, before, None, reason)

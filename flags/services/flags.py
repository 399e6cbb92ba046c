"""Flags: create, change, archive and unarchive a flag (its definition shared by every environment)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags import selectors, validation
from flags.errors import AlreadyExists, FlagArchived, ValidationFailed
from flags.models import Environment, Flag, FlagState, Tag
from flags.services import core
from flagsvc_sdk.engine import FLAG_KEY_PATTERN

FLAG_EDITABLE_FIELDS = (
    "name",
    "description",
    "owner",
    "tags",
    "client_visible",
    "variants",
    "off_variant",
)


def _flag_record(flag: Flag, tags: Iterable[str] | None = None) -> dict[str, Any]:
    return {
        "key": flag.key,
        "name": flag.name,
        "description": flag.description,
        "type": flag.type,
        "variants": flag.variants,
        "off_variant": flag.off_variant,
        "tags": sorted(tags if tags is not None else (t.name for t in flag.tags.all())),
        "owner": flag.owner,
        "client_visible": flag.client_visible,
        "archived": flag.archived,
    }


def _default_variant(variants: Mapping[str, Any], off_variant: str) -> str:
    """What an enabled flag serves until someone sets rules: the first non-off variant."""
    if "on" in variants and off_variant != "on":
        return "on"
    return next((name for name in variants if name != off_variant), off_variant)


def _tags_for(names: Iterable[str]) -> list[Tag]:
    names = sorted(set(names))
    for name in names:
        if not isinstance(name, str) or not FLAG_KEY_PATTERN.match(name) or len(name) > 64:
            raise ValidationFailed(
                f"Tag {name!r} is not valid: use lowercase letters, digits, '.', '_' or '-'.",
                {"tags": "each tag matches ^[a-z0-9][a-z0-9._-]{0,63}$"},
            )
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    return [existing.get(n) or Tag.objects.get_or_create(name=n)[0] for n in names]


def initial_state(flag: Flag, environment: Environment) -> FlagState:
    """A new flag's state in an environment (unsaved): off, serving its first non-off variant once on."""
    return FlagState(
        flag=flag,
        environment=environment,
        enabled=False,
        default_serve={"variant": _default_variant(flag.variants, flag.off_variant)},
    )


def _flag_audit(
    actor: Actor,
    action: str,
    flag: Flag,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    reason: str,
) -> None:
    recorder.audit_record(
        actor=actor,
        action=action,
        target_type="flag",
        target_key=flag.key,
        flag_key=flag.key,
        before=before,
        after=after,
        reason=reason,
    )


@transaction.atomic
def flag_create(
    *,
    actor: Actor,
    key: str,
    type: str = Flag.Type.BOOLEAN,
    variants: Mapping[str, Any] | None = None,
    off_variant: str | None = None,
    name: str = "",
    description: str = "",
    tags: Iterable[str] = (),
    owner: str = "",
    client_visible: bool = False,
    reason: str = "",
) -> Flag:
    """Create a flag, off in every environment.

    >>> flag_create(actor=Actor.cli("alice"), key="new-checkout", tags=["payments"])  # doctest: +SKIP
    """
    reason = core.check_reason(reason)
    core.check_key(key, "Flag")
    if variants is None:
        if type != Flag.Type.BOOLEAN:
            raise ValidationFailed(
                f'A {type} flag needs its variants, e.g. {{"control": ..., "treatment": ...}}.',
                {"variants": "required for non-boolean flags"},
            )
        variants = {"on": True, "off": False}
    if off_variant is None:
        off_variant = "off" if "off" in variants else next(iter(variants), "")
    core.raise_definition(validation.check_variants(type, variants, off_variant))
    tag_rows = _tags_for(tags)
    environments = core.lock_all_environments()
    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                key=key,
                type=type,
                variants=dict(variants),
                off_variant=off_variant,
                name=name,
                description=description,
                owner=owner,
                client_visible=client_visible,
            )
    except IntegrityError:
        raise AlreadyExists(f"Flag {key!r} already exists.", {"key": "already exists"}) from None
    flag.tags.set(tag_rows)
    FlagState.objects.bulk_create(initial_state(flag, e) for e in environments)
    core.bump_versions(environments, flags=[key])
    _flag_audit(
        actor, "flag.create", flag, None, _flag_record(flag, (t.name for t in tag_rows)), reason
    )
    return flag


@transaction.atomic
def flag_update(*, actor: Actor, flag: Flag, reason: str = "", **changes: Any) -> Flag:
    """Change a flag's description, ownership, tags, visibility or variants.

    Variant changes are checked against the flag's state in every environment and
    against other flags' prerequisites on it; the type never changes.
    """
    reason = core.check_reason(reason)
    unknown = set(changes) - set(FLAG_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
            dict.fromkeys(sorted(unknown), "not editable (a flag's key and type are fixed)"),
        )
    environments = core.lock_all_environments()
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if flag.archived:
        raise FlagArchived(f"Flag {flag.key!r} is archived; unarchive it before changing it.")
    before = _flag_record(flag)
    tag_rows = None
    if "tags" in changes:
        tag_rows = _tags_for(changes.pop("tags"))
    for field, value in changes.items():
        setattr(flag, field, value)
    evaluation_changed = any(
        before[f] != getattr(flag, f) for f in ("variants", "off_variant", "client_visible")
    )
    if "variants" in changes or "off_variant" in changes:
        core.raise_definition(validation.check_variants(flag.type, flag.variants, flag.off_variant))
        _check_variants_still_used(flag, environments)
    after = _flag_record(flag, [t.name for t in tag_rows] if tag_rows is not None else None)
    if after == before:
        return flag
    flag.save()
    if tag_rows is not None:
        flag.tags.set(tag_rows)
    if evaluation_changed:
        core.bump_versions(environments, flags=[flag.key])
    _flag_audit(actor, "flag.update", flag, before, after, reason)
    return flag


def _check_variants_still_used(flag: Flag, environments: Sequence[Environment]) -> None:
    by_id = {e.id: e for e in environments}
    for state in FlagState.objects.filter(flag=flag):
        environment = by_id[state.environment_id]
        graph = selectors.flag_graph(environment, exclude_flag_id=flag.id)
        errors = validation.check_state(
            flag_key=flag.key,
            variants=flag.variants,
            state=state.definition(),
            flags=graph,
            segment_keys=selectors.segment_keys(environment),
        )
        core.raise_definition(errors, prefix=f"environments.{environment.key}.")
    dependents = FlagState.objects.filter(
        flag__archived_at__isnull=True, prerequisites__isnull=False
    ).select_related("flag", "environment")
    for state in dependents:
        for prerequisite in state.prerequisites or ():
            if (
                prerequisite.get("flag") == flag.key
                and prerequisite.get("variant") not in flag.variants
            ):
                raise ValidationFailed(
                    f"Flag {state.flag.key!r} in {state.environment.key} requires variant "
                    f"{prerequisite.get('variant')!r} of this flag; change that prerequisite first.",
                    {"variants": f"variant {prerequisite.get('variant')!r} is still required"},
                )


@transaction.atomic
def flag_archive(*, actor: Actor, flag: Flag, reason: str = "") -> Flag:
    """Retire a flag: it leaves every snapshot (SDKs then serve their defaults)."""
    reason = core.check_reason(reason)
    environments = core.lock_all_environments()
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if flag.archived:
        return flag
    dependents = sorted(
        f"{s.flag.key} ({s.environment.key})"
        for s in FlagState.objects.filter(flag__archived_at__isnull=True)
        .exclude(flag=flag)
        .select_related("flag", "environment")
        if any(p.get("flag") == flag.key for p in s.prerequisites or ())
    )
    if dependents:
        raise ValidationFailed(
            f"Flag {flag.key!r} is a prerequisite of {', '.join(dependents)}; "
            "remove those prerequisites before archiving it.",
            {"key": "still a prerequisite of other flags"},
        )
    before = _flag_record(flag)
    flag.archived_at = timezone.now()
    flag.save(update_fields=["archived_at", "updated_at"])
    core.bump_versions(environments, flags=[flag.key])
    _flag_audit(actor, "flag.archive", flag, before, _flag_record(flag), reason)
    core.flag_archived.send(sender=Flag, actor=actor, flag=flag)
    return flag


@transaction.atomic
def flag_unarchive(*, actor: Actor, flag: Flag, reason: str = "") -> Flag:
    """Bring an archived flag back with the states it had."""
    reason = core.check_reason(reason)
    environments = core.lock_all_environments()
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if not flag.archived:
        return flag
    before = _flag_record(flag)
    flag.archived_at = None
    flag.save(update_fields=["archived_at", "updated_at"])
    core.bump_versions(environments, flags=[flag.key])
    _flag_audit(actor, "flag.unarchive", flag, before, _flag_record(flag), reason)
    return flag

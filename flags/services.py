"""Every write to the flag domain.

Each service takes an explicit ``actor``, validates before it touches a row,
runs in one transaction that locks the environments it changes (always in id
order, then the rows inside them, then the audit chain), bumps those
environments' versions, writes exactly one audit event per changed thing, and
publishes the new versions only after commit. Views, admin, commands and tasks
call these; nothing else writes flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor, audit_record
from flags import publish, validation
from flags.errors import AlreadyExists, FlagArchived, NotFound, ValidationFailed, VersionConflict
from flags.models import (
    ApiToken,
    Environment,
    Flag,
    FlagState,
    KillTrigger,
    Segment,
    Tag,
    new_revision,
)
from flags.selectors import flag_document, segment_document
from flagsvc_sdk.engine import FLAG_KEY_PATTERN

STATE_FIELDS = ("enabled", "targets", "rules", "default_serve", "prerequisites")
FLAG_EDITABLE_FIELDS = (
    "name",
    "description",
    "owner",
    "tags",
    "client_visible",
    "variants",
    "off_variant",
)
MAX_REASON = 2000
MAX_KILL_REASON = 500
# What a kill or restore changes on a state: its overlay, never the definition under it.
KILL_FIELDS = ("killed_at", "killed_by", "kill_reason", "kill_incident", "version", "updated_at")


@dataclass(frozen=True)
class KillOutcome:
    """What a kill or restore did: ``changed`` is False when it was already so."""

    state: FlagState
    changed: bool
    environment_version: int


# --- shared steps ------------------------------------------------------------------


def _lock_environments(ids: Iterable[int]) -> list[Environment]:
    return list(Environment.objects.select_for_update().filter(id__in=set(ids)).order_by("id"))


def _bump_versions(
    environments: Sequence[Environment],
    *,
    flags: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    states: Sequence[FlagState] | None = None,
) -> None:
    """Advance each environment's version and publish it once the transaction commits.

    ``flags``/``segments`` name what changed, so publication re-reads only those
    (None: unknown, the whole snapshot is rebuilt). ``states``: the changed flag states
    as saved, read from the database in this transaction with only the kill overlay
    changed since, so their snapshot documents are built here and publication reads
    nothing back (a kill's fast path).
    """
    documents = (
        {state.flag.key: flag_document(state.flag, state) for state in states}
        if states is not None
        else None
    )
    for environment in environments:
        base_revision = environment.revision
        environment.version += 1
        environment.revision = new_revision()
        environment.save(update_fields=["version", "revision"])
        transaction.on_commit(
            partial(
                publish.environment_version_published,
                environment.id,
                environment.key,
                environment.version,
                list(flags) if flags is not None else None,
                list(segments) if segments is not None else None,
                lineage=environment.lineage,
                revision=environment.revision,
                base_revision=base_revision,
                documents=documents,
            )
        )


def _check_reason(reason: str, *, required: bool = False, limit: int = MAX_REASON) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationFailed("Give a reason: it goes on the audit trail.", {"reason": "required"})
    if len(reason) > limit:
        raise ValidationFailed(
            f"The reason is {len(reason)} characters long; keep it to {limit}.",
            {"reason": f"at most {limit} characters"},
        )
    return reason


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not FLAG_KEY_PATTERN.match(key):
        raise ValidationFailed(
            f"{what} key {key!r} is not valid: use 1-100 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit.",
            {"key": "must match ^[a-z0-9][a-z0-9._-]{0,99}$"},
        )
    return key


def _raise_definition(errors: dict[str, str], prefix: str = "") -> None:
    if errors:
        fields = {f"{prefix}{field}": message for field, message in errors.items()}
        first_field, first_message = next(iter(fields.items()))
        more = f" (and {len(fields) - 1} more problem(s))" if len(fields) > 1 else ""
        raise ValidationFailed(f"{first_field}: {first_message}{more}", fields)


def _state_record(state: FlagState) -> dict[str, Any]:
    return {**state.definition(), "kill": state.kill_overlay(), "version": state.version}


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


def _graph_for(environment: Environment, *, exclude_flag_id: int | None = None) -> dict[str, Any]:
    """Every other live flag's variants and prerequisites in the environment (one query)."""
    states = FlagState.objects.filter(
        environment=environment, flag__archived_at__isnull=True
    ).select_related("flag")
    return {
        s.flag.key: {"variants": s.flag.variants, "prerequisites": s.prerequisites}
        for s in states
        if s.flag_id != exclude_flag_id
    }


def _segment_keys(environment: Environment) -> set[str]:
    return set(Segment.objects.filter(environment=environment).values_list("key", flat=True))


# --- environments ---------------------------------------------------------------------


@transaction.atomic
def environment_create(
    *,
    actor: Actor,
    key: str,
    name: str = "",
    description: str = "",
    copy_from: Environment | None = None,
    reason: str = "",
) -> Environment:
    """Create an environment with a state for every flag (off, or copied from ``copy_from``)."""
    reason = _check_reason(reason)
    _check_key(key, "Environment")
    if Environment.objects.filter(key=key).exists():
        raise AlreadyExists(f"Environment {key!r} already exists.", {"key": "already exists"})
    last = Environment.objects.order_by("-sort_order").values_list("sort_order", flat=True).first()
    environment = Environment.objects.create(
        key=key, name=name or key.title(), description=description, sort_order=(last or 0) + 1
    )
    sources: dict[int, FlagState] = {}
    if copy_from is not None:
        sources = {s.flag_id: s for s in FlagState.objects.filter(environment=copy_from)}
        Segment.objects.bulk_create(
            Segment(
                environment=environment,
                key=s.key,
                name=s.name,
                description=s.description,
                included=s.included,
                excluded=s.excluded,
                rules=s.rules,
            )
            for s in Segment.objects.filter(environment=copy_from)
        )
    states = []
    for flag in Flag.objects.all():
        source = sources.get(flag.id)
        if source is not None:
            states.append(
                FlagState(
                    flag=flag,
                    environment=environment,
                    **{f: getattr(source, f) for f in STATE_FIELDS},
                )
            )
        else:
            states.append(_initial_state(flag, environment))
    FlagState.objects.bulk_create(states)
    audit_record(
        actor=actor,
        action="environment.create",
        target_type="environment",
        target_key=key,
        environment_key=key,
        after={
            "key": key,
            "name": environment.name,
            "description": description,
            "copied_from": copy_from.key if copy_from else None,
        },
        reason=reason,
    )
    transaction.on_commit(
        partial(publish.environment_version_published, environment.id, key, environment.version)
    )
    return environment


@transaction.atomic
def environment_update(
    *,
    actor: Actor,
    environment: Environment,
    name: str | None = None,
    description: str | None = None,
    reason: str = "",
) -> Environment:
    """Rename or describe an environment (its key is fixed: SDK keys and URLs use it)."""
    reason = _check_reason(reason)
    (environment,) = _lock_environments([environment.id])
    before = {"name": environment.name, "description": environment.description}
    if name is not None:
        environment.name = name
    if description is not None:
        environment.description = description
    after = {"name": environment.name, "description": environment.description}
    if after == before:
        return environment
    environment.save(update_fields=["name", "description"])
    audit_record(
        actor=actor,
        action="environment.update",
        target_type="environment",
        target_key=environment.key,
        environment_key=environment.key,
        before=before,
        after=after,
        reason=reason,
    )
    return environment


def _initial_state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState(
        flag=flag,
        environment=environment,
        enabled=False,
        default_serve={"variant": _default_variant(flag.variants, flag.off_variant)},
    )


# --- flags ------------------------------------------------------------------------------


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
    reason = _check_reason(reason)
    _check_key(key, "Flag")
    if variants is None:
        if type != Flag.Type.BOOLEAN:
            raise ValidationFailed(
                f'A {type} flag needs its variants, e.g. {{"control": ..., "treatment": ...}}.',
                {"variants": "required for non-boolean flags"},
            )
        variants = {"on": True, "off": False}
    if off_variant is None:
        off_variant = "off" if "off" in variants else next(iter(variants), "")
    _raise_definition(validation.check_variants(type, variants, off_variant))
    tag_rows = _tags_for(tags)
    environments = _lock_environments(Environment.objects.values_list("id", flat=True))
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
    FlagState.objects.bulk_create(_initial_state(flag, e) for e in environments)
    _bump_versions(environments, flags=[key])
    audit_record(
        actor=actor,
        action="flag.create",
        target_type="flag",
        target_key=key,
        flag_key=key,
        after=_flag_record(flag, (t.name for t in tag_rows)),
        reason=reason,
    )
    return flag


@transaction.atomic
def flag_update(*, actor: Actor, flag: Flag, reason: str = "", **changes: Any) -> Flag:
    """Change a flag's description, ownership, tags, visibility or variants.

    Variant changes are checked against the flag's state in every environment and
    against other flags' prerequisites on it; the type never changes.
    """
    reason = _check_reason(reason)
    unknown = set(changes) - set(FLAG_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
            dict.fromkeys(sorted(unknown), "not editable (a flag's key and type are fixed)"),
        )
    environments = _lock_environments(Environment.objects.values_list("id", flat=True))
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
        _raise_definition(validation.check_variants(flag.type, flag.variants, flag.off_variant))
        _check_variants_still_used(flag, environments)
    after = _flag_record(flag, [t.name for t in tag_rows] if tag_rows is not None else None)
    if after == before:
        return flag
    flag.save()
    if tag_rows is not None:
        flag.tags.set(tag_rows)
    if evaluation_changed:
        _bump_versions(environments, flags=[flag.key])
    audit_record(
        actor=actor,
        action="flag.update",
        target_type="flag",
        target_key=flag.key,
        flag_key=flag.key,
        before=before,
        after=after,
        reason=reason,
    )
    return flag


def _check_variants_still_used(flag: Flag, environments: Sequence[Environment]) -> None:
    by_id = {e.id: e for e in environments}
    for state in FlagState.objects.filter(flag=flag):
        environment = by_id[state.environment_id]
        graph = _graph_for(environment, exclude_flag_id=flag.id)
        errors = validation.check_state(
            flag_key=flag.key,
            variants=flag.variants,
            state=state.definition(),
            flags=graph,
            segment_keys=_segment_keys(environment),
        )
        _raise_definition(errors, prefix=f"environments.{environment.key}.")
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
    reason = _check_reason(reason)
    environments = _lock_environments(Environment.objects.values_list("id", flat=True))
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
    _bump_versions(environments, flags=[flag.key])
    audit_record(
        actor=actor,
        action="flag.archive",
        target_type="flag",
        target_key=flag.key,
        flag_key=flag.key,
        before=before,
        after=_flag_record(flag),
        reason=reason,
    )
    from flags.rollouts import rollout_plans_abort_for_archive

    rollout_plans_abort_for_archive(actor=actor, flag=flag)
    return flag


@transaction.atomic
def flag_unarchive(*, actor: Actor, flag: Flag, reason: str = "") -> Flag:
    """Bring an archived flag back with the states it had."""
    reason = _check_reason(reason)
    environments = _lock_environments(Environment.objects.values_list("id", flat=True))
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if not flag.archived:
        return flag
    before = _flag_record(flag)
    flag.archived_at = None
    flag.save(update_fields=["archived_at", "updated_at"])
    _bump_versions(environments, flags=[flag.key])
    audit_record(
        actor=actor,
        action="flag.unarchive",
        target_type="flag",
        target_key=flag.key,
        flag_key=flag.key,
        before=before,
        after=_flag_record(flag),
        reason=reason,
    )
    return flag


# --- flag states ------------------------------------------------------------------------


def _locked_state(flag: Flag, environment: Environment) -> tuple[Environment, FlagState]:
    (locked_environment,) = _lock_environments([environment.id])
    state = (
        FlagState.objects.select_for_update()
        .select_related("flag")
        .get(flag_id=flag.pk, environment=locked_environment)
    )
    state.environment = locked_environment
    return locked_environment, state


@transaction.atomic
def flag_state_update(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    reason: str = "",
    expected_version: int | None = None,
    **changes: Any,
) -> FlagState:
    """Change how a flag behaves in one environment (enabled, targets, rules, serves).

    ``expected_version`` makes the write conditional (If-Match): a stale one raises
    VersionConflict and changes nothing. The kill overlay is untouched: a killed
    flag stays killed, and its edited definition is what restore brings back.
    """
    reason = _check_reason(reason)
    unknown = set(changes) - set(STATE_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Unknown state fields: {', '.join(sorted(unknown))}; use {', '.join(STATE_FIELDS)}.",
            dict.fromkeys(sorted(unknown), "unknown field"),
        )
    environment, state = _locked_state(flag, environment)
    if state.flag.archived:
        raise FlagArchived(f"Flag {state.flag.key!r} is archived; unarchive it before changing it.")
    if expected_version is not None and state.version != expected_version:
        raise VersionConflict(
            f"The state of {state.flag.key!r} in {environment.key} is at version {state.version}, "
            f"not {expected_version}: someone changed it since you read it. Re-read and retry.",
            {"version": f"current version is {state.version}"},
        )
    proposed = {**state.definition(), **changes}
    _raise_definition(_state_problems(state, environment, proposed))
    if proposed == state.definition():
        return state
    previous = state.definition()
    _state_write(
        actor=actor, state=state, environment=environment, proposed=proposed, reason=reason
    )
    # A person changing the split a rollout plan drives takes over from the scheduler.
    from flags.rollouts import rollout_plans_pause_for_edit

    rollout_plans_pause_for_edit(
        actor=actor, state=state, environment=environment, previous=previous, reason=reason
    )
    return state


def _state_problems(
    state: FlagState, environment: Environment, proposed: Mapping[str, Any]
) -> dict[str, str]:
    """What is wrong with ``proposed`` as the definition of ``state`` (empty if nothing)."""
    return validation.check_state(
        flag_key=state.flag.key,
        variants=state.flag.variants,
        state=proposed,
        flags=_graph_for(environment, exclude_flag_id=state.flag_id),
        segment_keys=_segment_keys(environment),
    )


def _state_write(
    *,
    actor: Actor,
    state: FlagState,
    environment: Environment,
    proposed: Mapping[str, Any],
    reason: str,
    action: str = "flag_state.update",
    annotation: Mapping[str, Any] | None = None,
) -> None:
    """Save a validated definition of a locked state: version, environment version, one audit event.

    Shared by people's edits (flag_state_update) and the scheduler's rollout steps,
    which record themselves as ``rollout_plan.step`` with the plan in ``annotation``.
    """
    before = _state_record(state)
    for field in STATE_FIELDS:
        setattr(state, field, proposed[field])
    state.version += 1
    state.save()
    _bump_versions([environment], flags=[state.flag.key])
    audit_record(
        actor=actor,
        action=action,
        target_type="flag_state",
        target_key=f"{state.flag.key}@{environment.key}",
        flag_key=state.flag.key,
        environment_key=environment.key,
        before=before,
        after={**_state_record(state), **(annotation or {})},
        reason=reason,
    )


@transaction.atomic
def flag_kill(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    reason: str,
    incident_id: uuid.UUID | None = None,
    killed_at: datetime | None = None,
) -> KillOutcome:
    """Serve the off variant everywhere in ``environment`` now, keeping the definition.

    Killing a killed flag writes nothing and returns the existing kill. ``killed_at``
    is for kills recorded after the fact (an emergency kill made while the
    database was unreachable keeps the time the commander acted).
    """
    reason = _check_reason(reason, required=True, limit=MAX_KILL_REASON)
    environment, state = _locked_state(flag, environment)
    if state.killed:
        return KillOutcome(state, False, environment.version)
    if state.flag.archived:
        raise FlagArchived(f"Flag {state.flag.key!r} is archived: SDKs no longer see it.")
    before = _state_record(state)
    state.killed_at = killed_at or timezone.now()
    state.killed_by = actor.name
    state.kill_reason = reason
    state.kill_incident = incident_id or uuid.uuid4()
    state.version += 1
    state.save(update_fields=KILL_FIELDS)
    _bump_versions([environment], flags=[state.flag.key], states=[state])
    audit_record(
        actor=actor,
        action="flag.kill",
        target_type="flag_state",
        target_key=f"{state.flag.key}@{environment.key}",
        flag_key=state.flag.key,
        environment_key=environment.key,
        before=before,
        after=_state_record(state),
        reason=reason,
        incident_id=state.kill_incident,
    )
    from flags.rollouts import rollout_plans_pause_for_kill

    rollout_plans_pause_for_kill(actor=actor, states=[state], environment=environment)
    return KillOutcome(state, True, environment.version)


@transaction.atomic
def flag_restore(*, actor: Actor, flag: Flag, environment: Environment, reason: str) -> KillOutcome:
    """Lift the kill: the flag serves exactly what its definition served before."""
    reason = _check_reason(reason, required=True, limit=MAX_KILL_REASON)
    environment, state = _locked_state(flag, environment)
    if not state.killed:
        return KillOutcome(state, False, environment.version)
    before = _state_record(state)
    incident = state.kill_incident
    state.killed_at = None
    state.killed_by = ""
    state.kill_reason = ""
    state.kill_incident = None
    state.version += 1
    state.save(update_fields=KILL_FIELDS)
    _bump_versions([environment], flags=[state.flag.key], states=[state])
    audit_record(
        actor=actor,
        action="flag.restore",
        target_type="flag_state",
        target_key=f"{state.flag.key}@{environment.key}",
        flag_key=state.flag.key,
        environment_key=environment.key,
        before=before,
        after=_state_record(state),
        reason=reason,
        incident_id=incident,
    )
    return KillOutcome(state, True, environment.version)


@dataclass(frozen=True)
class TagKillOutcome:
    """What a tag kill or restore did, flag by flag, under one incident id."""

    incident_id: uuid.UUID | None
    changed: list[FlagState]
    unchanged: list[FlagState]
    environment_version: int


def _tagged_states(environment: Environment, tag: str) -> list[FlagState]:
    states = list(
        FlagState.objects.select_for_update(of=("self",))
        .select_related("flag")
        .filter(environment=environment, flag__archived_at__isnull=True, flag__tags__name=tag)
        .order_by("flag__key")
    )
    if not states:
        raise NotFound(
            f"No live flag carries the tag {tag!r}; check the tag (flags list: ?tag={tag}).",
            {"tag": "no live flag has it"},
        )
    return states


@transaction.atomic
def flag_kill_by_tag(
    *, actor: Actor, tag: str, environment: Environment, reason: str
) -> TagKillOutcome:
    """Kill every live flag carrying ``tag`` in ``environment``, all or none, under one incident id.

    One audit event per killed flag, each carrying the shared incident id; flags
    already killed are left as they are (nothing written for them).
    """
    reason = _check_reason(reason, required=True, limit=MAX_KILL_REASON)
    (environment,) = _lock_environments([environment.id])
    states = _tagged_states(environment, tag)
    incident = uuid.uuid4()
    changed = [s for s in states if not s.killed]
    if not changed:
        return TagKillOutcome(None, [], states, environment.version)
    now = timezone.now()
    before = {s.pk: _state_record(s) for s in changed}
    for state in changed:
        state.killed_at, state.killed_by, state.kill_reason, state.kill_incident = (
            now,
            actor.name,
            reason,
            incident,
        )
        state.version += 1
        state.save(update_fields=KILL_FIELDS)
    _bump_versions([environment], flags=[s.flag.key for s in changed], states=changed)
    for state in changed:
        audit_record(
            actor=actor,
            action="flag.kill",
            target_type="flag_state",
            target_key=f"{state.flag.key}@{environment.key}",
            flag_key=state.flag.key,
            environment_key=environment.key,
            before=before[state.pk],
            after={**_state_record(state), "tag": tag},
            reason=reason,
            incident_id=incident,
        )
    from flags.rollouts import rollout_plans_pause_for_kill

    rollout_plans_pause_for_kill(actor=actor, states=changed, environment=environment)
    return TagKillOutcome(
        incident, changed, [s for s in states if s.killed and s not in changed], environment.version
    )


@transaction.atomic
def flag_restore_by_tag(
    *, actor: Actor, tag: str, environment: Environment, reason: str
) -> TagKillOutcome:
    """Lift the kill of every killed live flag carrying ``tag`` in ``environment``, all or none."""
    reason = _check_reason(reason, required=True, limit=MAX_KILL_REASON)
    (environment,) = _lock_environments([environment.id])
    states = _tagged_states(environment, tag)
    changed = [s for s in states if s.killed]
    if not changed:
        return TagKillOutcome(None, [], states, environment.version)
    before = {s.pk: (_state_record(s), s.kill_incident) for s in changed}
    for state in changed:
        state.killed_at, state.killed_by, state.kill_reason, state.kill_incident = (
            None,
            "",
            "",
            None,
        )
        state.version += 1
        state.save(update_fields=KILL_FIELDS)
    _bump_versions([environment], flags=[s.flag.key for s in changed], states=changed)
    for state in changed:
        record, incident = before[state.pk]
        audit_record(
            actor=actor,
            action="flag.restore",
            target_type="flag_state",
            target_key=f"{state.flag.key}@{environment.key}",
            flag_key=state.flag.key,
            environment_key=environment.key,
            before=record,
            after={**_state_record(state), "tag": tag},
            reason=reason,
            incident_id=incident,
        )
    incidents = {incident for _, incident in before.values()}
    return TagKillOutcome(
        incidents.pop() if len(incidents) == 1 else None,
        changed,
        [s for s in states if s not in changed],
        environment.version,
    )


# --- segments ---------------------------------------------------------------------------

SEGMENT_FIELDS = ("name", "description", "included", "excluded", "rules")


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
    reason = _check_reason(reason)
    _check_key(key, "Segment")
    for name, value in (("included", included), ("excluded", excluded), ("rules", rules)):
        if isinstance(value, str | bytes | Mapping):
            raise ValidationFailed(f"{name} must be a list.", {name: "must be a list"})
    definition = {"included": list(included), "excluded": list(excluded), "rules": list(rules)}
    _raise_definition(validation.check_segment(definition))
    (environment,) = _lock_environments([environment.id])
    if Segment.objects.filter(environment=environment, key=key).exists():
        raise AlreadyExists(
            f"Segment {key!r} already exists in {environment.key}.", {"key": "already exists"}
        )
    segment = Segment.objects.create(
        environment=environment, key=key, name=name, description=description, **definition
    )
    _bump_versions([environment], segments=[key])
    audit_record(
        actor=actor,
        action="segment.create",
        target_type="segment",
        target_key=f"{key}@{environment.key}",
        environment_key=environment.key,
        after={**segment_document(segment), "name": name, "description": description},
        reason=reason,
    )
    return segment


@transaction.atomic
def segment_update(*, actor: Actor, segment: Segment, reason: str = "", **changes: Any) -> Segment:
    """Change a segment; every flag using it in that environment follows."""
    reason = _check_reason(reason)
    unknown = set(changes) - set(SEGMENT_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Unknown segment fields: {', '.join(sorted(unknown))}.",
            dict.fromkeys(sorted(unknown), "unknown field"),
        )
    (environment,) = _lock_environments([segment.environment_id])
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    before = {**segment_document(segment), "name": segment.name, "description": segment.description}
    for field, value in changes.items():
        setattr(segment, field, value)
    _raise_definition(validation.check_segment(segment.definition()))
    after = {**segment_document(segment), "name": segment.name, "description": segment.description}
    if after == before:
        return segment
    segment.save()
    _bump_versions([environment], segments=[segment.key])
    audit_record(
        actor=actor,
        action="segment.update",
        target_type="segment",
        target_key=f"{segment.key}@{environment.key}",
        environment_key=environment.key,
        before=before,
        after=after,
        reason=reason,
    )
    return segment


@transaction.atomic
def segment_delete(*, actor: Actor, segment: Segment, reason: str = "") -> None:
    """Delete a segment that no flag's rules use any more."""
    reason = _check_reason(reason)
    (environment,) = _lock_environments([segment.environment_id])
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
    _bump_versions([environment], segments=[segment.key])
    audit_record(
        actor=actor,
        action="segment.delete",
        target_type="segment",
        target_key=f"{before['key']}@{environment.key}",
        environment_key=environment.key,
        before=before,
        reason=reason,
    )


# --- API tokens -------------------------------------------------------------------------


def _token_record(token: ApiToken) -> dict[str, Any]:
    # Never the raw token or its digest: the audit trail must not help anyone use it.
    return {
        "name": token.name,
        "kind": token.kind,
        "environment": token.environment.key if token.environment else None,
        "hint": token.hint,
        "revoked": token.revoked,
    }


@transaction.atomic
def token_issue(
    *,
    actor: Actor,
    kind: str,
    name: str,
    environment: Environment | None = None,
    reason: str = "",
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never shown again.

    Server and client SDK keys belong to one environment; a kill key may; an admin
    token may not.
    """
    from flags.tokens import token_digest, token_generate

    reason = _check_reason(reason)
    if kind not in ApiToken.Kind.values:
        raise ValidationFailed(
            f"Unknown token kind {kind!r}; use one of {', '.join(ApiToken.Kind.values)}.",
            {"kind": f"one of {', '.join(ApiToken.Kind.values)}"},
        )
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "Name the token (1-100 characters), e.g. checkout-service.",
            {"name": "required, at most 100 characters"},
        )
    if kind in (ApiToken.Kind.SERVER, ApiToken.Kind.CLIENT) and environment is None:
        raise ValidationFailed(
            f"A {kind} SDK key belongs to one environment; say which.",
            {"environment": "required for this kind"},
        )
    if kind == ApiToken.Kind.ADMIN and environment is not None:
        raise ValidationFailed(
            "Admin tokens act on every environment; do not give one.",
            {"environment": "not allowed for admin tokens"},
        )
    raw = token_generate(kind)
    token = ApiToken.objects.create(
        name=name,
        kind=kind,
        environment=environment,
        digest=token_digest(raw),
        hint=raw[-4:],
        created_by=actor.name,
    )
    audit_record(
        actor=actor,
        action="token.create",
        target_type="token",
        target_key=f"{name} (…{token.hint})",
        environment_key=environment.key if environment else "",
        after=_token_record(token),
        reason=reason,
    )
    transaction.on_commit(publish.tokens_changed)
    return token, raw


@transaction.atomic
def token_revoke(*, actor: Actor, token: ApiToken, reason: str = "") -> ApiToken:
    """Revoke a token: every process refuses it as fast as a kill propagates."""
    reason = _check_reason(reason)
    token = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("environment")
        .get(pk=token.pk)
    )
    if token.revoked:
        return token
    before = _token_record(token)
    token.revoked_at = timezone.now()
    token.revoked_by = actor.name
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action="token.revoke",
        target_type="token",
        target_key=f"{token.name} (…{token.hint})",
        environment_key=token.environment.key if token.environment else "",
        before=before,
        after=_token_record(token),
        reason=reason,
    )
    transaction.on_commit(publish.tokens_changed)
    return token


def token_last_used_update(*, seen: Mapping[str, float]) -> int:
    """Record when tokens were last used (batched by flags.tokens.usage).

    Usage bookkeeping, not a change anyone makes: no audit event, no version bump,
    and a time never moves backwards.
    """
    from django.db.models import Q

    updated = 0
    for digest, moment in seen.items():
        at = datetime.fromtimestamp(moment, tz=UTC)
        updated += ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=at), digest=digest
        ).update(last_used_at=at)
    return updated


# --- kill triggers -----------------------------------------------------------------------

TRIGGER_PREFIX = "fsv_trigger_"


def _trigger_record(trigger: KillTrigger) -> dict[str, Any]:
    # Never the secret or its digest.
    return {
        "name": trigger.name,
        "flag": trigger.flag.key,
        "environment": trigger.environment.key,
        "action": trigger.action,
        "hint": trigger.hint,
        "revoked": trigger.revoked,
    }


@transaction.atomic
def trigger_create(
    *,
    actor: Actor,
    name: str,
    flag: Flag,
    environment: Environment,
    action: str = "kill",
    reason: str = "",
) -> tuple[KillTrigger, str]:
    """Create a trigger URL for an APM alert; returns it with its secret, which is never shown again."""
    import secrets as _secrets

    from flags.tokens import token_digest

    reason = _check_reason(reason)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "Name the trigger (1-100 characters), e.g. datadog-checkout-5xx.", {"name": "required"}
        )
    if action not in KillTrigger.Action.values:
        raise ValidationFailed(
            f"A trigger either kills or restores; got {action!r}.", {"action": "kill or restore"}
        )
    if flag.archived:
        raise FlagArchived(f"Flag {flag.key!r} is archived; triggers for it would do nothing.")
    secret = TRIGGER_PREFIX + _secrets.token_urlsafe(32)  # 256 bits
    trigger = KillTrigger.objects.create(
        name=name,
        flag=flag,
        environment=environment,
        action=action,
        digest=token_digest(secret),
        hint=secret[-4:],
        created_by=actor.name,
    )
    audit_record(
        actor=actor,
        action="trigger.create",
        target_type="trigger",
        target_key=f"{name} (…{trigger.hint})",
        flag_key=flag.key,
        environment_key=environment.key,
        after=_trigger_record(trigger),
        reason=reason,
    )
    return trigger, secret


@transaction.atomic
def trigger_revoke(*, actor: Actor, trigger: KillTrigger, reason: str = "") -> KillTrigger:
    """Revoke a trigger: its URL answers 404 from now on."""
    reason = _check_reason(reason)
    trigger = (
        KillTrigger.objects.select_for_update(of=("self",))
        .select_related("flag", "environment")
        .get(pk=trigger.pk)
    )
    if trigger.revoked:
        return trigger
    before = _trigger_record(trigger)
    trigger.revoked_at = timezone.now()
    trigger.revoked_by = actor.name
    trigger.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action="trigger.revoke",
        target_type="trigger",
        target_key=f"{trigger.name} (…{trigger.hint})",
        flag_key=trigger.flag.key,
        environment_key=trigger.environment.key,
        before=before,
        after=_trigger_record(trigger),
        reason=reason,
    )
    return trigger


@transaction.atomic
def trigger_fire(
    *, trigger: KillTrigger, source_ip: str = "", request_id: str = "", note: str = ""
) -> KillOutcome:
    """Carry out a trigger's action. Every firing is on the audit trail.

    A firing that changes the flag is recorded by its kill or restore event (actor
    ``trigger:<name>``, with the caller's address); one that finds the flag
    already so is recorded as ``trigger.fire`` with nothing else written.
    """
    actor = Actor(
        AuditEvent.ActorKind.TRIGGER,
        f"trigger:{trigger.name}",
        request_id=request_id,
        source_ip=source_ip,
    )
    reason = f"trigger {trigger.name!r} fired" + (f": {note.strip()[:300]}" if note.strip() else "")
    if trigger.action == KillTrigger.Action.KILL:
        outcome = flag_kill(
            actor=actor, flag=trigger.flag, environment=trigger.environment, reason=reason
        )
    else:
        outcome = flag_restore(
            actor=actor, flag=trigger.flag, environment=trigger.environment, reason=reason
        )
    if not outcome.changed:
        audit_record(
            actor=actor,
            action="trigger.fire",
            target_type="trigger",
            target_key=f"{trigger.name} (…{trigger.hint})",
            flag_key=trigger.flag.key,
            environment_key=trigger.environment.key,
            after={
                "action": trigger.action,
                "changed": False,
                "kill": outcome.state.kill_overlay(),
            },
            reason=f"{reason}; the flag was already {'killed' if trigger.action == 'kill' else 'live'}, nothing changed",
            incident_id=outcome.state.kill_incident,
        )
    return outcome

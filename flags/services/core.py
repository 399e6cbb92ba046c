"""The step every write shares: lock, check, write, bump the version, audit, publish after commit.

Each service takes an explicit ``actor``, validates before it touches a row,
runs in one transaction that locks the environments it changes (always in id
order, then the rows inside them, then the audit chain), bumps those
environments' versions, writes exactly one audit event per changed thing, and
publishes the new versions only after commit. The hooks at the end let other
parts of the domain (rollout plans) follow a kill, an edit or an archive in the
same transaction without the services importing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from audit import recorder
from audit.recorder import Actor
from flags import publish, selectors, validation
from flags.errors import ValidationFailed
from flags.models import Environment, Flag, FlagState, new_revision
from flagsvc_sdk.engine import FLAG_KEY_PATTERN

STATE_FIELDS = ("enabled", "targets", "rules", "default_serve", "prerequisites")
MAX_REASON = 2000
MAX_KILL_REASON = 500
# What a kill or restore changes on a state: its overlay, never the definition under it.
KILL_FIELDS = ("killed_at", "killed_by", "kill_reason", "kill_incident", "version", "updated_at")

# --- hooks: sent inside the writing transaction, after its audit event ----------------------
# Receivers take keyword arguments only and may write (their writes commit or roll back with
# the change). flags.apps connects the rollout plans' receivers (flags.rollouts.hooks).

states_killed = Signal()
"""Sent with ``actor``, ``states`` (just killed) and ``environment``."""
state_edited = Signal()
"""Sent with ``actor``, ``state`` (as saved), ``environment``, ``previous`` (the definition
before) and ``reason`` after a person changed a state's definition."""
flag_archived = Signal()
"""Sent with ``actor`` and ``flag`` after a flag was archived."""


# --- locks ------------------------------------------------------------------------------------


def lock_environments(ids: Iterable[int]) -> list[Environment]:
    """The environments with these ids, locked in id order (the order every writer takes)."""
    return list(Environment.objects.select_for_update().filter(id__in=set(ids)).order_by("id"))


def lock_all_environments() -> list[Environment]:
    """Every environment, locked in id order (for changes to a flag's shared definition)."""
    return lock_environments(Environment.objects.values_list("id", flat=True))


def locked_state(flag: Flag, environment: Environment) -> tuple[Environment, FlagState]:
    """The environment and then the flag's state in it, both locked, the state's flag loaded."""
    (locked_environment,) = lock_environments([environment.id])
    state = (
        FlagState.objects.select_for_update()
        .select_related("flag")
        .get(flag_id=flag.pk, environment=locked_environment)
    )
    state.environment = locked_environment
    return locked_environment, state


# --- checks -----------------------------------------------------------------------------------


def check_reason(reason: str, *, required: bool = False, limit: int = MAX_REASON) -> str:
    """The reason, stripped; raises ValidationFailed if it is missing (when required) or too long."""
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationFailed("Give a reason: it goes on the audit trail.", {"reason": "required"})
    if len(reason) > limit:
        raise ValidationFailed(
            f"The reason is {len(reason)} characters long; keep it to {limit}.",
            {"reason": f"at most {limit} characters"},
        )
    return reason


def check_key(key: Any, what: str) -> str:
    """``key`` if it is a valid flag, environment or segment key; raises ValidationFailed if not."""
    if not isinstance(key, str) or not FLAG_KEY_PATTERN.match(key):
        raise ValidationFailed(
            f"{what} key {key!r} is not valid: use 1-100 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit.",
            {"key": "must match ^[a-z0-9][a-z0-9._-]{0,99}$"},
        )
    return key


def raise_definition(errors: dict[str, str], prefix: str = "") -> None:
    """Raise ValidationFailed naming every problem of a validator's answer (nothing if empty)."""
    if errors:
        fields = {f"{prefix}{field}": message for field, message in errors.items()}
        first_field, first_message = next(iter(fields.items()))
        more = f" (and {len(fields) - 1} more problem(s))" if len(fields) > 1 else ""
        raise ValidationFailed(f"{first_field}: {first_message}{more}", fields)


def state_problems(
    state: FlagState, environment: Environment, proposed: Mapping[str, Any]
) -> dict[str, str]:
    """What is wrong with ``proposed`` as the definition of ``state`` (empty if nothing)."""
    return validation.check_state(
        flag_key=state.flag.key,
        variants=state.flag.variants,
        state=proposed,
        flags=selectors.flag_graph(environment, exclude_flag_id=state.flag_id),
        segment_keys=selectors.segment_keys(environment),
    )


# --- writes -----------------------------------------------------------------------------------


def bump_versions(
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
        {state.flag.key: selectors.flag_document(state.flag, state) for state in states}
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


def state_record(state: FlagState) -> dict[str, Any]:
    """A flag state as the audit trail records it (before/after)."""
    return {**state.definition(), "kill": state.kill_overlay(), "version": state.version}


def state_audit(
    *,
    actor: Actor,
    action: str,
    state: FlagState,
    environment: Environment,
    before: dict[str, Any],
    reason: str,
    annotation: Mapping[str, Any] | None = None,
    incident_id: Any = None,
) -> None:
    """The one audit event of a change to a flag state (``before`` recorded before the change)."""
    recorder.audit_record(
        actor=actor,
        action=action,
        target_type="flag_state",
        target_key=f"{state.flag.key}@{environment.key}",
        flag_key=state.flag.key,
        environment_key=environment.key,
        before=before,
        after={**state_record(state), **(annotation or {})},
        reason=reason,
        incident_id=incident_id,
    )


def state_write(
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
    before = state_record(state)
    for field in STATE_FIELDS:
        setattr(state, field, proposed[field])
    state.version += 1
    state.save()
    bump_versions([environment], flags=[state.flag.key])
    state_audit(
        actor=actor,
        action=action,
        state=state,
        environment=environment,
        before=before,
        reason=reason,
        annotation=annotation,
    )

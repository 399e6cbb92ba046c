"""Environments: create one (empty or copied from another) and rename or describe it."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from audit import recorder
from audit.recorder import Actor
from flags import publish
from flags.errors import AlreadyExists
from flags.models import Environment, Flag, FlagState, Segment
from flags.services import core
from flags.services.flags import initial_state


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
    reason = core.check_reason(reason)
    core.check_key(key, "Environment")
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
                    **{f: getattr(source, f) for f in core.STATE_FIELDS},
                )
            )
        else:
            states.append(initial_state(flag, environment))
    FlagState.objects.bulk_create(states)
    recorder.audit_record(
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
    reason = core.check_reason(reason)
    (environment,) = core.lock_environments([environment.id])
    before = {"name": environment.name, "description": environment.description}
    if name is not None:
        environment.name = name
    if description is not None:
        environment.description = description
    after = {"name": environment.name, "description": environment.description}
    if after == before:
        return environment
    environment.save(update_fields=["name", "description"])
    recorder.audit_record(
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

"""Flag states: how one flag behaves in one environment (enabled, targets, rules, serves)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.recorder import Actor
from flags.errors import FlagArchived, ValidationFailed, VersionConflict
from flags.models import Environment, Flag, FlagState
from flags.services import core


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
    reason = core.check_reason(reason)
    unknown = set(changes) - set(core.STATE_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Unknown state fields: {', '.join(sorted(unknown))}; use {', '.join(core.STATE_FIELDS)}.",
            dict.fromkeys(sorted(unknown), "unknown field"),
        )
    environment, state = core.locked_state(flag, environment)
    if state.flag.archived:
        raise FlagArchived(f"Flag {state.flag.key!r} is archived; unarchive it before changing it.")
    if expected_version is not None and state.version != expected_version:
        raise VersionConflict(
            f"The state of {state.flag.key!r} in {environment.key} is at version {state.version}, "
            f"not {expected_version}: someone changed it since you read it. Re-read and retry.",
            {"version": f"current version is {state.version}"},
        )
    proposed = {**state.definition(), **changes}
    core.raise_definition(core.state_problems(state, environment, proposed))
    if proposed == state.definition():
        return state
    previous = state.definition()
    core.state_write(
        actor=actor, state=state, environment=environment, proposed=proposed, reason=reason
    )
    # A person changing the split a rollout plan drives takes over from the scheduler.
    core.state_edited.send(
        sender=FlagState,
        actor=actor,
        state=state,
        environment=environment,
        previous=previous,
        reason=reason,
    )
    return state

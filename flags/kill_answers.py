"""What a kill or restore answers, the same whichever front took the request (DRF or the edge)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django.utils import timezone

from flags import propagation
from flags.models import Environment, FlagState


def kill_out(state: FlagState) -> dict[str, Any]:
    overlay = state.kill_overlay()
    killed_for = (timezone.now() - state.killed_at).total_seconds() if state.killed_at else None
    return {
        "flag": state.flag.key,
        "environment": state.environment.key,
        "killed": state.killed,
        "kill": overlay,
        "killed_for_seconds": round(killed_for, 1) if killed_for is not None else None,
        "state_version": state.version,
    }


class KillOutcome(Protocol):
    """What ``services.flag_kill`` / ``flag_restore`` / ``trigger_fire`` return."""

    @property
    def state(self) -> FlagState: ...

    @property
    def changed(self) -> bool: ...

    @property
    def environment_version(self) -> int: ...


def kill_answer(outcome: KillOutcome, environment: Environment) -> dict[str, Any]:
    """The answer to a kill or restore of one flag (before its propagation is added)."""
    state = outcome.state
    state.environment = environment
    return {
        **kill_out(state),
        "changed": outcome.changed,
        "environment_version": outcome.environment_version,
    }


def kills_with_propagation(
    states: Iterable[FlagState],
) -> list[tuple[FlagState, propagation.Confirmation]]:
    """Each killed state with whether every live edge process serves its environment's
    current version (which includes the kill); one status read per environment."""
    statuses: dict[str, propagation.Confirmation] = {}
    rows = []
    for state in states:
        environment = state.environment
        if environment.key not in statuses:
            statuses[environment.key] = propagation.environment_status(
                environment.key, environment.lineage, environment.version
            )
        rows.append((state, statuses[environment.key]))
    return rows

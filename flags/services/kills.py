"""Kills: serve a flag's off variant now (one flag, or every flag with a tag), and restore it.

A kill sets the state's kill overlay and a restore clears it; the definition under
the overlay is never touched, so a restore brings back exactly what was served.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit import recorder
from audit.models import AuditEvent
from audit.recorder import Actor
from flags.errors import FlagArchived, NotFound
from flags.models import Environment, Flag, FlagState, KillTrigger
from flags.services import core


@dataclass(frozen=True)
class KillOutcome:
    """What a kill or restore did: ``changed`` is False when it was already so."""

    state: FlagState
    changed: bool
    environment_version: int


@dataclass(frozen=True)
class TagKillOutcome:
    """What a tag kill or restore did, flag by flag, under one incident id."""

    incident_id: uuid.UUID | None
    changed: list[FlagState]
    unchanged: list[FlagState]
    environment_version: int


@dataclass(frozen=True)
class _Kill:
    """The kill overlay a kill writes (a restore writes none)."""

    incident: uuid.UUID
    at: datetime


def _overlay_write(
    actor: Actor,
    environment: Environment,
    states: Sequence[FlagState],
    kill: _Kill | None,
    reason: str,
    *,
    tag: str | None = None,
) -> None:
    """Set (``kill``) or clear (None) the kill overlay of locked states, all in one environment.

    Each state's version and the environment's are bumped, each state gets one audit
    event (``flag.kill``/``flag.restore``, with the incident it starts or ends), and a
    kill is announced to the hooks (rollout plans pause).
    """
    before = {state.pk: (core.state_record(state), state.kill_incident) for state in states}
    for state in states:
        if kill is not None:
            state.killed_at, state.killed_by = kill.at, actor.name
            state.kill_reason, state.kill_incident = reason, kill.incident
        else:
            state.killed_at, state.killed_by, state.kill_reason, state.kill_incident = (
                None,
                "",
                "",
                None,
            )
        state.version += 1
        state.save(update_fields=core.KILL_FIELDS)
    core.bump_versions([environment], flags=[s.flag.key for s in states], states=states)
    for state in states:
        record, incident = before[state.pk]
        core.state_audit(
            actor=actor,
            action="flag.kill" if kill is not None else "flag.restore",
            state=state,
            environment=environment,
            before=record,
            reason=reason,
            annotation={"tag": tag} if tag is not None else None,
            incident_id=state.kill_incident or incident,
        )
    if kill is not None:
        core.states_killed.send(
            sender=FlagState, actor=actor, states=list(states), environment=environment
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
    reason = core.check_reason(reason, required=True, limit=core.MAX_KILL_REASON)
    environment, state = core.locked_state(flag, environment)
    if state.killed:
        return KillOutcome(state, False, environment.version)
    if state.flag.archived:
        raise FlagArchived(f"Flag {state.flag.key!r} is archived: SDKs no longer see it.")
    kill = _Kill(incident_id or uuid.uuid4(), killed_at or timezone.now())
    _overlay_write(actor, environment, [state], kill, reason)
    return KillOutcome(state, True, environment.version)


@transaction.atomic
def flag_restore(*, actor: Actor, flag: Flag, environment: Environment, reason: str) -> KillOutcome:
    """Lift the kill: the flag serves exactly what its definition served before."""
    reason = core.check_reason(reason, required=True, limit=core.MAX_KILL_REASON)
    environment, state = core.locked_state(flag, environment)
    if not state.killed:
        return KillOutcome(state, False, environment.version)
    _overlay_write(actor, environment, [state], None, reason)
    return KillOutcome(state, True, environment.version)


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


def _tag_overlay_change(
    *, kill: bool, actor: Actor, tag: str, environment: Environment, reason: str
) -> TagKillOutcome:
    """Kill or restore every live flag carrying ``tag`` in one environment, all or none."""
    reason = core.check_reason(reason, required=True, limit=core.MAX_KILL_REASON)
    (environment,) = core.lock_environments([environment.id])
    states = _tagged_states(environment, tag)
    changed = [s for s in states if s.killed != kill]
    if not changed:
        return TagKillOutcome(None, [], states, environment.version)
    ended = {s.kill_incident for s in changed}  # a restore's: the incidents it ends
    overlay = _Kill(uuid.uuid4(), timezone.now()) if kill else None
    _overlay_write(actor, environment, changed, overlay, reason, tag=tag)
    if overlay is not None:
        incident: uuid.UUID | None = overlay.incident
    else:
        incident = ended.pop() if len(ended) == 1 else None
    unchanged = [s for s in states if s not in changed]
    return TagKillOutcome(incident, changed, unchanged, environment.version)


@transaction.atomic
def flag_kill_by_tag(
    *, actor: Actor, tag: str, environment: Environment, reason: str
) -> TagKillOutcome:
    """Kill every live flag carrying ``tag`` in ``environment``, all or none, under one incident id.

    One audit event per killed flag, each carrying the shared incident id; flags
    already killed are left as they are (nothing written for them).
    """
    return _tag_overlay_change(
        kill=True, actor=actor, tag=tag, environment=environment, reason=reason
    )


@transaction.atomic
def flag_restore_by_tag(
    *, actor: Actor, tag: str, environment: Environment, reason: str
) -> TagKillOutcome:
    """Lift the kill of every killed live flag carrying ``tag`` in ``environment``, all or none."""
    return _tag_overlay_change(
        kill=False, actor=actor, tag=tag, environment=environment, reason=reason
    )


def trigger_fire_reason(name: str, configured: str, note: str = "") -> str:
    """A firing's kill reason: the trigger's configured reason (if any), which trigger fired,
    and the alert's note, e.g. ``checkout 5xx above 2% (trigger 'datadog' fired: p99 up)``."""
    fired = f"trigger {name!r} fired" + (f": {note.strip()[:300]}" if note.strip() else "")
    configured = configured.strip()
    text = f"{configured} ({fired})" if configured else fired
    return text[: core.MAX_KILL_REASON]


@transaction.atomic
def trigger_test(
    *, trigger: KillTrigger, source_ip: str = "", request_id: str = "", note: str = ""
) -> dict[str, object]:
    """A dry run of a trigger URL: says what firing it would do, changes nothing.

    Recorded on the audit trail as ``trigger.test`` (so a test is never mistaken for a kill).
    """
    actor = Actor(
        AuditEvent.ActorKind.TRIGGER,
        f"trigger:{trigger.name}",
        request_id=request_id,
        source_ip=source_ip,
    )
    state = FlagState.objects.get(flag=trigger.flag, environment=trigger.environment)
    killed = state.killed
    would_change = killed != (trigger.action == KillTrigger.Action.KILL)
    reason = trigger_fire_reason(trigger.name, trigger.reason, note)
    answer: dict[str, object] = {
        "dry_run": True,
        "trigger": trigger.name,
        "flag": trigger.flag.key,
        "environment": trigger.environment.key,
        "action": trigger.action,
        "killed": killed,
        "would_change": would_change,
        "reason": reason,
    }
    recorder.audit_record(
        actor=actor,
        action="trigger.test",
        target_type="trigger",
        target_key=trigger.audit_label,
        flag_key=trigger.flag.key,
        environment_key=trigger.environment.key,
        after={"action": trigger.action, "would_change": would_change, "dry_run": True},
        reason=f"dry run of trigger {trigger.name!r}: nothing changed",
    )
    return answer


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
    reason = trigger_fire_reason(trigger.name, trigger.reason, note)
    act = flag_kill if trigger.action == KillTrigger.Action.KILL else flag_restore
    outcome = act(actor=actor, flag=trigger.flag, environment=trigger.environment, reason=reason)
    if not outcome.changed:
        recorder.audit_record(
            actor=actor,
            action="trigger.fire",
            target_type="trigger",
            target_key=trigger.audit_label,
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

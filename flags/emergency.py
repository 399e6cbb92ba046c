"""Kill and restore while the database is unreachable: applied through Redis, recorded later.

An incident that takes the database down is when a commander most needs the
kill switch. When a kill (or restore) cannot reach the database, it is written
to a journal in Redis first (a Redis stream, ``flagsvc:journal``), then applied
to the current snapshot held in Redis — a new version with the flag's kill
overlay, stored and announced like any change, so every edge process, stream
and OFREP answer serves it within the same second. When the database is back,
every edge process replays the journal: each entry becomes the ordinary audited
kill (actor, reason and original time kept), exactly once — an entry's id is
recorded in the same transaction as the kill, so a second replayer finds it
done — and is then removed from the journal.

With Redis down too, nothing can be applied or kept: callers answer 503 with the
runbook's last resort.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.recorder import Actor
from flags import propagation, publish

logger = logging.getLogger(__name__)

JOURNAL = "flagsvc:journal"
ACTIONS = ("kill", "restore")


class EmergencyUnavailable(Exception):
    """Neither the database nor Redis can take the change: nothing was changed."""


class EmergencyRefused(Exception):
    """The change cannot apply (unknown flag or environment): a 4xx for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class JournalEntry:
    """One kill or restore made while the database was unreachable."""

    id: str
    action: str
    flag: str
    environment: str
    reason: str
    actor_kind: str
    actor_name: str
    source_ip: str
    request_id: str
    at: str  # ISO-8601, UTC: when the commander acted
    incident: str

    def encode(self) -> dict[str, str]:
        return {"entry": json.dumps(asdict(self))}

    @classmethod
    def decode(cls, fields: dict[bytes, bytes]) -> JournalEntry:
        return cls(**json.loads(fields[b"entry"]))


@dataclass(frozen=True)
class EmergencyOutcome:
    entries: list[JournalEntry]  # one per flag changed; none when all already were so
    environment: str
    lineage: str
    version: int
    kills: dict[str, dict[str, Any] | None]  # every flag asked for: its kill overlay now
    incident: str

    @property
    def changed(self) -> bool:
        return bool(self.entries)

    @property
    def entry(self) -> JournalEntry | None:
        return self.entries[0] if self.entries else None

    @property
    def kill(self) -> dict[str, Any] | None:
        return next(iter(self.kills.values()), None)

    @property
    def changed_flags(self) -> list[str]:
        return [entry.flag for entry in self.entries]


def _client() -> Any:
    if not settings.REDIS_URL:
        raise EmergencyUnavailable("no Redis is configured (REDIS_URL)")
    return getattr(publish.store(), "client", None)


def _lineage_of(environment: str) -> str:
    """Which history the live edge processes serve for ``environment`` (the database can't say)."""
    lineages = {
        report.environments[environment][0]
        for report in propagation.reports()
        if environment in report.environments
    }
    if len(lineages) != 1:
        raise EmergencyRefused(
            404 if not lineages else 409,
            "environment_not_found" if not lineages else "environment_ambiguous",
            f"No edge process serves an environment {environment!r}."
            if not lineages
            else f"Edge processes serve {len(lineages)} histories of {environment!r}.",
        )
    return lineages.pop()


def emergency_apply(
    *,
    action: str,
    flag: str | None = None,
    flags: list[str] | None = None,
    environment: str,
    reason: str,
    actor: Actor,
    lineage: str | None = None,
) -> EmergencyOutcome:
    """Journal the kill (or restore) of ``flag`` (or all of ``flags``, one incident) in Redis,
    then serve it everywhere through Redis, as one new version.

    Raises EmergencyUnavailable when Redis cannot take it (nothing changed), and
    EmergencyRefused for an unknown flag or environment.
    """
    assert action in ACTIONS
    wanted = [flag] if flag is not None else sorted(set(flags or ()))
    client = _client()
    try:
        lineage = lineage or _lineage_of(environment)
        for _ in range(5):  # a concurrent change moved the snapshot on: apply on top of it
            document = publish.store().current_document(environment, lineage)
            if document is None:
                raise EmergencyRefused(
                    404, "environment_not_found", f"No snapshot of {environment!r} in Redis."
                )
            missing = [key for key in wanted if key not in document["flags"]]
            if missing or not wanted:
                raise EmergencyRefused(
                    404,
                    "flag_not_found",
                    f"No flag {missing[0]!r} in {environment!r}." if missing else "No flag given.",
                )
            now = datetime.now(UTC)
            at = now.isoformat().replace("+00:00", "Z")
            incident = str(uuid.uuid4())
            kill = (
                {"by": actor.name, "at": at, "reason": reason, "incident": incident}
                if action == "kill"
                else None
            )
            changed: dict[str, dict[str, Any]] = {}
            kills: dict[str, dict[str, Any] | None] = {}
            for key in wanted:
                current = document["flags"][key]
                if (current.get("kill") is not None) == (action == "kill"):
                    kills[key] = current.get("kill")  # already so
                else:
                    changed[key] = {**current, "kill": kill}
                    kills[key] = kill
            if not changed:
                return EmergencyOutcome([], environment, lineage, document["version"], kills, "")
            entries = [
                JournalEntry(
                    id=str(uuid.uuid4()),
                    action=action,
                    flag=key,
                    environment=environment,
                    reason=reason,
                    actor_kind=actor.kind,
                    actor_name=actor.name,
                    source_ip=actor.source_ip,
                    request_id=actor.request_id,
                    at=at,
                    incident=incident,
                )
                for key in changed
            ]
            successor = {
                **document,
                "version": document["version"] + 1,
                # Marks a version no database has written: the replay's version replaces it.
                "revision": "em" + secrets.token_hex(3),
                "flags": {**document["flags"], **changed},
            }
            payload = publish.encode_snapshot(successor)
            message = publish.change_message(
                payload,
                {"previous_version": document["version"], "flags": changed, "segments": {}},
            )
            # The journal first: a change that is served is a change that will be recorded.
            for entry in entries:
                client.xadd(JOURNAL, entry.encode())
            if publish.store().store_and_publish(payload, message):
                logger.warning(
                    "EMERGENCY %s of %s in %s while the database is unreachable (incident %s)",
                    action,
                    ", ".join(changed),
                    environment,
                    incident,
                )
                return EmergencyOutcome(
                    entries, environment, lineage, payload.version, kills, incident
                )
            for entry in entries:  # not applied: this attempt is void
                _journal_remove(client, entry.id)
        raise EmergencyUnavailable("the snapshot kept changing while the kill was applied")
    except (EmergencyRefused, EmergencyUnavailable):
        raise
    except Exception as error:
        raise EmergencyUnavailable(f"Redis is unreachable too ({type(error).__name__})") from error


def _journal_remove(client: Any, entry_id: str) -> None:
    for stream_id, fields in client.xrange(JOURNAL):
        if JournalEntry.decode(fields).id == entry_id:
            client.xdel(JOURNAL, stream_id)


@dataclass(frozen=True)
class TriggerInfo:
    """What a trigger URL does, as an edge process remembers it for when the database is out."""

    name: str
    flag: str
    environment: str
    action: str
    reason: str = ""  # the trigger's configured kill reason


def edge_context() -> tuple[dict[str, TriggerInfo], dict[str, frozenset[str]]]:
    """Live triggers by secret digest, and live flags by tag: what emergency kills need to know."""
    from flags.models import Flag, KillTrigger

    triggers = {
        trigger.digest: TriggerInfo(
            trigger.name, trigger.flag.key, trigger.environment.key, trigger.action, trigger.reason
        )
        for trigger in KillTrigger.objects.filter(revoked_at__isnull=True).select_related(
            "flag", "environment"
        )
    }
    tags: dict[str, set[str]] = {}
    for key, tag in Flag.objects.filter(archived_at__isnull=True).values_list("key", "tags__name"):
        if tag:
            tags.setdefault(tag, set()).add(key)
    return triggers, {tag: frozenset(keys) for tag, keys in tags.items()}


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def journal_pending() -> int:
    client = _client()
    return int(client.xlen(JOURNAL)) if client is not None else 0


def journal_replay(limit: int = 100) -> int:
    """Write journaled kills and restores to the database (audited), each exactly once.

    Returns how many this call recorded. Safe to run in every process at once.
    """
    from flags import services
    from flags.errors import ServiceError
    from flags.models import EmergencyRecord, Environment, Flag

    client = _client()
    recorded = 0
    for stream_id, fields in client.xrange(JOURNAL, count=limit):
        entry = JournalEntry.decode(fields)
        try:
            with transaction.atomic():
                EmergencyRecord.objects.create(
                    entry_id=entry.id,
                    action=entry.action,
                    flag_key=entry.flag,
                    environment_key=entry.environment,
                    occurred_at=_parse_time(entry.at),
                )
                flag = Flag.objects.filter(key=entry.flag).first()
                environment = Environment.objects.filter(key=entry.environment).first()
                if flag is not None and environment is not None:
                    actor = Actor(
                        kind=entry.actor_kind,
                        name=entry.actor_name,
                        request_id=entry.request_id,
                        source_ip=entry.source_ip,
                    )
                    reason = (
                        f"{entry.reason} [emergency {entry.action} at {entry.at} while the "
                        "database was unreachable; recorded when it returned]"
                    )[: services.MAX_KILL_REASON]
                    try:
                        with transaction.atomic():
                            if entry.action == "kill":
                                services.flag_kill(
                                    actor=actor,
                                    flag=flag,
                                    environment=environment,
                                    reason=reason,
                                    incident_id=uuid.UUID(entry.incident),
                                    killed_at=_parse_time(entry.at),
                                )
                            else:
                                services.flag_restore(
                                    actor=actor, flag=flag, environment=environment, reason=reason
                                )
                    except ServiceError as error:  # e.g. archived since: keep the entry's record
                        logger.warning(
                            "emergency %s of %s in %s could not be recorded: %s",
                            entry.action,
                            entry.flag,
                            entry.environment,
                            error.message,
                        )
                recorded += 1
        except IntegrityError:
            pass  # another process recorded it: only the journal entry is left to remove
        client.xdel(JOURNAL, stream_id)
        logger.warning(
            "emergency %s of %s in %s recorded", entry.action, entry.flag, entry.environment
        )
    return recorded

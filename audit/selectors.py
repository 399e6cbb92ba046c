"""Reads of the audit trail: filtering, and newest-first chunks for exports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from audit.models import AuditEvent

EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class AuditFilters:
    """What the audit API narrows by; empty means "any". ``since`` is inclusive, ``until`` not."""

    flag: str | None = None
    environment: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    actions: Sequence[str] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    incident: uuid.UUID | None = None


def audit_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if filters.flag:
        events = events.filter(flag_key=filters.flag)
    if filters.environment:
        events = events.filter(environment_key=filters.environment)
    if filters.actor:
        events = events.filter(actor=filters.actor)
    if filters.actor_kind:
        events = events.filter(actor_kind=filters.actor_kind)
    if filters.actions:
        events = events.filter(action__in=list(filters.actions))
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lt=filters.until)
    if filters.incident is not None:
        events = events.filter(incident_id=filters.incident)
    return events.order_by("-sequence")


def audit_event_chunks(
    filters: AuditFilters, chunk_size: int | None = None
) -> Iterator[list[AuditEvent]]:
    """Every matching event, newest first, one bounded query per chunk.

    Keyset paging on ``sequence`` needs no long-lived cursor, and events appended
    while the export runs are not in it: it is the trail as of the first chunk.
    """
    chunk_size = chunk_size or EXPORT_CHUNK
    below: int | None = None
    while True:
        events = audit_events(filters)
        if below is not None:
            events = events.filter(sequence__lt=below)
        chunk = list(events[:chunk_size])
        if not chunk:
            return
        yield chunk
        if len(chunk) < chunk_size:
            return
        below = chunk[-1].sequence

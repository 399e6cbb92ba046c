"""What an attacker with write access to the database does to the audit trail: edit or
delete rows in SQL, then re-chain every later row (and the tip) with a hash of their choice.

Writes go around the models' append-only guard, as SQL would.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from django.db import connection, models

from audit.models import AuditChainHead, AuditEvent, canonical_json

Digest = Callable[[AuditEvent], str]
Edit = Callable[[list[AuditEvent]], list[AuditEvent]]


def plain_sha256(event: AuditEvent) -> str:
    """The hash the chain used before it was keyed."""
    return hashlib.sha256(canonical_json(event.content()).encode()).hexdigest()


def hmac_with(secret: str) -> Digest:
    """An HMAC exactly like the recorder's, under a key the attacker chose."""

    def digest(event: AuditEvent) -> str:
        message = b"flagsvc.audit.event.v1\n" + canonical_json(event.content()).encode()
        return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()

    return digest


def edit_reason(sequence: int, reason: str) -> Edit:
    def edit(events: list[AuditEvent]) -> list[AuditEvent]:
        for event in events:
            if event.sequence == sequence:
                event.reason = reason
        return events

    return edit


def drop(sequence: int) -> Edit:
    def edit(events: list[AuditEvent]) -> list[AuditEvent]:
        return [event for event in events if event.sequence != sequence]

    return edit


def as_legacy(events: list[AuditEvent]) -> list[AuditEvent]:
    """Pretend every event predates keyed hashing."""
    for event in events:
        event.key_id = event.key_proof = ""
    return events


def rechain(
    edit: Edit, digest: Digest, *, sign_tip: Callable[[AuditChainHead], None] | None = None
) -> None:
    """Apply ``edit`` to the trail, renumber it 1..n, re-hash every link from the first
    changed event on (the ones before keep their hashes), and move the tip to the new end."""
    before = list(AuditEvent.objects.order_by("sequence"))
    original = [(event.pk, canonical_json(event.content())) for event in before]
    after = edit(list(before))
    unchanged = 0
    while (
        unchanged < min(len(after), len(original))
        and (after[unchanged].pk, canonical_json(after[unchanged].content())) == original[unchanged]
    ):
        unchanged += 1
    kept = {event.pk for event in after}
    with connection.cursor() as cursor:
        for event in before:
            if event.pk not in kept:
                cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    prev_hash = "0" * 64
    for sequence, event in enumerate(after, start=1):
        event.sequence = sequence
        event.prev_hash = prev_hash
        if sequence > unchanged:
            event.hash = digest(event)
        prev_hash = event.hash
        fields = {
            "sequence": event.sequence,
            "reason": event.reason,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
        if hasattr(event, "key_id"):
            fields |= {"key_id": event.key_id, "key_proof": event.key_proof}
        models.QuerySet.update(AuditEvent.objects.filter(pk=event.pk), **fields)
    head = AuditChainHead.objects.get(pk=1)
    head.last_sequence = len(after)
    head.last_hash = prev_hash
    if hasattr(head, "last_key_id"):
        head.last_key_id = after[-1].key_id if after else ""
    if sign_tip is not None:
        sign_tip(head)
    head.save()

"""Writes audit events: called by services inside their transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from audit.checkpoints import Checkpoint, checkpoint_log
from audit.keys import AuditKeyError, ChainKeys
from audit.models import AuditChainHead, AuditEvent, canonical_json

GENESIS_HASH = "0" * 64

event_recorded = Signal()
"""Sent with ``event`` inside the change's transaction, after the event joined the chain.

Receivers may write (their writes commit or roll back with the change) and must not
fail the change: outbound notifications (``flags.webhooks``) queue their deliveries here.
"""


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: every service takes one and the audit event records it.

    >>> Actor.cli("alice").label
    'alice'
    """

    kind: str
    name: str
    request_id: str = ""
    source_ip: str = ""

    @property
    def label(self) -> str:
        return self.name

    @classmethod
    def user(cls, user: Any, *, request_id: str = "", source_ip: str = "") -> Actor:
        return cls(AuditEvent.ActorKind.USER, user.get_username(), request_id, source_ip)

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """The logged-in user behind an HTTP request, with its request id and client address."""
        return cls.user(
            request.user,
            request_id=getattr(request, "request_id", "")
            or request.META.get("HTTP_X_REQUEST_ID", "")[:64],
            source_ip=request.META.get("REMOTE_ADDR", "") or "",
        )

    @classmethod
    def cli(cls, name: str) -> Actor:
        return cls(AuditEvent.ActorKind.CLI, name)

    @classmethod
    def scheduler(cls) -> Actor:
        return cls(AuditEvent.ActorKind.SCHEDULER, "scheduler")

    @classmethod
    def guardrail(cls, name: str) -> Actor:
        return cls(AuditEvent.ActorKind.GUARDRAIL, f"guardrail:{name}")

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(AuditEvent.ActorKind.SYSTEM, name)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_key: str,
    flag_key: str = "",
    environment_key: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    incident_id: uuid.UUID | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the change's transaction."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the change's transaction")
    head = _locked_head()
    keys = ChainKeys.from_settings()
    event = AuditEvent(
        sequence=head.last_sequence + 1,
        occurred_at=timezone.now(),
        actor=actor.name,
        actor_kind=actor.kind,
        action=action,
        target_type=target_type,
        target_key=target_key,
        flag_key=flag_key,
        environment_key=environment_key,
        before_json=canonical_json(before),
        after_json=canonical_json(after),
        reason=reason,
        request_id=actor.request_id,
        source_ip=actor.source_ip,
        incident_id=incident_id,
        prev_hash=head.last_hash,
        key_id=keys.signing_id,
    )
    _seal_and_append(event, head, keys)
    event_recorded.send(sender=AuditEvent, event=event)
    return event


@transaction.atomic
def audit_key_rotate(*, actor: Actor, reason: str = "") -> AuditEvent | None:
    """Record now that the chain is signed with the configured signing key from here on.

    Without it the next change records the rotation itself; a dedicated
    ``audit.key_rotated`` event marks the moment and proves at deploy time that the
    previous key is still configured. None when the chain is already on that key.
    """
    keys = ChainKeys.from_settings()
    head = _locked_head()
    if head.last_key_id == keys.signing_id:
        return None
    return audit_record(
        actor=actor,
        action="audit.key_rotated",
        target_type="audit_key",
        target_key=keys.signing_id,
        before={"key_id": head.last_key_id or None},
        after={"key_id": keys.signing_id},
        reason=reason,
    )


def _seal_and_append(event: AuditEvent, head: AuditChainHead, keys: ChainKeys) -> None:
    previous_key_id = head.last_key_id
    rotated = previous_key_id != event.key_id
    if rotated and previous_key_id:
        if not keys.has(previous_key_id):
            raise AuditKeyError(
                f"the audit chain's last event is signed with key {previous_key_id!r}, so the "
                f"switch to {event.key_id!r} must be proven with it: add "
                f"{previous_key_id}:<its secret> after the signing key in AUDIT_CHAIN_KEYS"
            )
        event.key_proof = event.compute_key_proof(keys, previous_key_id)
    _export_committed_tip(head, rotated)
    event.hash = event.compute_hash(keys)
    event.save()
    head.last_sequence = event.sequence
    head.last_hash = event.hash
    head.last_key_id = event.key_id
    head.sign(keys)
    head.save(update_fields=["last_sequence", "last_hash", "last_key_id", "mac_key_id", "mac"])


def _export_committed_tip(head: AuditChainHead, rotated: bool) -> None:
    # The tip under our lock was committed by the previous writer, so its checkpoint
    # stays true even if this transaction rolls back (a checkpoint of the event being
    # written could name a sequence that the next event reuses). The newest event is
    # exported by the next write, or by `manage.py audit_checkpoint`. A key change
    # always exports the end of the previous key's (or the legacy) span.
    every = settings.AUDIT_CHECKPOINT_EVERY
    if head.last_sequence and (rotated or (every > 0 and head.last_sequence % every == 0)):
        checkpoint_log(Checkpoint(head.last_sequence, head.last_hash, head.last_key_id))


def _locked_head() -> AuditChainHead:
    # The row lock serialises appenders until their transactions end: two
    # concurrent changes can never both extend the same tip.
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head

"""Writes audit events: called by services inside their transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, canonical_json

GENESIS_HASH = "0" * 64


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
    )
    event.hash = event.compute_hash()
    event.save()
    head.last_sequence = event.sequence
    head.last_hash = event.hash
    head.save(update_fields=["last_sequence", "last_hash"])
    return event


def _locked_head() -> AuditChainHead:
    # The row lock serialises appenders until their transactions end: two
    # concurrent changes can never both extend the same tip.
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head

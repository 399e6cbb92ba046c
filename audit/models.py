"""The audit trail: append-only events, one per change, chained with HMAC-SHA256.

Each event's ``hash`` is an HMAC (key from AUDIT_CHAIN_KEYS, see ``audit.keys``) over
its content and the previous event's hash. Events written before keyed hashing
(``key_id`` empty, "legacy") keep their plain SHA-256 hash and are verified that way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models

from audit.keys import EVENT_DOMAIN, HEAD_DOMAIN, ROTATION_DOMAIN, ChainKeys


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events are append-only; they cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only; they cannot be deleted")


def canonical_json(value: Any) -> str:
    """One spelling per value, so a hash over it is stable across reads."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class AuditEvent(models.Model):
    """Who changed what, when, why, with the state before and after."""

    class ActorKind(models.TextChoices):
        USER = "user"
        TOKEN = "token"
        TRIGGER = "trigger"
        SCHEDULER = "scheduler"
        GUARDRAIL = "guardrail"
        CLI = "cli"
        SYSTEM = "system"

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=200, db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32)
    target_key = models.CharField(max_length=200)
    flag_key = models.CharField(max_length=100, blank=True, db_index=True)
    environment_key = models.CharField(max_length=64, blank=True, db_index=True)
    # before/after are stored as canonical JSON text, exactly what the hash covers.
    before_json = models.TextField(default="null")
    after_json = models.TextField(default="null")
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.CharField(max_length=45, blank=True)
    incident_id = models.UUIDField(null=True, blank=True, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # The id (never the secret) of the key whose HMAC ``hash`` is; empty for legacy events.
    key_id = models.CharField(max_length=32, blank=True, default="")
    # Set where the signing key changes: the previous key's HMAC over the handover, so a
    # key rotation cannot be invented (or moved) by someone holding only the new key.
    key_proof = models.CharField(max_length=64, blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("-sequence",)

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.target_key} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only; they cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only; they cannot be deleted")

    @property
    def before(self) -> Any:
        return json.loads(self.before_json)

    @property
    def after(self) -> Any:
        return json.loads(self.after_json)

    @property
    def is_legacy(self) -> bool:
        return not self.key_id

    def content(self) -> dict[str, Any]:
        """Every field the hash covers, as plain JSON values."""
        content = {
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "target_type": self.target_type,
            "target_key": self.target_key,
            "flag_key": self.flag_key,
            "environment_key": self.environment_key,
            "before": self.before_json,
            "after": self.after_json,
            "reason": self.reason,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
            "incident_id": str(self.incident_id) if self.incident_id else "",
            "prev_hash": self.prev_hash,
        }
        if not self.is_legacy:
            content |= {"key_id": self.key_id, "key_proof": self.key_proof}
        return content

    def compute_hash(self, keys: ChainKeys) -> str:
        """HMAC-SHA256 under ``key_id``; plain SHA-256 for legacy events."""
        if self.is_legacy:
            return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()
        return keys.mac(self.key_id, EVENT_DOMAIN, canonical_json(self.content()))

    def compute_key_proof(self, keys: ChainKeys, previous_key_id: str) -> str:
        """The previous key's HMAC over this handover: position in the chain and new key id."""
        return keys.mac(
            previous_key_id,
            ROTATION_DOMAIN,
            canonical_json([self.sequence, self.prev_hash, previous_key_id, self.key_id]),
        )


def chain_head_mac(
    keys: ChainKeys, key_id: str, last_sequence: int, last_hash: str, last_key_id: str
) -> str:
    """The tip's signature (also used by migration 0003, whose models have no methods)."""
    message = canonical_json([last_sequence, last_hash, last_key_id])
    return keys.mac(key_id, HEAD_DOMAIN, message)


class AuditChainHead(models.Model):
    """The chain's tip. Appenders lock this one row, so the chain never forks.

    The tip is signed (``mac``): rewriting the chain changes the last hash, and the
    tip cannot be moved to the rewritten one without a key.
    """

    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    last_key_id = models.CharField(max_length=32, blank=True, default="")
    mac_key_id = models.CharField(max_length=32, blank=True, default="")
    mac = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"audit chain at #{self.last_sequence}"

    def compute_mac(self, keys: ChainKeys, key_id: str) -> str:
        return chain_head_mac(keys, key_id, self.last_sequence, self.last_hash, self.last_key_id)

    def sign(self, keys: ChainKeys) -> None:
        self.mac_key_id = keys.signing_id
        self.mac = self.compute_mac(keys, self.mac_key_id)

"""Checks the audit chain: every row's HMAC, every link and key rotation, the signed tip,
and exported checkpoints."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from audit.checkpoints import Checkpoint
from audit.keys import ChainKeys, macs_equal, missing_key_message
from audit.models import AuditChainHead, AuditEvent
from audit.recorder import GENESIS_HASH


@dataclass(frozen=True)
class KeySpan:
    """A run of consecutive events signed with one key."""

    key_id: str
    first: int
    last: int


@dataclass(frozen=True)
class ChainReport:
    verified: int
    problem: str | None
    legacy: int = 0
    key_spans: tuple[KeySpan, ...] = ()
    checkpoints_matched: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        """What was verified, in one line: legacy events, keys used, checkpoints matched."""
        parts = [f"{self.verified} events verified"]
        if self.legacy:
            parts.append(
                f"{self.legacy} legacy (plain SHA-256, written before keyed hashing: "
                f"#1-#{self.legacy})"
            )
        else:
            parts.append("0 legacy")
        if self.key_spans:
            spans = ", ".join(f"{s.key_id} #{s.first}-#{s.last}" for s in self.key_spans)
            parts.append(f"HMAC-SHA256 by key {spans}")
        if self.checkpoints_matched:
            plural = "s" if self.checkpoints_matched != 1 else ""
            parts.append(f"{self.checkpoints_matched} exported checkpoint{plural} matched")
        return "; ".join(parts)


@dataclass
class _Walk:
    keys: ChainKeys
    checkpoints: deque[Checkpoint]
    verified: int = 0
    legacy: int = 0
    prev_hash: str = GENESIS_HASH
    prev_key_id: str = ""
    spans: list[KeySpan] = field(default_factory=list)
    matched: int = 0

    def report(self, problem: str | None) -> ChainReport:
        return ChainReport(self.verified, problem, self.legacy, tuple(self.spans), self.matched)

    def check(self, event: AuditEvent) -> str | None:
        """The first problem with the next event, or None after recording it as good."""
        expected = self.verified + 1
        if event.sequence != expected:
            return (
                f"event #{expected} is missing (next stored event is #{event.sequence}): "
                "a row was deleted"
            )
        if event.prev_hash != self.prev_hash:
            return (
                f"event #{event.sequence} does not link to the event before it "
                "(prev_hash mismatch): a row was deleted, inserted or rewritten"
            )
        problem = self._check_signature(event)
        if problem:
            return problem
        for checkpoint in self._checkpoints_at(event.sequence):
            if not macs_equal(checkpoint.hash, event.hash):
                return (
                    f"event #{event.sequence} does not match the exported checkpoint "
                    f"#{checkpoint.sequence} (taken {checkpoint.occurred_at or 'at an unknown time'}"
                    f", hash {checkpoint.hash[:16]}…; stored {event.hash[:16]}…): the chain was "
                    "rewritten after the checkpoint was taken"
                )
            self.matched += 1
        self._advance(event)
        return None

    def _check_signature(self, event: AuditEvent) -> str | None:
        what = f"event #{event.sequence} ({event.action} {event.target_key})"
        if event.is_legacy:
            if self.prev_key_id:
                return (
                    f"{what} is a legacy (unkeyed) event after keyed events: legacy events "
                    "only exist before the first keyed one, so it was rewritten"
                )
            if event.compute_hash(self.keys) != event.hash:
                return f"{what} was modified after it was written: its content no longer matches its hash"
            return None
        if not self.keys.has(event.key_id):
            return f"{what} is signed with key id {event.key_id!r}: " + missing_key_message(
                event.key_id
            )
        if not macs_equal(event.compute_hash(self.keys), event.hash):
            return (
                f"{what} was modified after it was written: its content no longer matches its "
                f"HMAC under key {event.key_id!r} (rewritten or re-hashed without the key)"
            )
        previous = self.prev_key_id
        if previous and previous != event.key_id:
            if not self.keys.has(previous):
                return (
                    f"{what} switches the signing key from {previous!r} to {event.key_id!r}, "
                    "which only the previous key can prove: " + missing_key_message(previous)
                )
            if not macs_equal(event.compute_key_proof(self.keys, previous), event.key_proof):
                return (
                    f"{what} switches the signing key from {previous!r} to {event.key_id!r} "
                    f"without a valid proof from {previous!r}: the key rotation was forged"
                )
        return None

    def _checkpoints_at(self, sequence: int) -> list[Checkpoint]:
        here = []
        while self.checkpoints and self.checkpoints[0].sequence == sequence:
            here.append(self.checkpoints.popleft())
        return here

    def _advance(self, event: AuditEvent) -> None:
        self.verified += 1
        self.prev_hash = event.hash
        if event.is_legacy:
            self.legacy += 1
        elif self.spans and self.spans[-1].key_id == event.key_id:
            self.spans[-1] = KeySpan(event.key_id, self.spans[-1].first, event.sequence)
        else:
            self.spans.append(KeySpan(event.key_id, event.sequence, event.sequence))
        self.prev_key_id = event.key_id


def audit_chain_verify(
    *, checkpoints: Sequence[Checkpoint] = (), batch_size: int = 2000
) -> ChainReport:
    """Walk the chain in order; report the first problem, or what was verified.

    Checkpoints are exported (sequence, hash) pairs: each must still be on the chain.
    """
    walk = _Walk(ChainKeys.from_settings(), deque(sorted(checkpoints, key=lambda c: c.sequence)))
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size):
        problem = walk.check(event)
        if problem:
            return walk.report(problem)
    return walk.report(_check_tip(walk))


def _check_tip(walk: _Walk) -> str | None:
    last = walk.verified
    if walk.checkpoints:
        beyond = walk.checkpoints[0].sequence
        return (
            f"the exported checkpoint #{beyond} is beyond the last stored event #{last}: "
            "events at the end were deleted (or the database was restored from an older backup)"
        )
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return None if last == 0 else "the chain tip row is missing: it was deleted"
    if (head.last_sequence, head.last_hash, head.last_key_id) != (
        last,
        walk.prev_hash,
        walk.prev_key_id,
    ):
        return (
            f"the chain tip records event #{head.last_sequence} but the last stored event is "
            f"#{last} (or has another hash): events at the end were deleted or rewritten, or "
            "the tip was rewritten"
        )
    if not head.mac:
        if last == 0:
            return None  # a fresh, empty chain
        return (
            "the chain tip is not signed (every append and migration 0003 sign it): "
            "the tip was rewritten to match rewritten events"
        )
    if not walk.keys.has(head.mac_key_id):
        return "the chain tip's signature cannot be checked: " + missing_key_message(
            head.mac_key_id
        )
    if not macs_equal(head.compute_mac(walk.keys, head.mac_key_id), head.mac):
        return (
            "the chain tip's signature does not match: the tip (and the events it seals) "
            "was rewritten without the key"
        )
    return None

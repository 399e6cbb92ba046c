"""Checks the audit chain: every row's hash, every link, and the recorded tip."""

from __future__ import annotations

from dataclasses import dataclass

from audit.models import AuditChainHead, AuditEvent
from audit.recorder import GENESIS_HASH


@dataclass(frozen=True)
class ChainReport:
    verified: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def audit_chain_verify(batch_size: int = 2000) -> ChainReport:
    """Walk the chain in order; report the first broken link, or the count verified."""
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    verified = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size):
        if event.sequence != expected_sequence:
            return ChainReport(
                verified,
                f"event #{expected_sequence} is missing (next stored event is #{event.sequence}): "
                "a row was deleted",
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                verified,
                f"event #{event.sequence} does not link to the event before it "
                "(prev_hash mismatch): a row was deleted, inserted or rewritten",
            )
        if event.compute_hash() != event.hash:
            return ChainReport(
                verified,
                f"event #{event.sequence} ({event.action} {event.target_key}) was modified "
                "after it was written: its content no longer matches its hash",
            )
        expected_prev = event.hash
        expected_sequence += 1
        verified += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_sequence, head.last_hash) != (verified, expected_prev):
        return ChainReport(
            verified,
            f"the chain tip records event #{head.last_sequence} but the last stored event is "
            f"#{verified}: events at the end were deleted or the tip was rewritten",
        )
    return ChainReport(verified, None)

"""Checkpoints: (sequence, hash) pairs of the chain exported out of the database.

A checkpoint is one JSON object per line. The recorder logs committed ones to the
``audit.checkpoint`` logger (every AUDIT_CHECKPOINT_EVERY events and at every key
change), and ``manage.py audit_checkpoint`` prints or appends the verified tip.
Whoever can rewrite the database cannot rewrite the log shipper's copy or a file
kept elsewhere, so ``audit_verify --checkpoints FILE`` catches a rewrite even by
someone who holds the chain key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger("audit.checkpoint")

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointFileError(ValueError):
    """A checkpoints file line that is not a checkpoint; the message names the line."""


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str
    key_id: str = ""
    occurred_at: str = ""

    def to_line(self) -> str:
        line = {"sequence": self.sequence, "hash": self.hash}
        if self.key_id:
            line["key_id"] = self.key_id
        if self.occurred_at:
            line["occurred_at"] = self.occurred_at
        return json.dumps(line, separators=(",", ":"))


def checkpoint_log(checkpoint: Checkpoint) -> None:
    logger.info("%s", checkpoint.to_line())


def parse_checkpoints(lines: Iterable[str]) -> list[Checkpoint]:
    """One checkpoint per non-blank line. A log prefix before the ``{`` is skipped, so
    ``grep audit.checkpoint app.log`` is a valid checkpoints file as it stands."""
    checkpoints = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        start = line.find("{")
        try:
            if start < 0:
                raise ValueError("no JSON object")
            value = json.loads(line[start:])
            sequence, digest = value["sequence"], value["hash"]
            if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
                raise ValueError("sequence must be a positive integer")
            if not isinstance(digest, str) or not HEX64.match(digest):
                raise ValueError("hash must be 64 lowercase hex characters")
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointFileError(
                f"line {number} is not a checkpoint ({error}): each line must hold a JSON "
                'object like {"sequence": 42, "hash": "<64 hex>"}, as audit_checkpoint writes'
            ) from None
        checkpoints.append(
            Checkpoint(
                sequence,
                digest,
                str(value.get("key_id") or ""),
                str(value.get("occurred_at") or ""),
            )
        )
    return checkpoints

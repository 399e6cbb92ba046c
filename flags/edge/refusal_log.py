"""A bounded log of refused SDK requests: the first of a burst in full, then one summary per interval.

Unknown keys and rate-limited callers can arrive by the thousand per second; one
WARNING line each would flood the log (and its disk) at the attacker's pace.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

MAX_ADDRESSES = 1000  # distinct client addresses counted per interval (the rest are "other")


class RefusalLog:
    """Logs a refusal in full when none was logged for ``interval`` seconds, else counts it."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self.quiet_until = 0.0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.addresses: collections.Counter[str] = collections.Counter()

    def record(self, outcome: str, client: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now >= self.quiet_until:
            self.flush()
            self.logger.warning(message, *args)
            self.quiet_until = now + self.interval
            return
        self.outcomes[outcome] += 1
        if client in self.addresses or len(self.addresses) < MAX_ADDRESSES:
            self.addresses[client] += 1
        else:
            self.addresses["other"] += 1

    def flush_if_due(self) -> None:
        """Log the summary once the interval is over (called a few times a second)."""
        if self.outcomes and time.monotonic() >= self.quiet_until:
            self.flush()

    def flush(self) -> None:
        """One line for the refusals counted since the last line, if any."""
        if not self.outcomes:
            return
        total = sum(self.outcomes.values())
        outcomes = ", ".join(f"{outcome}: {n}" for outcome, n in self.outcomes.most_common())
        top = ", ".join(f"{address}: {n}" for address, n in self.addresses.most_common(5))
        self.logger.warning(
            "%d more SDK requests refused in the last %.0f s (%s) from %d client address(es); most from: %s",
            total,
            self.interval,
            outcomes,
            len(self.addresses),
            top,
        )
        self.outcomes.clear()
        self.addresses.clear()

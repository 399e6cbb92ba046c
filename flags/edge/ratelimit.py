"""Per-(token, client address) request limits for the SDK edge, shared through Redis when set.

Decisions are local and O(1). Counts are kept per one-second window; with Redis,
each process adds its counts to a shared counter a few times a second and
blocks a key for the rest of the window once the total is over the limit, so
the limit holds across processes and replicas within a fraction of a second.

Why not a library (slowapi, limits): they make a Redis round trip per request, which
the edge's hot paths (snapshot, OFREP) cannot afford; this decides in memory.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("flags.edge")


class RateLimiter:
    def __init__(self, limit_per_second: int) -> None:
        self.limit = limit_per_second
        self.window = int(time.time())
        self.counts: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.blocked: dict[str, int] = {}

    def hit(self, key: str) -> int | None:
        """Count one request; the Retry-After seconds if it is over the limit, else None."""
        if not self.limit:
            return None
        window = int(time.time())
        if window != self.window:
            self.window = window
            self.counts = {}
            self.blocked = {k: w for k, w in self.blocked.items() if w >= window}
        if self.blocked.get(key, -1) >= window:
            return 1
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        self.pending[key] = self.pending.get(key, 0) + 1
        if count > self.limit:
            self.blocked[key] = window
            return 1
        return None

    async def sync(self, redis: Any) -> None:
        """Add this process's counts to the shared ones and block keys over the limit."""
        if not self.pending or redis is None:
            return
        pending, self.pending = self.pending, {}
        window = self.window
        pipeline = redis.pipeline(transaction=False)
        keys = list(pending)
        for key in keys:
            name = f"flagsvc:ratelimit:{key}:{window}"
            pipeline.incrby(name, pending[key])
            pipeline.expire(name, 3)
        try:
            results = await pipeline.execute()
        except Exception:
            logger.debug("rate-limit sync skipped: Redis unavailable", exc_info=True)
            return
        for key, total in zip(keys, results[::2], strict=True):
            if int(total) > self.limit:
                self.blocked[key] = window

"""Readiness of one edge process: can it serve SDK reads, and how is each dependency doing.

An instance is ready while it can answer SDK reads: it holds a snapshot (from
memory, whatever is down), or the database answers (it loads snapshots on
demand, or there are no environments yet). Each dependency is ``ok``,
``degraded`` (answers, but slowly or only in part) or ``down``; a dependency
that is down is reported, logged and exported in /metrics, but never takes a
serving instance out of rotation. Error details go to the log, never to the
answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from flags.edge.state import EdgeState, environment_identities
from flagsvc import metrics

logger = logging.getLogger("flags.edge")

OK, DEGRADED, DOWN = "ok", "degraded", "down"
TIMEOUT_SECONDS = 3.0
SLOW_SECONDS = 1.0  # a dependency slower than this to answer is degraded

# Probes get threads of their own: a dependency that hangs must never hold the threads the
# edge needs to serve. One probe per dependency at a time; a probe still running is joined.
_probe_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="edge-readiness")
_running: dict[str, Future[Any]] = {}
_last_state: dict[str, str] = {}


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]
    serving: bool
    why_not: str = ""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ready" if self.serving else "unavailable",
            "checks": self.checks,
        }
        if not self.serving:
            body["error"] = {"code": "not_ready", "message": self.why_not, "fields": {}}
        return body


def _database() -> list[str]:
    close_old_connections()
    try:
        return list(environment_identities())
    finally:
        connection.close()


def _cache() -> None:
    if settings.REDIS_URL:
        from flags import publish

        publish.store().client.ping()  # type: ignore[union-attr]


def _broker() -> None:
    from flagsvc.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


async def _probe(name: str, function: Callable[[], Any]) -> tuple[str, Any]:
    """The dependency's state and what the probe returned (None when down)."""
    running = _running.get(name)
    if running is None or running.done():
        running = _running[name] = _probe_pool.submit(function)
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(running), timeout=TIMEOUT_SECONDS)
    except Exception as error:
        _record(name, DOWN, error)
        return DOWN, None
    state = DEGRADED if time.monotonic() - started > SLOW_SECONDS else OK
    _record(name, state, None)
    return state, result


def _record(name: str, state: str, error: BaseException | None) -> None:
    metrics.dependency_state(name, state)
    previous = _last_state.get(name)
    _last_state[name] = state
    if state == previous:
        return
    if state == DOWN:
        reason = f"{type(error).__name__}: {error}" if error else "no answer"
        if isinstance(error, TimeoutError):
            reason = f"no answer within {TIMEOUT_SECONDS:g} s"
        logger.warning("readiness: %s is down (%s)", name, reason)
    elif previous is not None:
        logger.info("readiness: %s is %s", name, state)


async def readiness(state: EdgeState, fanout: Any = None) -> Readiness:
    """Probe the database, cache and broker concurrently (bounded) and decide readiness."""
    (database, environments), (cache, _), (broker, _) = await asyncio.gather(
        _probe("database", _database), _probe("cache", _cache), _probe("broker", _broker)
    )
    if cache == OK and fanout is not None and settings.REDIS_URL and not fanout.redis_healthy:
        # Redis answers but this process is not subscribed: changes reach it by the
        # database watch only (within EDGE_FALLBACK_WATCH_SECONDS).
        cache = DEGRADED
        metrics.dependency_state("cache", cache)
    checks = {"database": database, "cache": cache, "broker": broker}
    if state.environments or environments == []:
        return Readiness(checks, serving=True)
    if database == DOWN:
        why = "No snapshot loaded and the database is unreachable: nothing to serve yet."
    else:
        why = "No snapshot loaded yet: the first one is on its way from the database."
    return Readiness(checks, serving=False, why_not=why)

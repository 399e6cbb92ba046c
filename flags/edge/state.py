"""What one edge process holds in memory: snapshots as ready bytes, tokens, stream subscribers.

Everything here is touched only from the event loop's thread. Database work is
sent to a small thread pool by ``run_db`` and its results are applied back on
the loop, so a request never waits for another request's database call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from flags import publish
from flags.edge.ratelimit import RateLimiter
from flags.edge.snapshots import EnvironmentSnapshot
from flags.edge.sse import KEEP_ALIVE, Subscriber, reconnect_hint, sse_event
from flags.issued_secrets import secret_digest
from flags.tokens import TokenPrincipal
from flagsvc import metrics

logger = logging.getLogger("flags.edge")

T = TypeVar("T")
_db_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edge-db")
# Evaluations too big to run on the event loop (see EnvironmentSnapshot.evaluation_work).
# Two threads: big requests queue behind each other, never behind the loop's work.
_evaluation_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-eval")


async def run_db(function: Callable[..., T], *args: Any) -> T:
    """Run a database-touching function in the edge's thread pool, closing its connection after."""

    def call() -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            connection.close()

    return await asyncio.get_running_loop().run_in_executor(_db_pool, call)


def drop_queued_work() -> None:
    """At shutdown: drop database and evaluation calls not started yet (Python joins these
    pools' threads at exit, after running everything queued), so a process whose database
    hangs still stops within its calls' own timeouts. Fresh pools serve whatever runs next
    in this process (an application started again, as the tests do)."""
    global _db_pool, _evaluation_pool
    old = (_db_pool, _evaluation_pool)
    _db_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edge-db")
    _evaluation_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-eval")
    for pool in old:
        pool.shutdown(wait=False, cancel_futures=True)


async def run_evaluation(function: Callable[..., T], *args: Any) -> T:
    """Run an evaluation off the event loop, so streams, kills and probes never wait for it."""
    return await asyncio.get_running_loop().run_in_executor(_evaluation_pool, function, *args)


MAX_REFUSED_KEYS = 10_000  # bounds the negative cache's memory


class KeyLookupThrottled(Exception):
    """A client address asked about too many unknown keys this second."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class ChangeRecord:
    """A published change kept for Last-Event-ID catch-up."""

    version: int
    previous_version: int | None
    patch_event: bytes | None


class EdgeState:
    """Per-process caches of the SDK edge, refreshed by the fan-out within milliseconds."""

    def __init__(self, key_lookups_per_second: int = 0) -> None:
        self.environments: dict[str, EnvironmentSnapshot] = {}
        self.tokens: dict[str, TokenPrincipal] = {}
        self.tokens_loaded = False
        self.refused: dict[str, tuple[float, str]] = {}  # digest -> (until, why): negative cache
        # Database lookups of keys missing from the map, per client address.
        self.key_lookups = RateLimiter(key_lookups_per_second)
        self.subscribers: dict[str, set[Subscriber]] = collections.defaultdict(set)
        self.streams_per_key: collections.Counter[str] = collections.Counter()
        self.stream_count = 0
        self.history: dict[str, collections.deque[ChangeRecord]] = collections.defaultdict(
            lambda: collections.deque(maxlen=64)
        )
        self._loading: dict[str, asyncio.Future[EnvironmentSnapshot | None]] = {}
        self.used_digests: dict[str, float] = {}
        # False while this process's database calls fail: kills then go through Redis
        # at once (flags.edge.emergency) instead of waiting for the database first.
        self.database_ok = True
        # What emergency kills need when the database is out: live trigger URLs by
        # secret digest, live flags by tag (refreshed with every database watch).
        self.triggers: dict[str, Any] = {}
        self.tags: dict[str, frozenset[str]] = {}
        self.on_version: Callable[[str, int], None] = lambda environment, version: None
        self.on_streams: Callable[[str, int], None] = lambda environment, count: None
        self.draining = False  # set by end_streams when the process stops

    # -- tokens

    def set_tokens(self, tokens: dict[str, TokenPrincipal]) -> None:
        """Install the live token map; streams of keys no longer in it (revoked) end now."""
        self.tokens = tokens
        self.tokens_loaded = True
        self.refused.clear()
        for environment, subscribers in self.subscribers.items():
            for subscriber in list(subscribers):
                if subscriber.digest and subscriber.digest not in tokens:
                    self.unsubscribe(environment, subscriber)
                    subscriber.close()

    async def authenticate(self, raw: str, client: str = "-") -> tuple[TokenPrincipal | None, str]:
        """The live principal for a raw token, or None and why (checked in memory first).

        Raises KeyLookupThrottled when the key would need a database lookup and the
        client address has had its share of those this second.
        """
        if not raw or len(raw) > 200:
            return None, "no token: send Authorization: Bearer <key> (or X-API-Key for OFREP)"
        digest = secret_digest(raw)
        principal = self.tokens.get(digest)
        if principal is not None:
            self.used_digests[digest] = time.time()
            return principal, ""
        refused = self.refused.get(digest)
        if refused is not None and refused[0] > time.monotonic():
            metrics.KEY_LOOKUPS.labels("cached_refusal").inc()
            return None, refused[1]
        # Not in the map: a token created since the last refresh, or not a token at all.
        # Each costs a database query, so an address gets only a few a second.
        retry_after = self.key_lookups.hit(f"lookup:{client}")
        if retry_after is not None:
            metrics.KEY_LOOKUPS.labels("throttled").inc()
            raise KeyLookupThrottled(retry_after)
        from flags.tokens import token_lookup

        metrics.KEY_LOOKUPS.labels("database").inc()
        principal, why = await run_db(token_lookup, raw)
        if principal is None:
            if len(self.refused) >= MAX_REFUSED_KEYS:
                now = time.monotonic()
                self.refused = {k: v for k, v in self.refused.items() if v[0] > now}
                if len(self.refused) >= MAX_REFUSED_KEYS:
                    self.refused.clear()
            self.refused[digest] = (time.monotonic() + 30, why)
            return None, why
        self.tokens[digest] = principal
        return principal, ""

    # -- snapshots

    def current(self, environment: str) -> EnvironmentSnapshot | None:
        return self.environments.get(environment)

    def install(
        self, payload: publish.SnapshotPayload, *, verified: bool = False
    ) -> EnvironmentSnapshot | None:
        """Swap in a newer version; an older or equal one is ignored (never go backwards).

        ``verified``: the payload was just read as the database's current snapshot, so
        it replaces whatever this process holds if that differs (a restored or
        recreated database, another history), even with a lower version number.
        """
        current = self.environments.get(payload.environment)
        if current is not None:
            if current.identity == payload.identity:
                return None
            if not verified and (
                current.lineage != payload.lineage or current.version >= payload.version
            ):
                return None
        snapshot = EnvironmentSnapshot(payload)
        self.environments[payload.environment] = snapshot
        self.on_version(payload.environment, payload.version)
        return snapshot

    async def load(self, environment: str) -> EnvironmentSnapshot | None:
        """The environment's snapshot; a cold cache reads the store, else the database, once."""
        current = self.environments.get(environment)
        if current is not None:
            return current
        pending = self._loading.get(environment)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[environment] = pending
            try:
                payload = await run_db(load_payload, environment)
                if payload is not None:
                    self.install(payload, verified=True)
                pending.set_result(self.environments.get(environment))
            except Exception as error:
                pending.set_exception(error)
            finally:
                del self._loading[environment]
        return await asyncio.shield(pending)

    # -- streams

    def subscribe(self, environment: str, subscriber: Subscriber) -> None:
        self.subscribers[environment].add(subscriber)
        self.streams_per_key[subscriber.digest] += 1
        self.stream_count += 1
        self.on_streams(environment, len(self.subscribers[environment]))

    def unsubscribe(self, environment: str, subscriber: Subscriber) -> None:
        subscribers = self.subscribers[environment]
        if subscriber in subscribers:  # a closed stream unsubscribes again when it ends
            subscribers.discard(subscriber)
            self.stream_count -= 1
            self.streams_per_key[subscriber.digest] -= 1
            if self.streams_per_key[subscriber.digest] <= 0:
                del self.streams_per_key[subscriber.digest]
        self.on_streams(environment, len(subscribers))

    def announce(
        self, snapshot: EnvironmentSnapshot, delta: dict[str, Any] | None, readers: str = "all"
    ) -> None:
        """Tell every stream of the environment about a new version (events built once)."""
        self.announce_change(snapshot.key, snapshot.version, delta, readers)

    def announce_change(
        self, environment: str, version: int, delta: dict[str, Any] | None, readers: str = "all"
    ) -> None:
        """``announce`` for a version this process installs now or is about to install.

        ``readers`` picks the streams: ``"patch"`` those that apply the delta themselves
        (server keys; told before the snapshot is installed, as they need nothing else),
        ``"version"`` those that ask this process again (client keys: told once it serves
        the version, or their OFREP request would get the old one), or ``"all"``.
        """
        version_event = sse_event(
            "version", version, {"environment": environment, "version": version}
        )
        patch_event = None
        previous = delta.get("previous_version") if delta else None
        if delta is not None:
            patch_event = sse_event(
                "patch",
                version,
                {
                    "environment": environment,
                    "version": version,
                    "previous_version": previous,
                    "flags": delta["flags"],
                    "segments": delta["segments"],
                },
            )
        if readers != "version":
            self.history[environment].append(ChangeRecord(version, previous, patch_event))
        messages = {
            event: {"type": "http.response.body", "body": event, "more_body": True}
            for event in (patch_event, version_event)
            if event is not None
        }
        for subscriber in list(self.subscribers.get(environment, ())):
            gets_patch = patch_event is not None and subscriber.kind != "client"
            if (readers == "patch" and not gets_patch) or (readers == "version" and gets_patch):
                continue
            event = patch_event if gets_patch and patch_event is not None else version_event
            try:
                subscriber.deliver(messages[event], event)
            except asyncio.QueueFull:
                # A consumer this far behind is closed; it resyncs from scratch when it reconnects.
                self.unsubscribe(environment, subscriber)
                subscriber.close()

    def end_streams(self) -> int:
        """The process is stopping: end every open stream now, and refuse new ones, so that
        the server's graceful shutdown is not spent waiting on streams that never end (each
        SDK reconnects to another process at once). Returns how many were ended."""
        self.draining = True
        ended = 0
        for environment, subscribers in self.subscribers.items():
            for subscriber in list(subscribers):
                self.unsubscribe(environment, subscriber)
                subscriber.finish(reconnect_hint())  # what it has queued, then "reconnect"
                ended += 1
        return ended

    def keep_alive(self) -> None:
        """One keep-alive comment to every open stream (a stream's loop then needs no timer)."""
        message = {"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True}
        for subscribers in self.subscribers.values():
            for subscriber in list(subscribers):
                if subscriber.queue.empty():  # a stream with events pending is alive anyway
                    subscriber.deliver(message, KEEP_ALIVE)

    def catch_up(self, environment: str, last_seen: int, current: int) -> list[bytes] | None:
        """Patch events leading from ``last_seen`` to ``current``, or None if there is a gap."""
        chain: list[bytes] = []
        at = last_seen
        for record in self.history.get(environment, ()):
            if record.version <= at:
                continue
            if record.previous_version != at or record.patch_event is None:
                return None
            chain.append(record.patch_event)
            at = record.version
        return chain if at == current else None


def load_payload(environment: str) -> publish.SnapshotPayload | None:
    """The database's current snapshot: from the shared store if it holds exactly that one,
    else built from the database (and the store repaired for the other processes)."""
    truth = publish.environment_identity(environment)
    if truth is None:
        return None
    target = publish.store()
    try:
        cached = target.payload(environment, truth)
    except Exception:
        logger.warning("snapshot store unreachable; reading %s from the database", environment)
        cached = None
    if cached is not None:
        return cached
    try:  # build, store and announce (replacing a stale pointer)
        payload = publish.snapshot_store_current(environment)
    except Exception:
        logger.warning("could not repair the snapshot store for %s", environment, exc_info=True)
        payload = None
    if payload is not None and payload.identity == publish.environment_identity(environment):
        return payload
    with contextlib.suppress(Exception):  # another process stored it meanwhile
        cached = target.payload(environment, truth)
        if cached is not None and cached.identity == publish.environment_identity(environment):
            return cached
    document = publish.snapshot_build_consistent(environment)
    return publish.encode_snapshot(document) if document is not None else None


def environment_identities() -> dict[str, publish.Identity]:
    return publish.environment_identities()

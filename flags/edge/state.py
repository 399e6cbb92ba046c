"""What one edge process holds in memory: snapshots as ready bytes, tokens, stream subscribers.

Everything here is touched only from the event loop's thread. Database work is
sent to a small thread pool by ``run_db`` and its results are applied back on
the loop, so a request never waits for another request's database call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from flags import publish
from flags.engine import DEFAULT_BUCKET_BY, Engine
from flags.tokens import TokenPrincipal

logger = logging.getLogger("flags.edge")

T = TypeVar("T")
_db_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edge-db")


async def run_db(function: Callable[..., T], *args: Any) -> T:
    """Run a database-touching function in the edge's thread pool, closing its connection after."""

    def call() -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            connection.close()

    return await asyncio.get_running_loop().run_in_executor(_db_pool, call)


def _json(value: Any) -> bytes:
    return publish.json_bytes(value)


class EnvironmentSnapshot:
    """One environment version: response bytes ready to send, the engine compiled on first use."""

    __slots__ = (
        "_constant_answers",
        "_document",
        "_engine",
        "body",
        "client_visible",
        "etag",
        "etag_gzip",
        "installed_at",
        "key",
        "lineage",
        "payload",
        "revision",
        "version",
    )

    def __init__(self, payload: publish.SnapshotPayload) -> None:
        self.key = payload.environment
        self.version = payload.version
        self.body = payload.body
        self.payload = payload
        self.lineage, self.revision = payload.lineage, payload.revision
        self.installed_at = time.time()
        self.etag = payload.etag
        self.etag_gzip = payload.etag[:-1] + ':gzip"'
        self._document = payload.document
        self._engine: Engine | None = None
        self.client_visible: frozenset[str] = frozenset()
        self._constant_answers: dict[str, bytes] = {}

    @property
    def identity(self) -> publish.Identity:
        return (self.lineage, self.version, self.revision)

    @property
    def gzip_body(self) -> bytes:
        return self.payload.gzip_body

    def matches(self, if_none_match: str) -> bool:
        """Whether an If-None-Match header names this version (either encoding)."""
        if if_none_match.strip() == "*":
            return True
        for candidate in if_none_match.split(","):
            tag = candidate.strip().removeprefix("W/")
            if tag in (self.etag, self.etag_gzip):
                return True
        return False

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = publish.json_loads(self.body)
        return self._document

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            document = self.document
            self._engine = Engine.from_snapshot(document)
            self.client_visible = frozenset(
                key for key, flag in document["flags"].items() if flag.get("client_visible")
            )
        return self._engine

    def flag_metadata(self, key: str) -> dict[str, Any]:
        flag = self.document["flags"][key]
        metadata: dict[str, Any] = {
            "flagVersion": flag["version"],
            "environmentVersion": self.version,
        }
        kill = flag.get("kill")
        if kill:
            metadata.update(
                killed=True,
                killedBy=kill["by"],
                killedAt=kill["at"],
                killReason=kill["reason"],
                incident=kill.get("incident") or "",
            )
        return metadata

    def flag_needs_targeting_key(self, key: str) -> bool:
        """Whether the flag's default split buckets by targetingKey (so a missing one is an error)."""
        compiled = self.engine.flags[key]
        return compiled.default.fixed is None and compiled.default.bucket_by == DEFAULT_BUCKET_BY

    def constant_answer(self, key: str) -> bytes | None:
        """The OFREP answer bytes for a flag whose result ignores the context, built once."""
        cached = self._constant_answers.get(key)
        if cached is not None:
            return cached
        compiled = self.engine.flags[key]
        if compiled.constant is None:
            return None
        answer = _json(
            ofrep_success(key, compiled.type, compiled.constant, self.flag_metadata(key))
        )
        self._constant_answers[key] = answer
        return answer


OFREP_REASONS = {"PREREQUISITE_FAILED": "TARGETING_MATCH"}


def ofrep_value(flag_type: str, value: Any) -> Any:
    # Typed clients read number flags as floating point: always send a JSON float.
    if flag_type == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def ofrep_success(
    key: str, flag_type: str, result: Any, metadata: dict[str, Any]
) -> dict[str, Any]:
    reason = OFREP_REASONS.get(result.reason, result.reason)
    if reason != result.reason:
        metadata = {**metadata, "flagsvcReason": result.reason}
    return {
        "key": key,
        "value": ofrep_value(flag_type, result.value),
        "reason": reason,
        "variant": result.variant,
        "metadata": metadata,
    }


@dataclass(eq=False)
class Subscriber:
    """One open stream: its queue of ready-to-send event bytes."""

    kind: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=256))


def sse_event(event: str, version: int, data: dict[str, Any]) -> bytes:
    return f"id: {version}\nevent: {event}\ndata: ".encode() + _json(data) + b"\n\n"


@dataclass
class ChangeRecord:
    """A published change kept for Last-Event-ID catch-up."""

    version: int
    previous_version: int | None
    patch_event: bytes | None


class EdgeState:
    """Per-process caches of the SDK edge, refreshed by the fan-out within milliseconds."""

    def __init__(self) -> None:
        self.environments: dict[str, EnvironmentSnapshot] = {}
        self.tokens: dict[str, TokenPrincipal] = {}
        self.tokens_loaded = False
        self.refused: dict[str, tuple[float, str]] = {}  # digest -> (until, why): negative cache
        self.subscribers: dict[str, set[Subscriber]] = collections.defaultdict(set)
        self.history: dict[str, collections.deque[ChangeRecord]] = collections.defaultdict(
            lambda: collections.deque(maxlen=64)
        )
        self._loading: dict[str, asyncio.Future[EnvironmentSnapshot | None]] = {}
        self.used_digests: dict[str, float] = {}
        # False while this process's database calls fail: kills then go through Redis
        # at once (flags.edge.emergency) instead of waiting for the database first.
        self.database_ok = True
        self.on_version: Callable[[str, int], None] = lambda environment, version: None
        self.on_streams: Callable[[str, int], None] = lambda environment, count: None

    # -- tokens

    def set_tokens(self, tokens: dict[str, TokenPrincipal]) -> None:
        self.tokens = tokens
        self.tokens_loaded = True
        self.refused.clear()

    async def authenticate(self, raw: str) -> tuple[TokenPrincipal | None, str]:
        """The live principal for a raw token, or None and why (checked in memory first)."""
        if not raw or len(raw) > 200:
            return None, "no token: send Authorization: Bearer <key> (or X-API-Key for OFREP)"
        digest = hashlib.sha256(raw.encode()).hexdigest()
        principal = self.tokens.get(digest)
        if principal is not None:
            self.used_digests[digest] = time.time()
            return principal, ""
        refused = self.refused.get(digest)
        if refused is not None and refused[0] > time.monotonic():
            return None, refused[1]
        # Not in the map: a token created since the last refresh, or not a token at all.
        from flags.tokens import token_lookup

        principal, why = await run_db(token_lookup, raw)
        if principal is None:
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
        self.on_streams(environment, len(self.subscribers[environment]))

    def unsubscribe(self, environment: str, subscriber: Subscriber) -> None:
        self.subscribers[environment].discard(subscriber)
        self.on_streams(environment, len(self.subscribers[environment]))

    def announce(self, snapshot: EnvironmentSnapshot, delta: dict[str, Any] | None) -> None:
        """Tell every stream of the environment about a new version (events built once)."""
        environment, version = snapshot.key, snapshot.version
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
        self.history[environment].append(ChangeRecord(version, previous, patch_event))
        for subscriber in list(self.subscribers.get(environment, ())):
            event = patch_event if (patch_event and subscriber.kind != "client") else version_event
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A consumer this far behind is closed; it resyncs from scratch when it reconnects.
                self.unsubscribe(environment, subscriber)
                while not subscriber.queue.empty():
                    subscriber.queue.get_nowait()
                subscriber.queue.put_nowait(None)

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


def token_fingerprint() -> tuple[Any, ...]:
    from django.db.models import Count, Max

    from flags.models import ApiToken

    row = ApiToken.objects.aggregate(
        n=Count("id"), created=Max("created_at"), revoked=Max("revoked_at")
    )
    return (row["n"], row["created"], row["revoked"])

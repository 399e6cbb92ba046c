"""Snapshot stores: the current snapshot per environment and history, in this process or in Redis.

A store keeps, per (environment, lineage), a pointer to the current snapshot and its
bytes. It accepts a snapshot whose version is higher than the pointer's, or, when
the writer has found the pointer stale by comparing it with the database, a
snapshot that replaces exactly the stale pointer it saw (compare-and-set), so a
concurrent newer write is never overwritten. Storing also announces the change:
to in-process listeners, or on the Redis pub/sub ``CHANNEL``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

from flags.publish.payloads import Identity, SnapshotPayload, json_loads

logger = logging.getLogger(__name__)

CHANNEL = "flagsvc:changes"
SNAPSHOT_TTL_SECONDS = 7 * 24 * 3600


def _pointer_text(identity: Identity) -> str:
    return f"{identity[1]}:{identity[2]}"


class LocalStore:
    """The embedded store: this process's current payloads and its in-process listeners."""

    def __init__(self) -> None:
        self._payloads: dict[str, SnapshotPayload] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def current(self, environment: str, lineage: str) -> SnapshotPayload | None:
        payload = self._payloads.get(environment)
        return payload if payload is not None and payload.lineage == lineage else None

    def current_document(self, environment: str, lineage: str) -> dict[str, Any] | None:
        payload = self.current(environment, lineage)
        return payload.document if payload else None

    def payload(self, environment: str, identity: Identity) -> SnapshotPayload | None:
        payload = self._payloads.get(environment)
        return payload if payload is not None and payload.identity == identity else None

    def store_and_publish(
        self,
        payload: SnapshotPayload,
        message: dict[str, Any],
        *,
        replacing: Identity | None = None,
    ) -> bool:
        with self._lock:
            current = self.current(payload.environment, payload.lineage)
            if replacing is not None:
                if current is not None and current.identity != replacing:
                    return False
            elif current is not None and current.version >= payload.version:
                return False
            self._payloads[payload.environment] = payload
        self.publish(message)
        return True

    def publish(self, message: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception:  # a broken listener must not break the writer
                logger.exception("change listener failed")

    def clear(self) -> None:
        with self._lock:
            self._payloads.clear()


# KEYS: pointer, json, channel. ARGV: version, json, ttl, message, pointer text, the
# stale pointer text to replace ("" for a plain forward move).
_STORE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if ARGV[6] ~= '' then
  if current and current ~= ARGV[6] then return 0 end
else
  local version = 0
  if current then version = tonumber(string.match(current, '^(%d+)')) or 0 end
  if tonumber(ARGV[1]) <= version then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[4])
return 1
"""


def redis_pointer_key(environment: str, lineage: str) -> str:
    return f"flagsvc:snapshot:{environment}:{lineage}:current"


def redis_key(environment: str, identity: Identity) -> str:
    lineage, version, revision = identity
    return f"flagsvc:snapshot:{environment}:{lineage}:{version}-{revision}:json"


def parse_pointer(lineage: str, raw: bytes | str | None) -> Identity | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    version, _, revision = text.partition(":")
    try:
        return (lineage, int(version), revision)
    except ValueError:
        return None


class RedisStore:
    """The shared store: snapshot bytes in Redis, changes on its pub/sub channel."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=1.0, health_check_interval=30
        )
        self._script = self.client.register_script(_STORE_SCRIPT)

    def pointer(self, environment: str, lineage: str) -> Identity | None:
        return parse_pointer(lineage, self.client.get(redis_pointer_key(environment, lineage)))

    def payload(self, environment: str, identity: Identity) -> SnapshotPayload | None:
        body = self.client.get(redis_key(environment, identity))
        if not isinstance(body, bytes):
            return None
        lineage, version, revision = identity
        return SnapshotPayload(environment, version, body, lineage=lineage, revision=revision)

    def current(self, environment: str, lineage: str) -> SnapshotPayload | None:
        identity = self.pointer(environment, lineage)
        return self.payload(environment, identity) if identity else None

    def current_document(self, environment: str, lineage: str) -> dict[str, Any] | None:
        identity = self.pointer(environment, lineage)
        if identity is None:
            return None
        body = self.client.get(redis_key(environment, identity))
        return json_loads(body) if isinstance(body, bytes) else None

    def store_and_publish(
        self,
        payload: SnapshotPayload,
        message: dict[str, Any],
        *,
        replacing: Identity | None = None,
    ) -> bool:
        stored = self._script(
            keys=[
                redis_pointer_key(payload.environment, payload.lineage),
                redis_key(payload.environment, payload.identity),
                CHANNEL,
            ],
            args=[
                payload.version,
                payload.body,
                SNAPSHOT_TTL_SECONDS,
                json.dumps(message),
                _pointer_text(payload.identity),
                _pointer_text(replacing) if replacing else "",
            ],
        )
        return bool(stored)

    def publish(self, message: dict[str, Any]) -> None:
        self.client.publish(CHANNEL, json.dumps(message))


_local_store = LocalStore()
_redis_stores: dict[str, RedisStore] = {}


def store() -> LocalStore | RedisStore:
    """The configured store: Redis when REDIS_URL is set, else this process's LocalStore."""
    url = settings.REDIS_URL
    if not url:
        return _local_store
    if url not in _redis_stores:
        _redis_stores[url] = RedisStore(url)
    return _redis_stores[url]


def local_store() -> LocalStore:
    return _local_store

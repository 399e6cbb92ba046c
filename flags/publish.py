"""After-commit publication: snapshot bytes into the cache, change messages to every process.

The writer's process builds the new snapshot once (two queries), stores it as
ready bytes (plain and gzip) keyed by environment and version, and announces it.
With ``REDIS_URL`` the store is Redis and the announcement is a pub/sub message
on ``flagsvc:changes`` (stored and published in one atomic script, so the
current pointer never moves backwards). Without Redis the store lives in this
process and other processes find new versions by watching the database.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL = "flagsvc:changes"
SNAPSHOT_TTL_SECONDS = 7 * 24 * 3600
GZIP_LEVEL = 6


@dataclass(frozen=True)
class SnapshotPayload:
    """One environment version, ready to send: plain and gzip bytes."""

    environment: str
    version: int
    body: bytes
    gzip_body: bytes
    document: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def etag(self) -> str:
        return f'"{self.environment}:{self.version}"'


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson, about ten times faster than json on snapshots).

    Values orjson refuses (integers beyond 64 bits) fall back to the json module, so a
    document always encodes the same way wherever it is encoded.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # e.g. integers beyond 64 bits


def encode_snapshot(document: dict[str, Any]) -> SnapshotPayload:
    body = json_bytes(document)
    return SnapshotPayload(
        environment=document["environment"],
        version=document["version"],
        body=body,
        gzip_body=gzip.compress(body, GZIP_LEVEL, mtime=0),
        document=document,
    )


def snapshot_build_consistent(environment_key: str, attempts: int = 5) -> dict[str, Any] | None:
    """The environment's snapshot, read so that its version matches its flags.

    Every change bumps the version in its own transaction, so a document whose
    version reads the same before and after its rows were read is consistent.
    """
    from flags.models import Environment
    from flags.selectors import snapshot_build

    for _ in range(attempts):
        environment = Environment.objects.filter(key=environment_key).first()
        if environment is None:
            return None
        document = snapshot_build(environment)
        if _version_of(environment.pk) == environment.version:
            return document
    raise RuntimeError(f"environment {environment_key} kept changing while its snapshot was built")


def _version_of(environment_id: int) -> int | None:
    from flags.models import Environment

    return Environment.objects.filter(pk=environment_id).values_list("version", flat=True).first()


def snapshot_patch_consistent(
    environment_key: str,
    base: dict[str, Any],
    version: int,
    *,
    flags: Sequence[str],
    segments: Sequence[str],
) -> dict[str, Any] | None:
    """Version ``version`` built from ``base`` (version - 1) by re-reading only what changed.

    None when that is not possible (the environment has moved past ``version``, or
    ``base`` is not its predecessor): the caller then builds the whole document.
    """
    from flags.models import Environment
    from flags.selectors import snapshot_patched

    if base.get("version") != version - 1:
        return None
    environment = Environment.objects.filter(key=environment_key).first()
    if environment is None or environment.version != version:
        return None
    document = snapshot_patched(environment, base, flags=flags, segments=segments)
    return document if _version_of(environment.pk) == version else None


def snapshot_delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """What changed between two documents: changed or added items, and None for removed ones."""
    if old is None:
        return None
    delta: dict[str, Any] = {"previous_version": old["version"], "flags": {}, "segments": {}}
    for section in ("flags", "segments"):
        before, after = old.get(section, {}), new.get(section, {})
        for key, item in after.items():
            if before.get(key) != item:
                delta[section][key] = item
        for key in before.keys() - after.keys():
            delta[section][key] = None
    return delta


def change_message(payload: SnapshotPayload, delta: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "environment": payload.environment,
        "version": payload.version,
        "delta": delta,
    }


# --- stores ---------------------------------------------------------------------------------


class LocalStore:
    """The embedded store: this process's current payloads and its in-process listeners."""

    def __init__(self) -> None:
        self._payloads: dict[str, SnapshotPayload] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def current(self, environment: str) -> SnapshotPayload | None:
        return self._payloads.get(environment)

    def current_document(self, environment: str) -> dict[str, Any] | None:
        payload = self._payloads.get(environment)
        return payload.document if payload else None

    def store_and_publish(self, payload: SnapshotPayload, message: dict[str, Any]) -> bool:
        with self._lock:
            current = self._payloads.get(payload.environment)
            if current is not None and current.version >= payload.version:
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


_STORE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= current then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[4], ARGV[5])
return 1
"""


def redis_keys(environment: str, version: int | None = None) -> tuple[str, str, str]:
    base = f"flagsvc:snapshot:{environment}"
    return f"{base}:current", f"{base}:{version}:json", f"{base}:{version}:gzip"


class RedisStore:
    """The shared store: snapshot bytes in Redis, changes on its pub/sub channel."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=1.0, health_check_interval=30
        )
        self._script = self.client.register_script(_STORE_SCRIPT)

    def current(self, environment: str) -> SnapshotPayload | None:
        current_key, _, _ = redis_keys(environment)
        version = self.client.get(current_key)
        if version is None:
            return None
        _, json_key, gzip_key = redis_keys(environment, int(version))
        body, gzip_body = self.client.mget(json_key, gzip_key)
        if not isinstance(body, bytes) or not isinstance(gzip_body, bytes):
            return None
        return SnapshotPayload(environment, int(version), body, gzip_body)

    def current_document(self, environment: str) -> dict[str, Any] | None:
        current_key, _, _ = redis_keys(environment)
        version = self.client.get(current_key)
        if version is None:
            return None
        _, json_key, _ = redis_keys(environment, int(version))
        body = self.client.get(json_key)
        return json_loads(body) if isinstance(body, bytes) else None

    def store_and_publish(self, payload: SnapshotPayload, message: dict[str, Any]) -> bool:
        current_key, json_key, gzip_key = redis_keys(payload.environment, payload.version)
        stored = self._script(
            keys=[current_key, json_key, gzip_key, CHANNEL],
            args=[
                payload.version,
                payload.body,
                payload.gzip_body,
                SNAPSHOT_TTL_SECONDS,
                json.dumps(message),
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


# --- what the services call after commit -------------------------------------------------


def snapshot_publish(
    environment_key: str,
    *,
    version: int | None = None,
    flags: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
) -> SnapshotPayload | None:
    """Build, store and announce the environment's current snapshot; None if not newer.

    When the change that produced ``version`` names the flags and segments it
    touched, and the store holds the version just before it, only those are
    re-read (a kill costs the same with 10 flags or 10,000); otherwise the whole
    document is built.
    """
    target = store()
    previous = target.current_document(environment_key)
    if previous is not None and version is not None and previous["version"] >= version:
        return None  # this version, or a newer one, is already published
    document = None
    if previous is not None and version is not None and (flags is not None or segments is not None):
        document = snapshot_patch_consistent(
            environment_key, previous, version, flags=flags or (), segments=segments or ()
        )
    if document is None:
        document = snapshot_build_consistent(environment_key)
    if document is None:
        return None
    payload = encode_snapshot(document)
    if previous is not None and previous["version"] >= payload.version:
        return None
    stored = target.store_and_publish(
        payload, change_message(payload, snapshot_delta(previous, document))
    )
    return payload if stored else None


def environment_version_published(
    environment_id: int,
    environment_key: str,
    version: int,
    flags: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
) -> None:
    """Called once per changed environment after the change commits; never raises.

    ``flags``/``segments`` name what the change touched (None: unknown, rebuild all).
    The change is already durable. If the cache or Redis is down, SDK-facing
    processes still converge: they watch the database for newer versions.
    """
    try:
        snapshot_publish(environment_key, version=version, flags=flags, segments=segments)
    except Exception:
        logger.warning(
            "could not publish %s version %s; processes will pick it up from the database",
            environment_key,
            version,
            exc_info=True,
        )


def tokens_changed() -> None:
    """Tell every process to reload its token map (a token was created or revoked)."""
    try:
        store().publish({"type": "tokens"})
    except Exception:
        logger.warning(
            "could not announce a token change; processes will find it in the database",
            exc_info=True,
        )

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
from typing import Any

import orjson
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL = "flagsvc:changes"
SNAPSHOT_TTL_SECONDS = 7 * 24 * 3600
GZIP_LEVEL = 6


Identity = tuple[str, int, str]  # (lineage, version, revision): one snapshot of one history


class SnapshotPayload:
    """One environment version, ready to send: plain bytes, and gzip bytes made on first use.

    Compression is left out of the kill path: the writer stores and announces the
    plain bytes; each edge process compresses once, off its event loop, after it
    has told its streams.
    """

    __slots__ = ("_gzip_body", "body", "document", "environment", "lineage", "revision", "version")

    def __init__(
        self,
        environment: str,
        version: int,
        body: bytes,
        gzip_body: bytes | None = None,
        document: dict[str, Any] | None = None,
        *,
        lineage: str = "",
        revision: str = "",
    ) -> None:
        self.environment, self.version, self.body = environment, version, body
        self._gzip_body, self.document = gzip_body, document
        self.lineage, self.revision = lineage, revision

    @property
    def gzip_body(self) -> bytes:
        if self._gzip_body is None:
            self._gzip_body = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzip_body

    @property
    def identity(self) -> Identity:
        return (self.lineage, self.version, self.revision)

    @property
    def etag(self) -> str:
        # The revision makes the tag name this snapshot of this history: after a restore
        # from backup the same version number comes back with other content.
        return f'"{self.environment}:{self.version}-{self.revision}"'


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
    return SnapshotPayload(
        document["environment"],
        document["version"],
        json_bytes(document),
        document=document,
        lineage=document.get("lineage", ""),
        revision=document.get("revision", ""),
    )


def document_identity(document: dict[str, Any]) -> Identity:
    return (document.get("lineage", ""), document["version"], document.get("revision", ""))


def environment_identity(environment_key: str) -> Identity | None:
    """What the database says is the environment's current snapshot (the truth)."""
    from flags.models import Environment

    row = (
        Environment.objects.filter(key=environment_key)
        .values_list("lineage", "version", "revision")
        .first()
    )
    return (row[0], row[1], row[2]) if row else None


def environment_identities() -> dict[str, Identity]:
    from flags.models import Environment

    rows = Environment.objects.values_list("key", "lineage", "version", "revision")
    return {key: (lineage, version, revision) for key, lineage, version, revision in rows}


def snapshot_build_consistent(environment_key: str, attempts: int = 5) -> dict[str, Any] | None:
    """The environment's snapshot, read so that its version matches its flags.

    Every change bumps the version in its own transaction, so a document whose
    identity reads the same before and after its rows were read is consistent.
    """
    from flags.models import Environment
    from flags.selectors import snapshot_build

    for _ in range(attempts):
        environment = Environment.objects.filter(key=environment_key).first()
        if environment is None:
            return None
        document = snapshot_build(environment)
        if environment_identity(environment_key) == document_identity(document):
            return document
    raise RuntimeError(f"environment {environment_key} kept changing while its snapshot was built")


def snapshot_patch_consistent(
    environment_key: str,
    base: dict[str, Any],
    identity: Identity,
    *,
    flags: Sequence[str],
    segments: Sequence[str],
    environment_id: int | None = None,
) -> dict[str, Any] | None:
    """The snapshot ``identity`` built from ``base`` (its predecessor) by re-reading only what changed.

    None when that is not possible (the environment has moved past ``identity``):
    the caller then builds the whole document.
    """
    from flags.models import Environment
    from flags.selectors import snapshot_patched

    lineage, version, revision = identity
    if environment_id is not None:  # the writer knows the row: no need to read it again
        environment = Environment(
            pk=environment_id,
            key=environment_key,
            lineage=lineage,
            version=version,
            revision=revision,
        )
    else:
        found = Environment.objects.filter(key=environment_key).first()
        if found is None or (found.lineage, found.version, found.revision) != identity:
            return None
        environment = found
    document = snapshot_patched(environment, base, flags=flags, segments=segments)
    # Read after the rows: if the environment moved on meanwhile, they may be newer.
    return document if environment_identity(environment_key) == identity else None


def snapshot_with(
    base: dict[str, Any], identity: Identity, documents: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``base`` with the given flag documents, as version ``identity``: no database read.

    The same document, key for key and in the same order, as ``selectors.snapshot_patched``
    would read, when ``documents`` are the changed flags as the writer saved them.
    """
    lineage, version, revision = identity
    return {
        "schema_version": base["schema_version"],
        "environment": base["environment"],
        "version": version,
        "lineage": lineage,
        "revision": revision,
        "flags": dict(sorted({**base["flags"], **documents}.items())),
        "segments": base["segments"],
    }


def patch_delta(
    base: dict[str, Any], document: dict[str, Any], flags: Sequence[str], segments: Sequence[str]
) -> dict[str, Any]:
    """The delta of a patched build: exactly the items it re-read (None for removed ones)."""
    return {
        "previous_version": base["version"],
        "flags": {key: document["flags"].get(key) for key in flags},
        "segments": {key: document["segments"].get(key) for key in segments},
    }


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
        "lineage": payload.lineage,
        "version": payload.version,
        "revision": payload.revision,
        "delta": delta,
    }


# --- stores ---------------------------------------------------------------------------------
#
# A store keeps, per (environment, lineage), a pointer to the current snapshot and its
# bytes. It accepts a snapshot whose version is higher than the pointer's, or, when
# the writer has found the pointer stale by comparing it with the database, a
# snapshot that replaces exactly the stale pointer it saw (compare-and-set), so a
# concurrent newer write is never overwritten.


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


# --- what the services call after commit -------------------------------------------------


# The last document this process stored or read, per environment: a change's
# predecessor is usually here, so the kill path reads nothing back from Redis.
_documents: dict[str, dict[str, Any]] = {}


def _remember(document: dict[str, Any]) -> None:
    _documents[document["environment"]] = document


def _remembered(environment_key: str, identity: Identity) -> dict[str, Any] | None:
    document = _documents.get(environment_key)
    return document if document is not None and document_identity(document) == identity else None


def _publish_patch(
    target: LocalStore | RedisStore,
    environment_key: str,
    identity: Identity,
    base_revision: str,
    flags: Sequence[str],
    segments: Sequence[str],
    environment_id: int | None,
    documents: dict[str, dict[str, Any]] | None = None,
) -> SnapshotPayload | None:
    """The fast path of a change: its predecessor patched with the items it touched.

    None when the predecessor is not at hand or the store has moved on: the caller
    then takes the general path.
    """
    predecessor = (identity[0], identity[1] - 1, base_revision)
    base = _remembered(environment_key, predecessor)
    if base is None:
        base = target.current_document(environment_key, identity[0])
        if base is None or document_identity(base) != predecessor:
            return None
    if documents is not None and not segments and set(documents) == set(flags):
        document: dict[str, Any] | None = snapshot_with(base, identity, documents)
    else:
        document = snapshot_patch_consistent(
            environment_key,
            base,
            identity,
            flags=flags,
            segments=segments,
            environment_id=environment_id,
        )
    if document is None:
        return None
    payload = encode_snapshot(document)
    if not target.store_and_publish(
        payload, change_message(payload, patch_delta(base, document, flags, segments))
    ):
        return None
    _remember(document)
    return payload


def snapshot_store_current(
    environment_key: str,
    *,
    identity: Identity | None = None,
    base_revision: str | None = None,
    flags: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    environment_id: int | None = None,
    documents: dict[str, dict[str, Any]] | None = None,
) -> SnapshotPayload | None:
    """Make the store hold the database's current snapshot of the environment, and announce it.

    Returns the payload when this call stored it, None when the store already held
    it (or something newer). When ``identity`` (the version a change just
    committed) follows a document at hand (same lineage, version - 1,
    ``base_revision``) and the change names the flags and segments it touched,
    only those are re-read. Otherwise the store's pointer is read before the
    database, so a pointer that is not the database's current snapshot and not
    older than it belongs to another history (a restored or recreated database):
    it is replaced.
    """
    target = store()
    if (
        identity is not None
        and base_revision is not None
        and (flags is not None or segments is not None)
    ):
        payload = _publish_patch(
            target,
            environment_key,
            identity,
            base_revision,
            flags or (),
            segments or (),
            environment_id,
            documents,
        )
        if payload is not None:
            return payload
    lineage = identity[0] if identity else None
    if lineage is None:
        truth = environment_identity(environment_key)
        if truth is None:
            return None
        lineage = truth[0]
    previous = target.current_document(environment_key, lineage)
    seen = document_identity(previous) if previous is not None else None
    document = snapshot_build_consistent(environment_key)
    if document is None:
        return None
    payload = encode_snapshot(document)
    if seen == payload.identity:
        _remember(document)
        return None  # already there
    stale = seen is not None and seen[1] >= payload.version
    if stale:
        logger.warning(
            "the snapshot store holds %s v%s (%s), not the database's v%s (%s): replacing it",
            environment_key,
            seen[1] if seen else "?",
            seen[2] if seen else "?",
            payload.version,
            payload.revision,
        )
    # A delta only makes sense from a version before, in the same history.
    delta = snapshot_delta(previous, document) if previous is not None and not stale else None
    stored = target.store_and_publish(
        payload, change_message(payload, delta), replacing=seen if stale else None
    )
    if stored:
        _remember(document)
    return payload if stored else None


def snapshot_publish(environment_key: str) -> SnapshotPayload | None:
    """Build, store and announce the environment's current snapshot; None if already there."""
    return snapshot_store_current(environment_key)


def environment_version_published(
    environment_id: int,
    environment_key: str,
    version: int,
    flags: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    *,
    lineage: str | None = None,
    revision: str | None = None,
    base_revision: str | None = None,
    documents: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Called once per changed environment after the change commits; never raises.

    ``flags``/``segments`` name what the change touched (None: unknown, rebuild all).
    The change is already durable. If the cache or Redis is down, SDK-facing
    processes still converge: they watch the database for newer versions.
    """
    identity = (lineage, version, revision) if lineage and revision else None
    try:
        snapshot_store_current(
            environment_key,
            identity=identity,
            base_revision=base_revision,
            flags=flags,
            segments=segments,
            environment_id=environment_id,
            documents=documents,
        )
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

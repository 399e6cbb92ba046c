"""Publication of snapshots: payloads, consistent documents, stores, and the after-commit step.

``payloads`` holds one version as ready bytes; ``documents`` reads and compares
snapshot documents; ``stores`` keeps the current snapshot (in-process or Redis)
and announces changes; ``after_commit`` is what the services call once a change
is durable. Callers use the names below (``from flags import publish``).
"""

from flags.publish.after_commit import (
    environment_version_published,
    snapshot_publish,
    snapshot_store_current,
    tokens_changed,
)
from flags.publish.documents import (
    change_message,
    environment_identities,
    environment_identity,
    patch_delta,
    snapshot_build_consistent,
    snapshot_delta,
    snapshot_patch_consistent,
    snapshot_with,
)
from flags.publish.payloads import (
    Identity,
    SnapshotPayload,
    document_identity,
    encode_snapshot,
    json_bytes,
    json_loads,
)
from flags.publish.stores import (
    CHANNEL,
    SNAPSHOT_TTL_SECONDS,
    LocalStore,
    RedisStore,
    local_store,
    parse_pointer,
    redis_key,
    redis_pointer_key,
    store,
)

__all__ = [
    "CHANNEL",
    "SNAPSHOT_TTL_SECONDS",
    "Identity",
    "LocalStore",
    "RedisStore",
    "SnapshotPayload",
    "change_message",
    "document_identity",
    "encode_snapshot",
    "environment_identities",
    "environment_identity",
    "environment_version_published",
    "json_bytes",
    "json_loads",
    "local_store",
    "parse_pointer",
    "patch_delta",
    "redis_key",
    "redis_pointer_key",
    "snapshot_build_consistent",
    "snapshot_delta",
    "snapshot_patch_consistent",
    "snapshot_publish",
    "snapshot_store_current",
    "snapshot_with",
    "store",
    "tokens_changed",
]

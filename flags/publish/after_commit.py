"""After-commit publication: store the committed version's snapshot and announce it (never raises).

The writer's process builds the new snapshot once (two queries), stores it as
ready bytes keyed by environment and version, and announces it. With
``REDIS_URL`` the store is Redis and the announcement is a pub/sub message on
``flagsvc:changes`` (stored and published in one atomic script, so the current
pointer never moves backwards). Without Redis the store lives in this process
and other processes find new versions by watching the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flags.publish.documents import (
    change_message,
    environment_identity,
    patch_delta,
    snapshot_build_consistent,
    snapshot_delta,
    snapshot_patch_consistent,
    snapshot_with,
)
from flags.publish.payloads import Identity, SnapshotPayload, document_identity, encode_snapshot
from flags.publish.stores import LocalStore, RedisStore, store

logger = logging.getLogger(__name__)


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

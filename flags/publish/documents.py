"""Snapshot documents read consistently from the database, patched, and compared (deltas, change messages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flags.publish.payloads import Identity, SnapshotPayload, document_identity


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

"""Snapshots as the client holds them: checked whole, compiled once, never changed after.

A snapshot document (``GET /api/v1/sdk/snapshot/``, schema in
``sdk_clients/testdata/snapshot.schema.json``) or a stream ``patch`` is accepted only when
every flag and segment in it is well formed and compiles; otherwise :class:`SnapshotError`
is raised and the caller keeps the snapshot it had.

    >>> snapshot = Snapshot.from_document({"schema_version": 1, "environment": "production",
    ...     "version": 3, "flags": {}, "segments": {}})
    >>> snapshot.version, len(snapshot.engine.flags)
    (3, 0)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine import FLAG_KEY_PATTERN, FLAG_TYPES, Engine

SCHEMA_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot or patch that cannot be used; the message says what is wrong."""


def _check_flag(key: str, doc: Any) -> None:
    if not isinstance(doc, Mapping):
        raise SnapshotError(f"flag {key!r} is not an object")
    if doc.get("key") != key:
        raise SnapshotError(f"flag {key!r} carries the key {doc.get('key')!r}")
    if doc.get("type", "boolean") not in FLAG_TYPES:
        raise SnapshotError(f"flag {key!r} has an unknown type {doc.get('type')!r}")
    variants = doc.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise SnapshotError(f"flag {key!r} has no variants")
    if doc.get("off_variant") not in variants:
        raise SnapshotError(f"flag {key!r}: off_variant is not one of its variants")
    for field in ("targets", "rules", "prerequisites"):
        if not isinstance(doc.get(field) or [], list):
            raise SnapshotError(f"flag {key!r}: {field} is not a list")
    if not isinstance(doc.get("default_serve"), Mapping):
        raise SnapshotError(f"flag {key!r} has no default_serve")


def _check_items(kind: str, items: Any, *, allow_null: bool) -> None:
    if not isinstance(items, Mapping):
        raise SnapshotError(f"{kind} is not an object")
    for key, doc in items.items():
        if not isinstance(key, str) or not FLAG_KEY_PATTERN.match(key):
            raise SnapshotError(f"{kind}: {key!r} is not a valid key")
        if doc is None and allow_null:
            continue
        if kind == "flags":
            _check_flag(key, doc)
        elif not isinstance(doc, Mapping):
            raise SnapshotError(f"segment {key!r} is not an object")


def _compile(flags: Mapping[str, Any], segments: Mapping[str, Any]) -> Engine:
    try:
        return Engine(flags, segments)
    except Exception as exc:  # any defect in a definition refuses the whole document
        raise SnapshotError(f"a definition does not compile: {exc!r}") from exc


class Snapshot:
    """One environment version: its document, its compiled engine and the ETag it came with."""

    __slots__ = ("document", "engine", "environment", "etag", "version")

    def __init__(self, document: dict[str, Any], engine: Engine, etag: str | None) -> None:
        self.document = document
        self.engine = engine
        self.etag = etag
        self.environment: str = document["environment"]
        self.version: int = document["version"]

    @classmethod
    def from_document(cls, document: Any, etag: str | None = None) -> Snapshot:
        """Check and compile a whole snapshot document; raise SnapshotError if it is unusable."""
        if not isinstance(document, dict):
            raise SnapshotError("the snapshot is not a JSON object")
        if document.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise SnapshotError(f"unsupported schema_version {document.get('schema_version')!r}")
        version = document.get("version")
        if type(version) is not int or version < 0:
            raise SnapshotError(f"version {version!r} is not a non-negative integer")
        if not isinstance(document.get("environment"), str):
            raise SnapshotError("environment is missing")
        flags = document.get("flags")
        segments = document.get("segments") or {}
        _check_items("flags", flags, allow_null=False)
        _check_items("segments", segments, allow_null=False)
        return cls(document, _compile(flags, segments), etag)  # type: ignore[arg-type]

    @classmethod
    def from_bytes(cls, body: bytes | str, etag: str | None = None) -> Snapshot:
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise SnapshotError(f"the snapshot is not JSON: {exc}") from exc
        return cls.from_document(document, etag)

    def patched(self, patch: Mapping[str, Any]) -> Snapshot:
        """The snapshot a stream ``patch`` leads to (the caller checked previous_version)."""
        version = patch.get("version")
        if type(version) is not int or version <= self.version:
            raise SnapshotError(f"patch version {version!r} does not follow {self.version}")
        changed_flags = patch.get("flags") or {}
        changed_segments = patch.get("segments") or {}
        _check_items("flags", changed_flags, allow_null=True)
        _check_items("segments", changed_segments, allow_null=True)
        flags = _merged(self.document["flags"], changed_flags)
        segments = _merged(self.document.get("segments") or {}, changed_segments)
        document = {
            **self.document,
            "version": version,
            "flags": flags,
            "segments": segments,
        }
        document.pop("revision", None)  # a patch does not say which revision it leads to
        return Snapshot(document, _compile(flags, segments), None)

    def changed_keys(self, newer: Snapshot) -> frozenset[str]:
        """Flags whose definition differs between this snapshot and ``newer`` (either way).

        A segment change counts for every flag, since any rule may use it.
        """
        old, new = self.document["flags"], newer.document["flags"]
        if self.document.get("segments") != newer.document.get("segments"):
            return frozenset(old) | frozenset(new)
        return frozenset(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, doc in changes.items():
        if doc is None:
            merged.pop(key, None)
        else:
            merged[key] = doc
    return dict(sorted(merged.items()))

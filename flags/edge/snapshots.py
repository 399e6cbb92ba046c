"""One environment version as an edge process holds it: response bytes, ETags, the compiled engine."""

from __future__ import annotations

import time
from typing import Any

from flags import publish
from flags.edge.ofrep import ofrep_success
from flagsvc_sdk.engine import DEFAULT_BUCKET_BY, MAX_PREREQUISITE_DEPTH, SEGMENT_OPERATORS, Engine


class EnvironmentSnapshot:
    """One environment version: response bytes ready to send, the engine compiled on first use."""

    __slots__ = (
        "_constant_answers",
        "_document",
        "_engine",
        "_evaluation_work",
        "_integer_flags",
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
        self._integer_flags: frozenset[str] = frozenset()
        self._constant_answers: dict[tuple[str, str], bytes] = {}
        self._evaluation_work: dict[str, int] = {}

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
            self._integer_flags = frozenset(
                key
                for key, flag in document["flags"].items()
                if flag.get("type") == "number"
                and all(
                    isinstance(value, int) and not isinstance(value, bool)
                    for value in flag["variants"].values()
                )
            )
        return self._engine

    def value_type(self, key: str) -> str:
        """The flag's type as OFREP serves it: a number flag is "integer" when every variant is."""
        flag_type: str = self.engine.flags[key].type
        return "integer" if key in self._integer_flags else flag_type

    def flag_metadata(self, key: str, kind: str) -> dict[str, Any]:
        """Per-flag OFREP metadata for a key kind: only the flag's own version, so an edit
        to one flag changes no other flag's answer; who killed it and why for server keys
        only (client keys are public in browsers)."""
        flag = self.document["flags"][key]
        metadata: dict[str, Any] = {"flagVersion": flag["version"]}
        kill = flag.get("kill")
        if kill and kind == "client":
            metadata["killed"] = True
        elif kill:
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

    def constant_answer(self, key: str, kind: str) -> bytes | None:
        """The OFREP answer bytes for a flag whose result ignores the context, built once per
        audience (client keys see less metadata than server keys)."""
        audience = "client" if kind == "client" else "server"
        cached = self._constant_answers.get((key, audience))
        if cached is not None:
            return cached
        compiled = self.engine.flags[key]
        if compiled.constant is None:
            return None
        answer = publish.json_bytes(
            ofrep_success(
                key, self.value_type(key), compiled.constant, self.flag_metadata(key, audience)
            )
        )
        self._constant_answers[(key, audience)] = answer
        return answer

    def evaluation_work(self, key: str) -> int:
        """A bound on how much one evaluation of the flag does, in condition checks.

        A condition over a list operand counts each item (``contains`` compares each with
        each item of the attribute), a segment condition counts the segment's conditions,
        and prerequisites count their own work. Constant flags cost nothing. Multiplied by
        the context's size this bounds the evaluation's time; the edge keeps small products
        on the event loop and sends the rest to a thread.
        """
        return self._work_of(key, 0)

    def _work_of(self, key: str, depth: int) -> int:
        work = self._evaluation_work.get(key)  # a shared prerequisite is worked out once
        if work is None:
            work = self._evaluation_work[key] = self._own_work_of(key, depth)
        return work

    def _own_work_of(self, key: str, depth: int) -> int:
        compiled = self.engine.flags.get(key)
        if compiled is None or compiled.constant is not None or depth > MAX_PREREQUISITE_DEPTH:
            return 0
        flag = self.document["flags"][key]
        segments = self.document.get("segments") or {}
        work = 1
        for rule in flag.get("rules") or ():
            for condition in rule.get("conditions") or ():
                work += _condition_work(condition, segments)
        for prerequisite in flag.get("prerequisites") or ():
            work += self._work_of(prerequisite["flag"], depth + 1)
        return work


def _condition_work(condition: dict[str, Any], segments: dict[str, Any]) -> int:
    operator, operand = condition.get("operator"), condition.get("value")
    items = operand if isinstance(operand, list) else [operand]
    if operator in ("in", "not_in"):  # strings are one set lookup, other values are scanned
        return 1 + sum(1 for item in items if not isinstance(item, str))
    if operator not in SEGMENT_OPERATORS:
        return max(1, len(items))
    work = 1
    for segment_key in items:
        for rule in (segments.get(str(segment_key)) or {}).get("rules") or ():
            for inner in rule.get("conditions") or ():
                work += _condition_work(inner, {})
    return work

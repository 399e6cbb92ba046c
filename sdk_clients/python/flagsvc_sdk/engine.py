"""The flag evaluation engine (design §3): plain data in, result out.

No Django import, no I/O, no globals that change: the server, the SDK edge and
the Python SDK import this one module, and the Node and React SDKs are checked
against the same vectors (``sdk_clients/testdata/evaluation-cases.json``).

Input is the snapshot document's shape (``sdk_clients/testdata/snapshot.schema.json``):
a flag is a dict with ``key``, ``type``, ``variants``, ``off_variant``, ``enabled``,
``kill``, ``targets``, ``rules``, ``default_serve`` and ``prerequisites``; a
segment is a dict with ``included``, ``excluded`` and ``rules``.

    >>> engine = Engine({"beta": {"key": "beta", "type": "boolean",
    ...     "variants": {"on": True, "off": False}, "off_variant": "off",
    ...     "enabled": True, "default_serve": {"variant": "on"}}})
    >>> engine.evaluate("beta", {"targetingKey": "user-1"}).value
    True
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any

# The engine's public names include the contract's and the value readers' (callers import
# them from here); its own part is the operators, the compiled forms and Engine.
from flagsvc_sdk.contract import *  # noqa: F403
from flagsvc_sdk.contract import (
    DEFAULT_BUCKET_BY,
    MAX_PREREQUISITE_DEPTH,
    MAX_REGEX_INPUT,
    ErrorCode,
    Reason,
    Result,
)
from flagsvc_sdk.values import (  # noqa: F401
    PatternError,
    bucket_of,
    compile_pattern,
    is_number,
    murmur3_32,
    parse_datetime,
    parse_semver,
    pattern_program_size,
    same_value,
    unit_string,
)

_MISSING: Any = object()


# --- operators ------------------------------------------------------------------
# Each builder takes the (validated) operand and returns a predicate on the
# attribute value. The attribute is never _MISSING here: a missing attribute
# makes every attribute condition false before the predicate runs.

Predicate = Callable[[Any], bool]


def _as_list(operand: Any) -> list[Any]:
    return list(operand) if isinstance(operand, list) else [operand]


def _op_equals(operand: Any) -> Predicate:
    if type(operand) is str:  # the common case, without same_value's dispatch (same answer)
        return lambda attr: type(attr) is str and attr == operand
    return lambda attr: same_value(attr, operand)


def _op_not_equals(operand: Any) -> Predicate:
    return lambda attr: not same_value(attr, operand)


def _op_in(operand: Any) -> Predicate:
    strings = frozenset(v for v in operand if isinstance(v, str))
    others = [v for v in operand if not isinstance(v, str)]

    def test(attr: Any) -> bool:
        if isinstance(attr, str):
            return attr in strings
        return any(same_value(attr, v) for v in others)

    return test


def _op_not_in(operand: Any) -> Predicate:
    inside = _op_in(operand)
    return lambda attr: not inside(attr)


def _op_contains(operand: Any) -> Predicate:
    needles = _as_list(operand)

    def test(attr: Any) -> bool:
        if isinstance(attr, str):
            return any(isinstance(n, str) and n in attr for n in needles)
        if isinstance(attr, list):
            return any(same_value(item, n) for item in attr for n in needles)
        return False

    return test


def _op_starts_with(operand: Any) -> Predicate:
    prefixes = tuple(_as_list(operand))
    return lambda attr: isinstance(attr, str) and attr.startswith(prefixes)


def _op_ends_with(operand: Any) -> Predicate:
    suffixes = tuple(_as_list(operand))
    return lambda attr: isinstance(attr, str) and attr.endswith(suffixes)


def _op_matches(operand: Any) -> Predicate:
    try:
        occurs_in = compile_pattern(operand)
    except PatternError:
        # Saving refuses such a pattern; one saved before RE2 (say, a lookahead) never
        # matches rather than failing the whole environment's snapshot.
        return lambda attr: False
    return lambda attr: isinstance(attr, str) and len(attr) <= MAX_REGEX_INPUT and occurs_in(attr)


def _numeric(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Predicate]:
    def build(operand: Any) -> Predicate:
        return lambda attr: is_number(attr) and compare(attr, operand)

    return build


@functools.lru_cache(maxsize=4096)
def _parse_semver_remembered(text: str) -> tuple[Any, ...] | None:
    return parse_semver(text)


def _semver(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Predicate]:
    def build(operand: Any) -> Predicate:
        target = parse_semver(operand)

        def test(attr: Any) -> bool:
            # Parsed once per distinct string: a fleet reports a handful of app versions.
            version = _parse_semver_remembered(attr) if isinstance(attr, str) else None
            return version is not None and compare(version, target)

        return test

    return build


def _moment(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Predicate]:
    def build(operand: Any) -> Predicate:
        target = parse_datetime(operand)

        def test(attr: Any) -> bool:
            moment = parse_datetime(attr)
            return moment is not None and compare(moment, target)

        return test

    return build


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


ATTRIBUTE_OPERATORS: dict[str, Callable[[Any], Predicate]] = {
    "equals": _op_equals,
    "not_equals": _op_not_equals,
    "in": _op_in,
    "not_in": _op_not_in,
    "contains": _op_contains,
    "starts_with": _op_starts_with,
    "ends_with": _op_ends_with,
    "matches": _op_matches,
    "gt": _numeric(_gt),
    "gte": _numeric(_ge),
    "lt": _numeric(_lt),
    "lte": _numeric(_le),
    "semver_eq": _semver(_eq),
    "semver_gt": _semver(_gt),
    "semver_gte": _semver(_ge),
    "semver_lt": _semver(_lt),
    "semver_lte": _semver(_le),
    "before": _moment(_lt),
    "after": _moment(_gt),
}
SEGMENT_OPERATORS = ("in_segment", "not_in_segment")
OPERATORS = (*ATTRIBUTE_OPERATORS, *SEGMENT_OPERATORS)


def _lookup(context: Mapping[str, Any], attribute: str) -> Any:
    value = context.get(attribute, _MISSING)
    if value is _MISSING and "." in attribute:
        value = context
        for part in attribute.split("."):
            if not isinstance(value, Mapping):
                return _MISSING
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
    if value is None:
        return _MISSING
    return value


# --- compiled forms ---------------------------------------------------------------

Condition = Callable[[Mapping[str, Any]], bool]


class _Segment:
    __slots__ = ("excluded", "included", "rules")

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.included = frozenset(doc.get("included") or ())
        self.excluded = frozenset(doc.get("excluded") or ())
        self.rules = tuple(
            tuple(_compile_condition(c, {}) for c in rule.get("conditions") or ())
            for rule in doc.get("rules") or ()
        )

    def contains(self, context: Mapping[str, Any]) -> bool:
        key = context.get("targetingKey")
        if isinstance(key, str):
            if key in self.excluded:
                return False
            if key in self.included:
                return True
        return any(all(cond(context) for cond in rule) for rule in self.rules)


def _compile_condition(doc: Mapping[str, Any], segments: Mapping[str, _Segment]) -> Condition:
    operator = doc["operator"]
    if operator in SEGMENT_OPERATORS:
        members = [segments[k] for k in _as_list(doc["value"]) if k in segments]
        if operator == "in_segment":
            return lambda ctx: any(s.contains(ctx) for s in members)
        return lambda ctx: not any(s.contains(ctx) for s in members)
    predicate = ATTRIBUTE_OPERATORS[operator](doc["value"])
    attribute = doc["attribute"]
    if "." not in attribute:  # no nested lookup possible: what _lookup does, minus the call

        def plain_condition(ctx: Mapping[str, Any]) -> bool:
            value = ctx.get(attribute)
            return value is not None and predicate(value)

        return plain_condition

    def condition(ctx: Mapping[str, Any]) -> bool:
        value = _lookup(ctx, attribute)
        return value is not _MISSING and predicate(value)

    return condition


class _Serve:
    """A fixed variant or a weighted split, with its results built once."""

    __slots__ = ("bucket_by", "cumulative", "fixed", "flag_key", "results", "total")

    def __init__(
        self, flag_key: str, doc: Mapping[str, Any], variants: Mapping[str, Any], reason: str
    ) -> None:
        self.flag_key = flag_key
        self.fixed: Result | None = None
        self.bucket_by = DEFAULT_BUCKET_BY
        self.cumulative: list[int] = []
        self.results: list[Result] = []
        self.total = 0
        if "split" not in doc:
            name = doc["variant"]
            self.fixed = Result(variants[name], name, reason)
            return
        self.bucket_by = doc.get("bucket_by") or DEFAULT_BUCKET_BY
        running = 0
        for share in doc["split"]:
            if share["weight"] <= 0:
                continue
            running += share["weight"]
            self.cumulative.append(running)
            name = share["variant"]
            self.results.append(Result(variants[name], name, Reason.SPLIT))
        self.total = running

    def pick(self, context: Mapping[str, Any]) -> Result | None:
        """The served result, or None when a split has no unit to bucket."""
        if self.fixed is not None:
            return self.fixed
        raw = context.get(self.bucket_by)
        unit = raw if type(raw) is str else unit_string(_lookup(context, self.bucket_by))
        if not unit or not self.total:
            return None
        bucket = (murmur3_32(self.flag_key + unit) * self.total) >> 32
        return self.results[bisect_right(self.cumulative, bucket)]


class CompiledFlag:
    """One flag's definition, prepared once so that evaluation does no parsing."""

    __slots__ = (
        "constant",
        "default",
        "default_fallback",
        "key",
        "off",
        "prerequisite_failed",
        "prerequisites",
        "rules",
        "targets",
        "type",
    )

    def __init__(self, doc: Mapping[str, Any], segments: Mapping[str, _Segment]) -> None:
        self.key: str = doc["key"]
        self.type: str = doc.get("type", "boolean")
        variants: Mapping[str, Any] = doc["variants"]
        off_name = doc["off_variant"]
        off_value = variants[off_name]
        self.off = Result(off_value, off_name, Reason.DISABLED)
        self.prerequisite_failed = Result(off_value, off_name, Reason.PREREQUISITE_FAILED)
        self.default_fallback = Result(off_value, off_name, Reason.DEFAULT)
        self.prerequisites = tuple(
            (p["flag"], p["variant"]) for p in doc.get("prerequisites") or ()
        )
        self.targets: dict[str, Result] = {}
        for target in doc.get("targets") or ():
            hit = Result(variants[target["variant"]], target["variant"], Reason.TARGETING_MATCH)
            for value in target["values"]:
                self.targets.setdefault(value, hit)
        self.rules = tuple(
            (
                tuple(_compile_condition(c, segments) for c in rule.get("conditions") or ()),
                _Serve(self.key, rule["serve"], variants, Reason.TARGETING_MATCH),
            )
            for rule in doc.get("rules") or ()
        )
        # A fixed default after targets or rules that did not match is DEFAULT, as flagd says.
        default_reason = Reason.DEFAULT if self.targets or self.rules else Reason.STATIC
        self.default = _Serve(self.key, doc["default_serve"], variants, default_reason)
        # Kill and disable win over everything; a plain fixed default needs no context.
        self.constant: Result | None = None
        if doc.get("kill") or not doc.get("enabled", False):
            self.constant = self.off
        elif not (self.prerequisites or self.targets or self.rules) and self.default.fixed:
            self.constant = self.default.fixed

    def evaluate(
        self, context: Mapping[str, Any], flags: Mapping[str, CompiledFlag], depth: int = 0
    ) -> Result:
        if self.constant is not None:
            return self.constant
        for prerequisite_key, required_variant in self.prerequisites:
            prerequisite = flags.get(prerequisite_key)
            if prerequisite is None or depth >= MAX_PREREQUISITE_DEPTH:
                return self.prerequisite_failed
            if prerequisite.evaluate(context, flags, depth + 1).variant != required_variant:
                return self.prerequisite_failed
        if self.targets:
            key = context.get("targetingKey")
            if type(key) is str:
                hit = self.targets.get(key)
                if hit is not None:
                    return hit
        for conditions, serve in self.rules:
            for condition in conditions:
                if not condition(context):
                    break
            else:
                served = serve.pick(context)
                if served is not None:
                    return served
        served = self.default.pick(context)
        return served if served is not None else self.default_fallback


class Engine:
    """Evaluates the flags of one environment snapshot.

    >>> Engine({}).evaluate("missing", {}, default=False).error_code
    'FLAG_NOT_FOUND'
    """

    __slots__ = ("flags",)

    def __init__(
        self,
        flags: Mapping[str, Mapping[str, Any]],
        segments: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        compiled_segments = {key: _Segment(doc) for key, doc in (segments or {}).items()}
        self.flags: dict[str, CompiledFlag] = {
            key: CompiledFlag(doc, compiled_segments) for key, doc in flags.items()
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Engine:
        """An engine for a snapshot document (``{"flags": {...}, "segments": {...}}``)."""
        return cls(snapshot.get("flags") or {}, snapshot.get("segments") or {})

    def evaluate(self, flag_key: str, context: Mapping[str, Any], default: Any = None) -> Result:
        """Evaluate one flag for one context, following design §3 step by step."""
        flag = self.flags.get(flag_key)
        if flag is None:
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.FLAG_NOT_FOUND,
                f"flag '{flag_key}' does not exist in this environment",
            )
        return flag.evaluate(context, self.flags)


def evaluate(
    flag_key: str,
    context: Mapping[str, Any],
    flags: Mapping[str, Mapping[str, Any]],
    segments: Mapping[str, Mapping[str, Any]] | None = None,
    default: Any = None,
) -> Result:
    """One-off evaluation from plain definitions (compiles every call; prefer Engine)."""
    return Engine(flags, segments).evaluate(flag_key, context, default)

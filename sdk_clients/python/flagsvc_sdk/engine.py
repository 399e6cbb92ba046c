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
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import re2

try:  # the C extension when present; the pure version keeps the SDK dependency-free
    from mmh3 import hash as _mmh3_hash

    def murmur3_32(text: str) -> int:
        """MurmurHash3 x86 32-bit, seed 0, of ``text`` encoded as UTF-8, unsigned."""
        return _mmh3_hash(text, 0, False)

except ImportError:  # pragma: no cover - exercised by the SDK without mmh3

    def murmur3_32(text: str) -> int:
        """MurmurHash3 x86 32-bit, seed 0, of ``text`` encoded as UTF-8, unsigned."""
        return _murmur3_32_pure(text.encode("utf-8"))


def _murmur3_32_pure(data: bytes, seed: int = 0) -> int:
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    tail_start = len(data) & ~3
    for i in range(0, tail_start, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    tail = data[tail_start:]
    for shift, byte in enumerate(tail):
        k |= byte << (8 * shift)
    if tail:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


# --- contract constants -------------------------------------------------------

FLAG_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")
VARIANT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
SEGMENT_KEY_PATTERN = FLAG_KEY_PATTERN
FLAG_TYPES = ("boolean", "string", "number", "json")
SPLIT_TOTAL = 10_000  # a percentage rollout's weights are basis points: 0.01% steps
# Split weights are any non-negative integers with a positive total up to this bound:
# hash (< 2**32) x total stays below 2**53, exact in a JavaScript double.
MAX_SPLIT_TOTAL = 1_000_000
DEFAULT_BUCKET_BY = "targetingKey"

MAX_VARIANTS = 50
MAX_RULES = 200
MAX_CONDITIONS = 50
MAX_LIST_VALUES = 10_000
MAX_TARGET_VALUES = 10_000
MAX_REGEX_LENGTH = 256
MAX_REGEX_INPUT = 4_096
MAX_STRING_OPERAND = 1_024
MAX_PREREQUISITE_DEPTH = 16


class Reason:
    """OpenFeature resolution reasons (plus our documented PREREQUISITE_FAILED).

    A fixed default serve is STATIC when the flag has no targets and no rules,
    DEFAULT when it has some and none matched (as flagd reports it).
    """

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    DEFAULT = "DEFAULT"
    ERROR = "ERROR"
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"


class ErrorCode:
    """OpenFeature error codes."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    PARSE_ERROR = "PARSE_ERROR"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"


class Result(NamedTuple):
    """What one evaluation returns. Treat ``value`` as read-only: results are shared."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    error_message: str | None = None


_MISSING: Any = object()


# --- value helpers shared by the evaluator and the validator -------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans never equal numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def unit_string(value: Any) -> str | None:
    """The bucketing unit as a string, or None when it cannot be bucketed."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def bucket_of(flag_key: str, unit: str, total_weight: int = SPLIT_TOTAL) -> int:
    """The bucket (0 <= bucket < total_weight) that ``unit`` falls in for ``flag_key``."""
    return (murmur3_32(flag_key + unit) * total_weight) >> 32


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z"
)


def parse_semver(text: Any) -> tuple[Any, ...] | None:
    """A sortable key for a SemVer 2.0 string ("v" prefix and missing parts allowed)."""
    if not isinstance(text, str):
        return None
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    core = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        return (*core, 1, ())  # a release sorts after all its pre-releases
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?\Z"
)


def parse_datetime(text: Any) -> datetime | None:
    """An aware datetime from an ISO-8601 string; no zone means UTC."""
    if not isinstance(text, str):
        return None
    match = _ISO.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone and zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset >= timedelta(hours=24):
            return None
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return moment - offset


# --- regular expressions -------------------------------------------------------------
# `matches` runs on RE2 (no backtracking): time linear in the input, times the pattern's
# program size, which validation bounds; so no attribute can stall an evaluation
# (design §9). This is the one place that knows about RE2; validation vets patterns here.


class PatternError(ValueError):
    """RE2 cannot compile a pattern; the message is RE2's reason."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.never_capture = True  # a yes/no answer needs no groups, so RE2 keeps to its DFA
_RE2_OPTIONS.log_errors = False  # a refused pattern is the caller's answer, not a log line


def _pattern_error(exc: Exception) -> PatternError:
    reason = exc.args[0] if exc.args else ""
    return PatternError(
        reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    )


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A linear-time test of whether ``pattern`` (RE2 syntax) occurs anywhere in a text.

    Raises PatternError for what RE2 does not compile (backreferences, lookarounds, ...).

    >>> compile_pattern(r"^[a-z]+-[0-9]{3}$")("abc-123")
    True
    """
    try:
        search = re2.compile(pattern, _RE2_OPTIONS).search
    except re2.error as exc:
        raise _pattern_error(exc) from None
    # Searching UTF-8 bytes skips the wrapper's offset bookkeeping, and "surrogatepass"
    # lets a lone surrogate from JSON through instead of raising.
    return lambda text: search(text.encode("utf-8", "surrogatepass")) is not None


def pattern_program_size(pattern: str) -> int:
    """The number of instructions RE2 compiles ``pattern`` to: its cost per input byte.

    Raises PatternError like compile_pattern.
    """
    try:
        return int(re2.compile(pattern, _RE2_OPTIONS).programsize)
    except re2.error as exc:
        raise _pattern_error(exc) from None


# --- operators ------------------------------------------------------------------
# Each builder takes the (validated) operand and returns a predicate on the
# attribute value. The attribute is never _MISSING here: a missing attribute
# makes every attribute condition false before the predicate runs.

Predicate = Callable[[Any], bool]


def _as_list(operand: Any) -> list[Any]:
    return list(operand) if isinstance(operand, list) else [operand]


def _op_equals(operand: Any) -> Predicate:
    if type(operand) is str:  # the common case, without _same's dispatch (same answer)
        return lambda attr: type(attr) is str and attr == operand
    return lambda attr: _same(attr, operand)


def _op_not_equals(operand: Any) -> Predicate:
    return lambda attr: not _same(attr, operand)


def _op_in(operand: Any) -> Predicate:
    strings = frozenset(v for v in operand if isinstance(v, str))
    others = [v for v in operand if not isinstance(v, str)]

    def test(attr: Any) -> bool:
        if isinstance(attr, str):
            return attr in strings
        return any(_same(attr, v) for v in others)

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
            return any(_same(item, n) for item in attr for n in needles)
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
        return lambda attr: _is_number(attr) and compare(attr, operand)

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

"""Reading context values the way every flagsvc SDK does: numbers, semantic versions, times,
bucketing units and their MurmurHash3 bucket, and RE2 patterns (linear time)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import re2

from flagsvc_sdk.contract import SPLIT_TOTAL

try:  # the C extension when present; the pure version keeps the SDK dependency-free
    from mmh3 import hash as _mmh3_hash

    def murmur3_32(text: str) -> int:
        """MurmurHash3 x86 32-bit, seed 0, of ``text`` encoded as UTF-8, unsigned."""
        return _mmh3_hash(text, 0, False)

except ImportError:  # pragma: no cover - exercised by the SDK without mmh3

    def murmur3_32(text: str) -> int:
        """MurmurHash3 x86 32-bit, seed 0, of ``text`` encoded as UTF-8, unsigned."""
        return murmur3_32_pure(text.encode("utf-8"))


def murmur3_32_pure(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit of ``data`` in pure Python (the fallback without mmh3)."""
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


# --- value helpers shared by the evaluator and the validator -------------------


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: booleans never equal numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) and is_number(b):
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

"""The evaluation contract every flagsvc SDK shares: limits, OpenFeature reasons and error
codes, and the result of one evaluation (design §3)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

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

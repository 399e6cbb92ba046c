"""Save-time checks of flag and segment definitions, so evaluation never meets a bad one.

Pure like the engine: plain data in, a list of problems out. Each problem names the
field (``rules[0].conditions[1].value``) and says what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine import (
    ATTRIBUTE_OPERATORS,
    FLAG_TYPES,
    MAX_CONDITIONS,
    MAX_LIST_VALUES,
    MAX_REGEX_LENGTH,
    MAX_RULES,
    MAX_SPLIT_TOTAL,
    MAX_STRING_OPERAND,
    MAX_TARGET_VALUES,
    MAX_VARIANTS,
    OPERATORS,
    SEGMENT_OPERATORS,
    VARIANT_NAME_PATTERN,
    PatternError,
    is_number,
    parse_datetime,
    parse_semver,
    pattern_program_size,
)

MAX_JSON_VARIANT_BYTES = 32_768
# RE2 runs in time (input length x program size); at this size and a 4,096-character
# attribute the slowest pattern we found takes about 50 ms, where 24,000 took 150 ms.
MAX_REGEX_PROGRAM = 2_000


class DefinitionError(ValueError):
    """A definition failed validation; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def check_variants(flag_type: str, variants: Any, off_variant: Any) -> dict[str, str]:
    """Problems with a flag's type, variants and off variant."""
    errors: dict[str, str] = {}
    if flag_type not in FLAG_TYPES:
        errors["type"] = f"must be one of {', '.join(FLAG_TYPES)}; got {flag_type!r}"
        return errors
    if not isinstance(variants, Mapping) or not variants:
        errors["variants"] = "must be a non-empty object mapping variant names to values"
        return errors
    if len(variants) > MAX_VARIANTS:
        errors["variants"] = f"has {len(variants)} variants; the limit is {MAX_VARIANTS}"
        return errors
    if flag_type == "boolean" and (
        dict(variants) != {"on": True, "off": False}
        or any(type(v) is not bool for v in variants.values())
    ):
        errors["variants"] = 'a boolean flag has exactly {"on": true, "off": false}'
    for name, value in variants.items():
        field = f"variants.{name}"
        if not isinstance(name, str) or not VARIANT_NAME_PATTERN.match(name):
            errors[field] = (
                "variant names are 1-64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        elif flag_type == "string" and not isinstance(value, str):
            errors[field] = f"a string flag's variants are strings; got {_json_type(value)}"
        elif flag_type == "number" and not (is_number(value) and math.isfinite(value)):
            errors[field] = f"a number flag's variants are finite numbers; got {_json_type(value)}"
        elif flag_type == "json":
            try:
                encoded = json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                errors[field] = "must be JSON (objects, arrays, strings, finite numbers, ...)"
            else:
                if len(encoded) > MAX_JSON_VARIANT_BYTES:
                    errors[field] = f"is {len(encoded)} bytes of JSON; the limit is 32768"
    if off_variant not in variants:
        errors["off_variant"] = (
            f"must name one of the variants ({', '.join(map(str, variants))}); got {off_variant!r}"
        )
    return errors


def check_state(
    *,
    flag_key: str,
    variants: Mapping[str, Any],
    state: Mapping[str, Any],
    flags: Mapping[str, Mapping[str, Any]],
    segment_keys: set[str] | frozenset[str],
) -> dict[str, str]:
    """Problems with a flag's state in one environment.

    ``state`` has ``enabled``, ``targets``, ``rules``, ``default_serve`` and
    ``prerequisites``. ``flags`` maps every other live flag of the environment to
    ``{"variants": {...}, "prerequisites": [...]}`` (for prerequisite and cycle
    checks); ``segment_keys`` are the environment's segments.
    """
    errors: dict[str, str] = {}
    if not isinstance(state.get("enabled", False), bool):
        errors["enabled"] = "must be true or false"
    _check_targets(state.get("targets", []), variants, errors)
    rules = state.get("rules", [])
    if not isinstance(rules, list):
        errors["rules"] = "must be a list of rules"
    elif len(rules) > MAX_RULES:
        errors["rules"] = f"has {len(rules)} rules; the limit is {MAX_RULES}"
    else:
        seen_ids: set[str] = set()
        for index, rule in enumerate(rules):
            field = f"rules[{index}]"
            if not isinstance(rule, Mapping):
                errors[field] = 'must be an object with "conditions" and "serve"'
                continue
            unknown = set(rule) - {"id", "description", "conditions", "serve"}
            if unknown:
                errors[field] = (
                    f"unknown keys {sorted(unknown)}; allowed: id, description, conditions, serve"
                )
            rule_id = rule.get("id")
            if rule_id is not None:
                if not isinstance(rule_id, str) or not rule_id or len(rule_id) > 64:
                    errors[f"{field}.id"] = "must be a string of 1-64 characters"
                elif rule_id in seen_ids:
                    errors[f"{field}.id"] = f"duplicates the id of an earlier rule ({rule_id!r})"
                else:
                    seen_ids.add(rule_id)
            if not isinstance(rule.get("description", ""), str):
                errors[f"{field}.description"] = "must be a string"
            _check_conditions(
                rule.get("conditions"),
                f"{field}.conditions",
                segment_keys,
                errors,
                in_segment_ok=True,
            )
            _check_serve(rule.get("serve"), f"{field}.serve", variants, errors)
    _check_serve(state.get("default_serve"), "default_serve", variants, errors)
    _check_prerequisites(flag_key, state.get("prerequisites", []), flags, errors)
    return errors


def check_segment(segment: Mapping[str, Any]) -> dict[str, str]:
    """Problems with a segment's included/excluded keys and rules."""
    errors: dict[str, str] = {}
    for name in ("included", "excluded"):
        keys = segment.get(name, [])
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            errors[name] = "must be a list of non-empty targeting keys (strings)"
        elif len(keys) > MAX_TARGET_VALUES:
            errors[name] = f"has {len(keys)} keys; the limit is {MAX_TARGET_VALUES}"
    rules = segment.get("rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        errors["rules"] = f"must be a list of at most {MAX_RULES} rules"
        return errors
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            errors[f"rules[{index}]"] = 'must be an object with "conditions"'
            continue
        _check_conditions(
            rule.get("conditions"),
            f"rules[{index}].conditions",
            frozenset(),
            errors,
            in_segment_ok=False,
        )
    return errors


def raise_for(errors: dict[str, str]) -> None:
    if errors:
        raise DefinitionError(errors)


# --- parts ----------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _check_targets(targets: Any, variants: Mapping[str, Any], errors: dict[str, str]) -> None:
    if not isinstance(targets, list):
        errors["targets"] = 'must be a list of {"variant": ..., "values": [...]}'
        return
    owner: dict[str, int] = {}
    total = 0
    for index, target in enumerate(targets):
        field = f"targets[{index}]"
        if not isinstance(target, Mapping):
            errors[field] = 'must be an object {"variant": ..., "values": [...]}'
            continue
        if target.get("variant") not in variants:
            errors[f"{field}.variant"] = (
                f"must name one of the variants ({', '.join(variants)}); got {target.get('variant')!r}"
            )
        values = target.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            errors[f"{field}.values"] = "must be a list of non-empty targeting keys (strings)"
            continue
        total += len(values)
        for value in values:
            if value in owner and owner[value] != index:
                errors[f"{field}.values"] = (
                    f"{value!r} is already targeted by targets[{owner[value]}]; a key may be "
                    "targeted to one variant only"
                )
                break
            owner[value] = index
    if total > MAX_TARGET_VALUES:
        errors["targets"] = f"target {total} keys; the limit is {MAX_TARGET_VALUES}"


def _check_conditions(
    conditions: Any,
    field: str,
    segment_keys: set[str] | frozenset[str],
    errors: dict[str, str],
    *,
    in_segment_ok: bool,
) -> None:
    if conditions is None:
        conditions = []
    if not isinstance(conditions, list):
        errors[field] = 'must be a list of {"attribute", "operator", "value"}'
        return
    if len(conditions) > MAX_CONDITIONS:
        errors[field] = f"has {len(conditions)} conditions; the limit is {MAX_CONDITIONS}"
        return
    for index, condition in enumerate(conditions):
        here = f"{field}[{index}]"
        if not isinstance(condition, Mapping):
            errors[here] = 'must be an object {"attribute", "operator", "value"}'
            continue
        operator = condition.get("operator")
        if operator not in OPERATORS:
            errors[f"{here}.operator"] = (
                f"unknown operator {operator!r}; use one of {', '.join(OPERATORS)}"
            )
            continue
        value = condition.get("value")
        if operator in SEGMENT_OPERATORS:
            if not in_segment_ok:
                errors[f"{here}.operator"] = "segments cannot refer to other segments"
                continue
            keys = value if isinstance(value, list) else [value]
            if not keys or not all(isinstance(k, str) for k in keys):
                errors[f"{here}.value"] = "must be a segment key or a list of segment keys"
                continue
            unknown = [k for k in keys if k not in segment_keys]
            if unknown:
                errors[f"{here}.value"] = (
                    f"unknown segment {', '.join(map(repr, unknown))} in this environment"
                )
            continue
        attribute = condition.get("attribute")
        if not isinstance(attribute, str) or not attribute or len(attribute) > 256:
            errors[f"{here}.attribute"] = (
                "must be the name of a context attribute (1-256 characters)"
            )
        problem = _operand_problem(operator, value)
        if problem:
            errors[f"{here}.value"] = problem


def _operand_problem(operator: str, value: Any) -> str | None:
    assert operator in ATTRIBUTE_OPERATORS
    if operator in ("equals", "not_equals"):
        if isinstance(value, list | dict) or value is None:
            return (
                f"{operator} compares with one string, number or boolean; use in/not_in for a list"
            )
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if isinstance(value, str) and len(value) > MAX_STRING_OPERAND:
            return f"is longer than {MAX_STRING_OPERAND} characters"
        return None
    if operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"{operator} needs a non-empty list of values"
        if len(value) > MAX_LIST_VALUES:
            return f"has {len(value)} values; the limit is {MAX_LIST_VALUES}"
        if any(isinstance(v, list | dict) or v is None for v in value):
            return "list items must be strings, numbers or booleans"
        return None
    if operator in ("contains", "starts_with", "ends_with"):
        items = value if isinstance(value, list) else [value]
        if not items:
            return f"{operator} needs a string or a non-empty list of strings"
        allowed_types: tuple[type, ...] = (str, int, float) if operator == "contains" else (str,)
        if not all(isinstance(v, allowed_types) and not isinstance(v, bool) for v in items):
            return f"{operator} needs a string or a non-empty list of strings"
        if any(isinstance(v, str) and (not v or len(v) > MAX_STRING_OPERAND) for v in items):
            return f"strings must be 1-{MAX_STRING_OPERAND} characters"
        return None
    if operator == "matches":
        problem = regex_problem(value)
        return f"the pattern {problem}" if problem else None
    if operator in ("gt", "gte", "lt", "lte"):
        if not (is_number(value) and math.isfinite(value)):
            return f"{operator} compares numbers; give a finite number"
        return None
    if operator.startswith("semver_"):
        if parse_semver(value) is None:
            return f"{value!r} is not a semantic version like 1.4.0 or 2.0.0-beta.1"
        return None
    # before / after
    if parse_datetime(value) is None:
        return f"{value!r} is not an ISO-8601 date-time like 2026-03-01T09:00:00Z"
    return None


def regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` is not an acceptable ``matches`` operand, or None if it is.

    Accepted: 1-256 characters of RE2 syntax (what linear-time matching can run) of a
    bounded program size. The message says what to change.
    """
    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty string"
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"is {len(pattern)} characters long; the limit is {MAX_REGEX_LENGTH}"
    try:
        size = pattern_program_size(pattern)
    except PatternError as refusal:
        return _explain_re2_refusal(str(refusal))
    if size > MAX_REGEX_PROGRAM:
        return (
            f"is too costly to match: it compiles to {size} instructions, the limit is "
            f"{MAX_REGEX_PROGRAM}; use smaller counts in {{n,m}} repetitions"
        )
    return None


def _explain_re2_refusal(reason: str) -> str:
    """RE2's reason for refusing a pattern, turned into what to change."""
    lookaround = ("(?=", "(?!", "(?<=", "(?<!")
    if reason.startswith("invalid perl operator: ") and reason.endswith(lookaround):
        return (
            "uses a lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which linear-time matching "
            "cannot run; match the text itself, or add a separate condition for the context "
            f"(RE2: {reason})"
        )
    if (
        reason.startswith("invalid perl operator: (?P")
        or (reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit())
        or reason.endswith("\\k")
    ):
        return (
            "uses a backreference (\\1, (?P=name), \\k<name>), which linear-time matching "
            f"cannot run; spell the repeated part out instead (RE2: {reason})"
        )
    if reason.endswith("\\Z"):
        return f"uses \\Z; write $ (or \\z) for the end of the text (RE2: {reason})"
    if reason.startswith("invalid repetition size"):
        return (
            "repeats too often: a {n,m} count may not exceed 1000, nested counts multiplied "
            f"(RE2: {reason}); use + or * or smaller counts"
        )
    return f"is not a valid RE2 regular expression: {reason}"


def _check_serve(
    serve: Any, field: str, variants: Mapping[str, Any], errors: dict[str, str]
) -> None:
    if not isinstance(serve, Mapping) or ("variant" in serve) == ("split" in serve):
        errors[field] = (
            'must be {"variant": NAME} or {"split": [{"variant": NAME, "weight": N}, ...]}'
        )
        return
    if "variant" in serve:
        if serve["variant"] not in variants:
            errors[f"{field}.variant"] = (
                f"must name one of the variants ({', '.join(variants)}); got {serve['variant']!r}"
            )
        return
    split = serve["split"]
    bucket_by = serve.get("bucket_by", "targetingKey")
    if not isinstance(bucket_by, str) or not bucket_by or len(bucket_by) > 256:
        errors[f"{field}.bucket_by"] = "must be the name of a context attribute"
    if not isinstance(split, list) or not split:
        errors[f"{field}.split"] = 'must be a non-empty list of {"variant": NAME, "weight": N}'
        return
    total = 0
    seen: set[Any] = set()
    for index, share in enumerate(split):
        here = f"{field}.split[{index}]"
        if not isinstance(share, Mapping):
            errors[here] = 'must be {"variant": NAME, "weight": N}'
            return
        if share.get("variant") not in variants:
            errors[f"{here}.variant"] = (
                f"must name one of the variants ({', '.join(variants)}); got {share.get('variant')!r}"
            )
        elif share["variant"] in seen:
            errors[f"{here}.variant"] = f"{share['variant']!r} appears twice in this split"
        seen.add(share.get("variant"))
        weight = share.get("weight")
        if type(weight) is not int or not 0 <= weight <= MAX_SPLIT_TOTAL:
            errors[f"{here}.weight"] = (
                f"must be a whole number from 0 to {MAX_SPLIT_TOTAL}; got {weight!r} (weights "
                "are relative: [1, 1] is 50/50, [2500, 7500] is 25/75)"
            )
            return
        total += weight
    if total == 0:
        errors[f"{field}.split"] = "weights add up to 0; give at least one variant a weight above 0"
    elif total > MAX_SPLIT_TOTAL:
        errors[f"{field}.split"] = (
            f"weights add up to {total}; the limit is {MAX_SPLIT_TOTAL} (weights are relative: "
            "divide them by a common factor)"
        )


def _check_prerequisites(
    flag_key: str,
    prerequisites: Any,
    flags: Mapping[str, Mapping[str, Any]],
    errors: dict[str, str],
) -> None:
    if not isinstance(prerequisites, list):
        errors["prerequisites"] = 'must be a list of {"flag": KEY, "variant": NAME}'
        return
    seen: set[str] = set()
    for index, prerequisite in enumerate(prerequisites):
        here = f"prerequisites[{index}]"
        if not isinstance(prerequisite, Mapping):
            errors[here] = 'must be {"flag": KEY, "variant": NAME}'
            continue
        key = prerequisite.get("flag")
        if not isinstance(key, str):
            errors[f"{here}.flag"] = "must be a flag key"
            continue
        if key == flag_key:
            errors[f"{here}.flag"] = "a flag cannot be its own prerequisite"
            continue
        if key not in flags:
            errors[f"{here}.flag"] = f"unknown or archived flag {key!r}"
            continue
        if key in seen:
            errors[f"{here}.flag"] = f"{key!r} is listed twice"
        seen.add(key)
        if prerequisite.get("variant") not in flags[key]["variants"]:
            errors[f"{here}.variant"] = (
                f"flag {key!r} has no variant {prerequisite.get('variant')!r}; "
                f"it has {', '.join(flags[key]['variants'])}"
            )
        cycle = _cycle_through(flag_key, key, flags)
        if cycle:
            errors[f"{here}.flag"] = "creates a prerequisite cycle: " + " -> ".join(cycle)


def _cycle_through(start: str, first: str, flags: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The path start -> first -> ... -> start if the prerequisites loop back."""
    stack = [(first, [start, first])]
    visited: set[str] = set()
    while stack:
        key, path = stack.pop()
        if key == start:
            return path
        if key in visited:
            continue
        visited.add(key)
        for prerequisite in flags.get(key, {}).get("prerequisites") or ():
            next_key = prerequisite.get("flag") if isinstance(prerequisite, Mapping) else None
            if isinstance(next_key, str):
                stack.append((next_key, [*path, next_key]))
    return []

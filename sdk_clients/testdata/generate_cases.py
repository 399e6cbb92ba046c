"""Writes evaluation-cases.json: the vectors every evaluator (server, Python, Node, React) runs.

Expected results are written by hand from design §3, except where a hash decides:
those are computed here from MurmurHash3 directly (the `mmh3` package), never by
the engine under test. Run: `python sdk_clients/testdata/generate_cases.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mmh3

HERE = Path(__file__).resolve().parent
TOTAL = 10_000  # a percentage rollout's total (basis points); splits may use any total
BUCKET_TOTALS = (1, 2, 3, 7, 100, 10_000, 1_000_000)


def h32(flag_key: str, unit: str) -> int:
    return mmh3.hash((flag_key + unit).encode("utf-8"), 0, signed=False)


def bucket(flag_key: str, unit: str, total: int = TOTAL) -> int:
    return (h32(flag_key, unit) * total) >> 32


def pick(flag_key: str, unit: str, split: list[tuple[str, int]]) -> str:
    total = sum(w for _, w in split)
    b = bucket(flag_key, unit, total)
    running = 0
    for variant, weight in split:
        running += weight
        if b < running:
            return variant
    raise AssertionError("unreachable")


BOOL = {"on": True, "off": False}


def boolean_flag(key: str, **state: Any) -> dict[str, Any]:
    return {
        "key": key,
        "type": "boolean",
        "variants": BOOL,
        "off_variant": "off",
        "enabled": True,
        "kill": None,
        "targets": [],
        "rules": [],
        "default_serve": {"variant": "off"},
        "prerequisites": [],
        **state,
    }


def rule_flag(key: str, attribute: str | None, operator: str, value: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {"operator": operator, "value": value}
    if attribute is not None:
        condition["attribute"] = attribute
    return boolean_flag(
        key, rules=[{"id": "r1", "conditions": [condition], "serve": {"variant": "on"}}]
    )


def expect(value: Any, variant: str | None, reason: str, error_code: str | None = None) -> dict:
    return {"value": value, "variant": variant, "reason": reason, "error_code": error_code}


ON_MATCH = expect(True, "on", "TARGETING_MATCH")
# A fixed default after rules or targets that did not match is DEFAULT (as flagd);
# STATIC only when the flag has neither.
OFF_DEFAULT = expect(False, "off", "DEFAULT")
OFF_DISABLED = expect(False, "off", "DISABLED")
OFF_PREREQ = expect(False, "off", "PREREQUISITE_FAILED")


def case(
    name: str, flag: str, context: dict[str, Any], expected: dict, default: Any = None
) -> dict:
    entry: dict[str, Any] = {"name": name, "flag": flag, "context": context, "expected": expected}
    if default is not None:
        entry["default"] = default
    return entry


# --- suite: operators -------------------------------------------------------------------

OPERATOR_TABLE: list[tuple[str, str | None, Any, list[tuple[str, dict[str, Any], bool]]]] = [
    (
        "equals",
        "country",
        "DE",
        [
            ("same string", {"country": "DE"}, True),
            ("other string", {"country": "FR"}, False),
            ("case matters", {"country": "de"}, False),
            ("missing attribute", {}, False),
            ("null attribute counts as missing", {"country": None}, False),
        ],
    ),
    (
        "equals",
        "seats",
        5,
        [
            ("integer equals float", {"seats": 5.0}, True),
            ("numeric string is not a number", {"seats": "5"}, False),
        ],
    ),
    (
        "equals",
        "beta",
        True,
        [
            ("boolean true", {"beta": True}, True),
            ("1 is not true", {"beta": 1}, False),
        ],
    ),
    (
        "not_equals",
        "country",
        "DE",
        [
            ("other value", {"country": "FR"}, True),
            ("same value", {"country": "DE"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "in",
        "country",
        ["DE", "AT", "CH"],
        [
            ("listed", {"country": "AT"}, True),
            ("not listed", {"country": "US"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "in",
        "plan_id",
        [1, 2, 3],
        [
            ("number listed", {"plan_id": 2.0}, True),
            ("string of a listed number", {"plan_id": "2"}, False),
        ],
    ),
    (
        "not_in",
        "country",
        ["DE", "AT"],
        [
            ("not listed", {"country": "US"}, True),
            ("listed", {"country": "DE"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "contains",
        "email",
        "@acme",
        [
            ("substring present", {"email": "bob@acme.com"}, True),
            ("substring absent", {"email": "bob@other.com"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "contains",
        "groups",
        ["beta", "staff"],
        [
            ("list attribute holds one of them", {"groups": ["users", "beta"]}, True),
            ("list attribute holds none", {"groups": ["users"]}, False),
        ],
    ),
    (
        "starts_with",
        "username",
        ["admin-", "ops-"],
        [
            ("second prefix", {"username": "ops-jane"}, True),
            ("no prefix", {"username": "jane"}, False),
            ("number is not a string", {"username": 123}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "ends_with",
        "email",
        "@acme.com",
        [
            ("suffix", {"email": "a@acme.com"}, True),
            ("suffix elsewhere", {"email": "a@acme.com.evil"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "matches",
        "order_ref",
        "^[a-z]+-\\d{3}$",
        [
            ("pattern matches", {"order_ref": "abc-123"}, True),
            ("pattern does not match", {"order_ref": "abc-12"}, False),
            ("number is not a string", {"order_ref": 123}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "matches",
        "path",
        "admin",
        [
            ("unanchored pattern searches", {"path": "/v1/admin/users"}, True),
        ],
    ),
    (
        "gt",
        "age",
        18,
        [
            ("greater", {"age": 21}, True),
            ("equal", {"age": 18}, False),
            ("numeric string is not a number", {"age": "21"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "gte",
        "age",
        18,
        [
            ("equal", {"age": 18}, True),
            ("just below", {"age": 17.9}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "lt",
        "latency_ms",
        10,
        [
            ("below", {"latency_ms": 9.5}, True),
            ("equal", {"latency_ms": 10}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "lte",
        "latency_ms",
        10,
        [
            ("equal", {"latency_ms": 10}, True),
            ("above", {"latency_ms": 11}, False),
            ("boolean is not a number", {"latency_ms": True}, False),
        ],
    ),
    (
        "semver_eq",
        "app_version",
        "2.1.0",
        [
            ("same version", {"app_version": "2.1.0"}, True),
            ("v prefix and missing patch", {"app_version": "v2.1"}, True),
            ("other patch", {"app_version": "2.1.1"}, False),
            ("not a version", {"app_version": "latest"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "semver_gt",
        "app_version",
        "2.0.0",
        [
            ("patch above", {"app_version": "2.0.1"}, True),
            ("numeric not lexical", {"app_version": "10.0.0"}, True),
            ("equal", {"app_version": "2.0.0"}, False),
            ("pre-release sorts below the release", {"app_version": "2.0.0-rc.1"}, False),
        ],
    ),
    (
        "semver_gte",
        "app_version",
        "1.2.3-beta.2",
        [
            (
                "numeric pre-release identifiers compare as numbers",
                {"app_version": "1.2.3-beta.11"},
                True,
            ),
            ("alpha sorts below beta", {"app_version": "1.2.3-alpha"}, False),
            ("release is above its pre-releases", {"app_version": "1.2.3"}, True),
            ("equal", {"app_version": "1.2.3-beta.2"}, True),
        ],
    ),
    (
        "semver_lt",
        "app_version",
        "1.0.0",
        [
            ("pre-release is below", {"app_version": "1.0.0-rc.1"}, True),
            ("older", {"app_version": "0.9.9"}, True),
            ("equal", {"app_version": "1.0.0"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "semver_lte",
        "app_version",
        "1.0.0",
        [
            ("build metadata is ignored", {"app_version": "1.0.0+build.5"}, True),
            ("newer", {"app_version": "1.0.1"}, False),
        ],
    ),
    (
        "before",
        "signup_at",
        "2026-01-01T00:00:00Z",
        [
            ("one second before", {"signup_at": "2025-12-31T23:59:59Z"}, True),
            (
                "offset converts to the earlier instant",
                {"signup_at": "2026-01-01T01:00:00+02:00"},
                True,
            ),
            ("same instant", {"signup_at": "2026-01-01T00:00:00Z"}, False),
            ("not a date", {"signup_at": "yesterday"}, False),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "after",
        "signup_at",
        "2026-01-01T00:00:00Z",
        [
            ("one millisecond after", {"signup_at": "2026-01-01T00:00:00.001Z"}, True),
            ("date-only means midnight UTC", {"signup_at": "2026-01-01"}, False),
            (
                "negative offset converts to the later instant",
                {"signup_at": "2025-12-31T23:00:00-02:00"},
                True,
            ),
            ("missing attribute", {}, False),
        ],
    ),
    (
        "equals",
        "device.os",
        "ios",
        [
            ("dotted attribute reads a nested object", {"device": {"os": "ios"}}, True),
            ("nested value differs", {"device": {"os": "android"}}, False),
        ],
    ),
    (
        "matches",
        "ref",
        "^[a-z]+-\\d{3}$",
        [
            # RE2 and JavaScript semantics (Python's re would say true to both).
            ("$ is the end of the text, not before a final newline", {"ref": "abc-123\n"}, False),
            ("\\d is an ASCII digit", {"ref": "abc-\u0661\u0662\u0663"}, False),
        ],
    ),
    (
        "matches",
        "word",
        "(a|a)+$",
        [
            # Seconds under a backtracking engine: every evaluator must match in linear time.
            ("linear time on a catastrophic-backtracking shape", {"word": "a" * 30 + "!"}, False),
            ("the same pattern matching", {"word": "!" + "a" * 30}, True),
        ],
    ),
]

SEGMENTS = {
    "beta-testers": {
        "key": "beta-testers",
        "included": ["u-in"],
        "excluded": ["u-out"],
        "rules": [
            {"conditions": [{"attribute": "email", "operator": "ends_with", "value": "@acme.com"}]}
        ],
    }
}


def operators_suite() -> dict[str, Any]:
    flags: dict[str, dict[str, Any]] = {}
    cases = []
    for index, (operator, attribute, value, rows) in enumerate(OPERATOR_TABLE):
        key = f"op-{index:02d}-{operator.replace('_', '-')}"
        flags[key] = rule_flag(key, attribute, operator, value)
        for label, context, matches in rows:
            cases.append(
                case(
                    f"{operator} {json.dumps(value, ensure_ascii=False)}: {label}",
                    key,
                    {"targetingKey": "user-1", **context},
                    ON_MATCH if matches else OFF_DEFAULT,
                )
            )
    flags["op-in-segment"] = rule_flag("op-in-segment", None, "in_segment", "beta-testers")
    flags["op-not-in-segment"] = rule_flag(
        "op-not-in-segment", None, "not_in_segment", ["beta-testers"]
    )
    cases += [
        case(
            "in_segment: key listed as included",
            "op-in-segment",
            {"targetingKey": "u-in"},
            ON_MATCH,
        ),
        case(
            "in_segment: excluded key wins over a matching rule",
            "op-in-segment",
            {"targetingKey": "u-out", "email": "x@acme.com"},
            OFF_DEFAULT,
        ),
        case(
            "in_segment: segment rule matches",
            "op-in-segment",
            {"targetingKey": "u-x", "email": "x@acme.com"},
            ON_MATCH,
        ),
        case(
            "in_segment: no key, no rule match",
            "op-in-segment",
            {"targetingKey": "u-x"},
            OFF_DEFAULT,
        ),
        case("not_in_segment: outside", "op-not-in-segment", {"targetingKey": "u-x"}, ON_MATCH),
        case("not_in_segment: inside", "op-not-in-segment", {"targetingKey": "u-in"}, OFF_DEFAULT),
    ]
    flags["all-conditions"] = boolean_flag(
        "all-conditions",
        rules=[
            {
                "id": "de-adults",
                "conditions": [
                    {"attribute": "country", "operator": "equals", "value": "DE"},
                    {"attribute": "age", "operator": "gte", "value": 18},
                ],
                "serve": {"variant": "on"},
            }
        ],
    )
    cases += [
        case(
            "every condition of a rule must hold",
            "all-conditions",
            {"targetingKey": "a", "country": "DE", "age": 30},
            ON_MATCH,
        ),
        case(
            "one failing condition fails the rule",
            "all-conditions",
            {"targetingKey": "a", "country": "DE", "age": 12},
            OFF_DEFAULT,
        ),
    ]
    return {
        "name": "operators",
        "description": "Each operator against a matching value, a non-matching value and a missing "
        "attribute (a missing or null attribute makes a condition false, never an error).",
        "flags": flags,
        "segments": SEGMENTS,
        "cases": cases,
    }


# --- suite: evaluation order --------------------------------------------------------------


def order_suite() -> dict[str, Any]:
    kill = {
        "by": "alice",
        "at": "2026-11-01T03:00:00Z",
        "reason": "errors spiking",
        "incident": None,
    }
    flags = {
        "payments-api": boolean_flag("payments-api", default_serve={"variant": "on"}),
        "payments-api-de": boolean_flag(
            "payments-api-de",
            rules=[
                {
                    "id": "de",
                    "conditions": [{"attribute": "country", "operator": "equals", "value": "DE"}],
                    "serve": {"variant": "on"},
                }
            ],
        ),
        "payments-api-off": boolean_flag(
            "payments-api-off", enabled=False, default_serve={"variant": "on"}
        ),
        "payments-api-killed": boolean_flag(
            "payments-api-killed", kill=kill, default_serve={"variant": "on"}
        ),
        "checkout-v2": boolean_flag(
            "checkout-v2",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api", "variant": "on"}],
        ),
        "checkout-v2-de": boolean_flag(
            "checkout-v2-de",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api-de", "variant": "on"}],
        ),
        "checkout-needs-disabled": boolean_flag(
            "checkout-needs-disabled",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api-off", "variant": "on"}],
        ),
        "checkout-needs-killed": boolean_flag(
            "checkout-needs-killed",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api-killed", "variant": "on"}],
        ),
        "checkout-needs-off-variant": boolean_flag(
            "checkout-needs-off-variant",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api-killed", "variant": "off"}],
        ),
        "checkout-needs-missing": boolean_flag(
            "checkout-needs-missing",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "archived-flag", "variant": "on"}],
        ),
        "checkout-chain": boolean_flag(
            "checkout-chain",
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "checkout-v2-de", "variant": "on"}],
        ),
        "guarded": boolean_flag(
            "guarded",
            kill=kill,
            targets=[{"variant": "on", "values": ["vip"]}],
            rules=[{"id": "all", "conditions": [], "serve": {"variant": "on"}}],
            default_serve={"variant": "on"},
        ),
        "guarded-prereq": boolean_flag(
            "guarded-prereq",
            kill=kill,
            default_serve={"variant": "on"},
            prerequisites=[{"flag": "payments-api-off", "variant": "on"}],
        ),
        "targets-only": boolean_flag(
            "targets-only",
            targets=[{"variant": "on", "values": ["vip"]}],
            default_serve={"variant": "off"},
        ),
        "disabled-with-targets": boolean_flag(
            "disabled-with-targets",
            enabled=False,
            targets=[{"variant": "on", "values": ["vip"]}],
            default_serve={"variant": "on"},
        ),
        "targeted": boolean_flag(
            "targeted",
            targets=[
                {"variant": "on", "values": ["vip", "zoë"]},
                {"variant": "off", "values": ["blocked"]},
            ],
            rules=[{"id": "everyone", "conditions": [], "serve": {"variant": "off"}}],
            default_serve={"variant": "on"},
        ),
        "ordered-rules": {
            "key": "ordered-rules",
            "type": "string",
            "variants": {"first": "first", "second": "second", "fallback": "fallback"},
            "off_variant": "fallback",
            "enabled": True,
            "kill": None,
            "targets": [],
            "rules": [
                {
                    "id": "a",
                    "conditions": [{"attribute": "tier", "operator": "equals", "value": "gold"}],
                    "serve": {"variant": "first"},
                },
                {
                    "id": "b",
                    "conditions": [
                        {"attribute": "tier", "operator": "in", "value": ["gold", "silver"]}
                    ],
                    "serve": {"variant": "second"},
                },
            ],
            "default_serve": {"variant": "fallback"},
            "prerequisites": [],
        },
    }
    c = case
    cases = [
        c(
            "unknown flag returns the caller's default",
            "no-such-flag",
            {"targetingKey": "u"},
            expect("fallback", None, "ERROR", "FLAG_NOT_FOUND"),
            default="fallback",
        ),
        c("kill beats an individual target", "guarded", {"targetingKey": "vip"}, OFF_DISABLED),
        c("kill beats a catch-all rule", "guarded", {"targetingKey": "someone"}, OFF_DISABLED),
        c(
            "kill beats a failing prerequisite",
            "guarded-prereq",
            {"targetingKey": "u"},
            OFF_DISABLED,
        ),
        c(
            "disabled beats an individual target",
            "disabled-with-targets",
            {"targetingKey": "vip"},
            OFF_DISABLED,
        ),
        c("prerequisite met", "checkout-v2", {"targetingKey": "u"}, expect(True, "on", "STATIC")),
        c(
            "prerequisite met through its rule",
            "checkout-v2-de",
            {"targetingKey": "u", "country": "DE"},
            expect(True, "on", "STATIC"),
        ),
        c(
            "prerequisite failed through its rule",
            "checkout-v2-de",
            {"targetingKey": "u", "country": "FR"},
            OFF_PREREQ,
        ),
        c("prerequisite disabled", "checkout-needs-disabled", {"targetingKey": "u"}, OFF_PREREQ),
        c("prerequisite killed", "checkout-needs-killed", {"targetingKey": "u"}, OFF_PREREQ),
        c(
            "prerequisite requiring the off variant of a killed flag holds",
            "checkout-needs-off-variant",
            {"targetingKey": "u"},
            expect(True, "on", "STATIC"),
        ),
        c(
            "prerequisite on a missing flag fails",
            "checkout-needs-missing",
            {"targetingKey": "u"},
            OFF_PREREQ,
        ),
        c(
            "prerequisites chain: met",
            "checkout-chain",
            {"targetingKey": "u", "country": "DE"},
            expect(True, "on", "STATIC"),
        ),
        c(
            "prerequisites chain: failed two levels down",
            "checkout-chain",
            {"targetingKey": "u", "country": "US"},
            OFF_PREREQ,
        ),
        c("target beats rules", "targeted", {"targetingKey": "vip"}, ON_MATCH),
        c("target with a non-ASCII key", "targeted", {"targetingKey": "zoë"}, ON_MATCH),
        c(
            "target can serve the off variant",
            "targeted",
            {"targetingKey": "blocked"},
            expect(False, "off", "TARGETING_MATCH"),
        ),
        c(
            "untargeted key falls to rules",
            "targeted",
            {"targetingKey": "someone"},
            expect(False, "off", "TARGETING_MATCH"),
        ),
        c(
            "targets compare exact strings",
            "targeted",
            {"targetingKey": "VIP"},
            expect(False, "off", "TARGETING_MATCH"),
        ),
        c(
            "first matching rule wins",
            "ordered-rules",
            {"targetingKey": "u", "tier": "gold"},
            expect("first", "first", "TARGETING_MATCH"),
        ),
        c(
            "second rule when the first does not match",
            "ordered-rules",
            {"targetingKey": "u", "tier": "silver"},
            expect("second", "second", "TARGETING_MATCH"),
        ),
        c(
            "no rule matches: default serve, reason DEFAULT",
            "ordered-rules",
            {"targetingKey": "u", "tier": "bronze"},
            expect("fallback", "fallback", "DEFAULT"),
        ),
        c(
            "no target matches and no rules: default serve, reason DEFAULT",
            "targets-only",
            {"targetingKey": "someone"},
            OFF_DEFAULT,
        ),
        c("target matches", "targets-only", {"targetingKey": "vip"}, ON_MATCH),
        c(
            "no targetingKey is fine without splits",
            "ordered-rules",
            {"tier": "gold"},
            expect("first", "first", "TARGETING_MATCH"),
        ),
    ]
    return {
        "name": "evaluation-order",
        "description": "Design §3 steps 1-7: unknown, kill, disabled, prerequisites, targets, rules, default.",
        "flags": flags,
        "segments": {},
        "cases": cases,
    }


# --- suite: splits ---------------------------------------------------------------------------

SPLIT_UNITS = [
    "user-1",
    "user-2",
    "user-3",
    "user-42",
    "user-1000",
    "alice",
    "bob",
    "carol",
    "José",
    "zoë",
    "Ærøskøbing",
    "用户-42",
    "ユーザー",
    "🚀-user",
    "👩‍💻",
]


# flagd's own example ports unchanged: [["heads", 1], ["tails", 1]].
HEADS_OR_TAILS = [("heads", 1), ("tails", 1)]
HEADS_OR_TAILS_VALUES = {"heads": "heads", "tails": "tails"}
THIRDS = [("first", 1), ("second", 1), ("third", 1)]
THIRDS_VALUES = {"first": 1, "second": 2, "third": 3}
# The largest total a split may have, spread unevenly (hash x total stays below 2**53).
LARGE_TOTAL = [("a", 1), ("b", 333_333), ("c", 666_666)]
LARGE_TOTAL_VALUES = {"a": "a", "b": "b", "c": "c"}


def split_flag(
    key: str, flag_type: str, variants: dict[str, Any], split: list[tuple[str, int]]
) -> dict[str, Any]:
    """A flag whose default serve is ``split``; its off variant is "none"."""
    return {
        "key": key,
        "type": flag_type,
        "variants": variants,
        "off_variant": "none",
        "enabled": True,
        "kill": None,
        "targets": [],
        "rules": [],
        "default_serve": {"split": [{"variant": v, "weight": w} for v, w in split]},
        "prerequisites": [],
    }


def split_case(
    label: str, flag_key: str, unit: str, split: list[tuple[str, int]], values: dict[str, Any]
) -> dict:
    """The case: ``unit`` gets the variant the hash picks, computed here from mmh3."""
    variant = pick(flag_key, unit, split)
    return case(
        f"{label}: {unit}",
        flag_key,
        {"targetingKey": unit},
        expect(values[variant], variant, "SPLIT"),
    )


def splits_suite() -> dict[str, Any]:
    three = [("red", 1000), ("green", 2500), ("blue", 6500)]
    colors = {"red": "#f00", "green": "#0f0", "blue": "#00f", "none": "none"}
    flags: dict[str, dict[str, Any]] = {
        "uneven-colors": split_flag("uneven-colors", "string", colors, three),
        "zero-percent": boolean_flag(
            "zero-percent",
            default_serve={
                "split": [{"variant": "on", "weight": 0}, {"variant": "off", "weight": 10000}]
            },
        ),
        "hundred-percent": boolean_flag(
            "hundred-percent",
            default_serve={
                "split": [{"variant": "on", "weight": 10000}, {"variant": "off", "weight": 0}]
            },
        ),
        "by-account": boolean_flag(
            "by-account",
            default_serve={
                "split": [{"variant": "on", "weight": 5000}, {"variant": "off", "weight": 5000}],
                "bucket_by": "accountId",
            },
        ),
        "rule-split": boolean_flag(
            "rule-split",
            rules=[
                {
                    "id": "eu-half",
                    "conditions": [{"attribute": "region", "operator": "equals", "value": "eu"}],
                    "serve": {
                        "split": [
                            {"variant": "on", "weight": 5000},
                            {"variant": "off", "weight": 5000},
                        ],
                        "bucket_by": "orgId",
                    },
                },
                {
                    "id": "eu-rest",
                    "conditions": [{"attribute": "region", "operator": "equals", "value": "eu"}],
                    "serve": {"variant": "on"},
                },
            ],
            default_serve={"variant": "off"},
        ),
        "price-test": {
            "key": "price-test",
            "type": "number",
            "variants": {"low": 9.5, "high": 12, "off": 10},
            "off_variant": "off",
            "enabled": True,
            "kill": None,
            "targets": [],
            "rules": [],
            "default_serve": {
                "split": [{"variant": "low", "weight": 3333}, {"variant": "high", "weight": 6667}]
            },
            "prerequisites": [],
        },
        "heads-or-tails": split_flag(
            "heads-or-tails", "string", {**HEADS_OR_TAILS_VALUES, "none": "none"}, HEADS_OR_TAILS
        ),
        "thirds": split_flag("thirds", "number", {**THIRDS_VALUES, "none": 0}, THIRDS),
        "large-total": split_flag(
            "large-total", "string", {**LARGE_TOTAL_VALUES, "none": "none"}, LARGE_TOTAL
        ),
        "theme-json": {
            "key": "theme-json",
            "type": "json",
            "variants": {
                "dark": {"bg": "#000", "accent": ["#f0f", 2]},
                "light": {"bg": "#fff", "accent": []},
            },
            "off_variant": "light",
            "enabled": True,
            "kill": None,
            "targets": [],
            "rules": [],
            "default_serve": {"variant": "dark"},
            "prerequisites": [],
        },
    }
    cases = [
        split_case("uneven 10/25/65 split", "uneven-colors", u, three, colors) for u in SPLIT_UNITS
    ]
    for unit in SPLIT_UNITS[:5]:
        variant = pick("price-test", unit, [("low", 3333), ("high", 6667)])
        value = {"low": 9.5, "high": 12}[variant]
        cases.append(
            case(
                f"number split: {unit}",
                "price-test",
                {"targetingKey": unit},
                expect(value, variant, "SPLIT"),
            )
        )
    for unit in SPLIT_UNITS:
        cases.append(
            split_case(
                "weights [1, 1] (flagd's heads or tails)",
                "heads-or-tails",
                unit,
                HEADS_OR_TAILS,
                HEADS_OR_TAILS_VALUES,
            )
        )
        cases.append(
            split_case("weights [1, 1, 1] (exact thirds)", "thirds", unit, THIRDS, THIRDS_VALUES)
        )
    for unit in [*SPLIT_UNITS[:5], LARGE_TOTAL_FIRST_UNIT]:
        cases.append(
            split_case(
                "weights [1, 333333, 666666] (total 1000000)",
                "large-total",
                unit,
                LARGE_TOTAL,
                LARGE_TOTAL_VALUES,
            )
        )
    for unit in ("user-1", "用户-42", "🚀-user"):
        cases.append(
            case(
                f"0% rollout serves off: {unit}",
                "zero-percent",
                {"targetingKey": unit},
                expect(False, "off", "SPLIT"),
            )
        )
        cases.append(
            case(
                f"100% rollout serves on: {unit}",
                "hundred-percent",
                {"targetingKey": unit},
                expect(True, "on", "SPLIT"),
            )
        )
    for account in ("acct-1", "acct-2", "acct-3", 42, 7):
        variant = pick("by-account", str(account), [("on", 5000), ("off", 5000)])
        cases.append(
            case(
                f"bucket_by accountId={account!r}",
                "by-account",
                {"targetingKey": "same-user", "accountId": account},
                expect(variant == "on", variant, "SPLIT"),
            )
        )
    cases.append(
        case(
            "split with no unit falls back to the off variant",
            "by-account",
            {"targetingKey": "u"},
            expect(False, "off", "DEFAULT"),
        )
    )
    cases.append(
        case(
            "missing targetingKey skips the default split",
            "uneven-colors",
            {},
            expect("none", "none", "DEFAULT"),
        )
    )
    cases.append(
        case(
            "empty targetingKey skips the default split",
            "uneven-colors",
            {"targetingKey": ""},
            expect("none", "none", "DEFAULT"),
        )
    )
    for org in ("org-1", "org-2", "org-3", "org-4"):
        variant = pick("rule-split", org, [("on", 5000), ("off", 5000)])
        cases.append(
            case(
                f"split inside a rule, orgId={org}",
                "rule-split",
                {"targetingKey": "u", "region": "eu", "orgId": org},
                expect(variant == "on", variant, "SPLIT"),
            )
        )
    cases.append(
        case(
            "rule split without its unit is skipped; the next rule serves",
            "rule-split",
            {"targetingKey": "u", "region": "eu"},
            expect(True, "on", "TARGETING_MATCH"),
        )
    )
    cases.append(
        case(
            "json variant",
            "theme-json",
            {"targetingKey": "u"},
            expect({"bg": "#000", "accent": ["#f0f", 2]}, "dark", "STATIC"),
        )
    )
    return {
        "name": "splits",
        "description": "Percentage splits: uneven weights, relative weights of any total ([1, 1], "
        "exact thirds [1, 1, 1], a total of 1,000,000), 0%/100% edges, bucket_by, splits inside rules, "
        "non-ASCII units hashed as UTF-8, and the no-unit fallback (off variant, reason DEFAULT; a rule "
        "whose split has no unit is skipped).",
        "flags": flags,
        "segments": {},
        "cases": cases,
    }


def _first_unit_in_bucket_zero(flag_key: str, total: int) -> str:
    """A unit that lands in bucket 0 of ``total`` (a one-in-a-million weight's only bucket)."""
    for i in range(50_000_000):
        if bucket(flag_key, f"u{i}", total) == 0:
            return f"u{i}"
    raise AssertionError("no unit found")


LARGE_TOTAL_FIRST_UNIT = _first_unit_in_bucket_zero("large-total", 1_000_000)


def ramp_section() -> dict[str, Any]:
    key = "ramp-new-search"
    units = [f"user-{i}" for i in range(1000)]
    on: dict[str, list[int]] = {}
    for percent in (5, 25, 50, 100):
        on[str(percent)] = [i for i, u in enumerate(units) if bucket(key, u) < percent * 100]
    return {
        "description": "The same 1,000 units at 5, 25, 50 and 100% (split [on: p*100, off: 10000 - p*100]): "
        "on_units lists the indices into units served 'on'; each set contains the previous one.",
        "flag_key": key,
        "units": units,
        "percentages": [5, 25, 50, 100],
        "on_units": on,
    }


HASH_INPUTS = [
    ("new-checkout", "user-1"),
    ("new-checkout", "user-2"),
    ("new-checkout", ""),
    ("", "user-1"),
    ("a", "b"),
    ("ab", ""),
    ("abc", "d"),
    ("abcd", "e"),
    ("kill-switch.payments", "12345"),
    ("café-banner", "José"),
    ("naïve-flag", "zoë"),
    ("特性", "用户-42"),
    ("フラグ", "ユーザー"),
    ("🚩", "🚀-user"),
    ("rocket", "👩‍💻"),
    ("ramp", "Ærøskøbing"),
    ("x" * 100, "y" * 37),
]


def hash_vectors() -> list[dict[str, Any]]:
    return [
        {
            "flag_key": flag_key,
            "unit": unit,
            "utf8_bytes": len((flag_key + unit).encode()),
            "hash": h32(flag_key, unit),
            "bucket_10000": bucket(flag_key, unit),
            "buckets": {str(total): bucket(flag_key, unit, total) for total in BUCKET_TOTALS},
        }
        for flag_key, unit in HASH_INPUTS
    ]


def main() -> None:
    suites = [operators_suite(), order_suite(), splits_suite()]
    document = {
        "schema": "flagsvc-evaluation-cases",
        "schema_version": 1,
        "description": "Cross-language evaluation vectors (design §3). For each suite build an "
        "evaluator from its flags and segments, evaluate case.flag for case.context (with "
        "case.default when given, else null) and compare value, variant, reason and error_code.",
        "bucketing": {
            "hash": "MurmurHash3 x86 32-bit, seed 0, unsigned",
            "input": "UTF-8 bytes of flag_key + unit (no separator)",
            "weights": "non-negative integers, total W with 0 < W <= 1000000 (relative, as "
            "flagd's fractional: [1, 1] is 50/50; percentage rollouts use [p*100, 10000 - p*100])",
            "bucket": "(hash * W) >> 32",
            "pick": "first variant whose cumulative weight exceeds bucket",
            "hash_vectors": "buckets maps a total W to (hash * W) >> 32",
        },
        "case_count": sum(len(s["cases"]) for s in suites),
        "suites": suites,
        "hash_vectors": hash_vectors(),
        "ramp": ramp_section(),
    }
    path = HERE / "evaluation-cases.json"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path} with {document['case_count']} cases")


if __name__ == "__main__":
    main()

"""The evaluation engine against the cross-language vectors, hash vectors and properties."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flagsvc_sdk import engine, values
from flagsvc_sdk.engine import (
    MAX_REGEX_INPUT,
    MAX_SPLIT_TOTAL,
    Engine,
    Reason,
    bucket_of,
    murmur3_32,
    parse_datetime,
    parse_semver,
)

CASES_PATH = (
    Path(__file__).resolve().parents[2] / "sdk_clients" / "testdata" / "evaluation-cases.json"
)
VECTORS = json.loads(CASES_PATH.read_text(encoding="utf-8"))


def reference_murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 written from Austin Appleby's reference, independent of the engine."""

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF

    def fmix(h: int) -> int:
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    c1, c2 = 0xCC9E2D51, 0x1B873593
    h1 = seed
    nblocks = len(data) // 4
    for block in range(nblocks):
        k1 = int.from_bytes(data[block * 4 : block * 4 + 4], "little")
        h1 ^= (rotl((k1 * c1) & 0xFFFFFFFF, 15) * c2) & 0xFFFFFFFF
        h1 = (rotl(h1, 13) * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[nblocks * 4 :]
    k1 = 0
    if len(tail) >= 3:
        k1 ^= tail[2] << 16
    if len(tail) >= 2:
        k1 ^= tail[1] << 8
    if len(tail) >= 1:
        k1 ^= tail[0]
        h1 ^= (rotl((k1 * c1) & 0xFFFFFFFF, 15) * c2) & 0xFFFFFFFF
    return fmix(h1 ^ len(data))


def all_cases() -> list[Any]:
    return [
        pytest.param(suite, case, id=f"{suite['name']}: {case['name']}")
        for suite in VECTORS["suites"]
        for case in suite["cases"]
    ]


def test_vectors__schema__is_versioned_with_at_least_80_named_cases() -> None:
    assert VECTORS["schema"] == "flagsvc-evaluation-cases"
    assert VECTORS["schema_version"] == 1
    cases = [c for s in VECTORS["suites"] for c in s["cases"]]
    assert len(cases) == VECTORS["case_count"] >= 80
    assert all(set(c) >= {"name", "flag", "context", "expected"} for c in cases)
    assert len({(s["name"], c["name"]) for s in VECTORS["suites"] for c in s["cases"]}) == len(
        cases
    )


def test_vectors__cover_every_operator() -> None:
    used = {
        condition["operator"]
        for suite in VECTORS["suites"]
        for flag in suite["flags"].values()
        for rule in flag["rules"]
        for condition in rule["conditions"]
    }
    assert used >= set(engine.OPERATORS)


@pytest.mark.parametrize(("suite", "case"), all_cases())
def test_vector(suite: dict[str, Any], case: dict[str, Any]) -> None:
    evaluator = Engine(suite["flags"], suite["segments"])
    result = evaluator.evaluate(case["flag"], case["context"], case.get("default"))
    got = {
        "value": result.value,
        "variant": result.variant,
        "reason": result.reason,
        "error_code": result.error_code,
    }
    assert got == case["expected"]
    if isinstance(case["expected"]["value"], float):
        assert isinstance(result.value, float)


@pytest.mark.parametrize(
    "vector", VECTORS["hash_vectors"], ids=lambda v: f"{v['flag_key'][:12]}+{v['unit'][:12]}"
)
def test_hash_vector__matches_engine_and_independent_reference(vector: dict[str, Any]) -> None:
    data = (vector["flag_key"] + vector["unit"]).encode("utf-8")
    assert len(data) == vector["utf8_bytes"]
    assert reference_murmur3_32(data) == vector["hash"]
    assert values.murmur3_32_pure(data) == vector["hash"]
    assert murmur3_32(vector["flag_key"] + vector["unit"]) == vector["hash"]
    assert (
        bucket_of(vector["flag_key"], vector["unit"])
        == vector["bucket_10000"]
        == (vector["hash"] * 10000) >> 32
    )
    for total, bucket in vector["buckets"].items():
        assert bucket_of(vector["flag_key"], vector["unit"], int(total)) == bucket


def test_hash_vectors__include_non_ascii_keys_and_units() -> None:
    texts = [v["flag_key"] + v["unit"] for v in VECTORS["hash_vectors"]]
    assert any("é" in t for t in texts)
    assert any("用户" in t for t in texts)
    assert any("🚀" in t for t in texts)


def _ramp_flag(key: str, percent_bp: int) -> dict[str, Any]:
    return {
        "key": key,
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "enabled": True,
        "default_serve": {
            "split": [
                {"variant": "on", "weight": percent_bp},
                {"variant": "off", "weight": 10000 - percent_bp},
            ]
        },
    }


def test_ramp_vectors__each_percentage_serves_the_listed_units_and_contains_the_previous() -> None:
    ramp = VECTORS["ramp"]
    previous: set[int] = set()
    for percent in ramp["percentages"]:
        evaluator = Engine({ramp["flag_key"]: _ramp_flag(ramp["flag_key"], percent * 100)})
        on = {
            index
            for index, unit in enumerate(ramp["units"])
            if evaluator.evaluate(ramp["flag_key"], {"targetingKey": unit}).value is True
        }
        assert on == set(ramp["on_units"][str(percent)])
        assert previous <= on
        previous = on
    assert len(previous) == 1000


@settings(max_examples=60, deadline=None)
@given(
    key=st.from_regex(engine.FLAG_KEY_PATTERN, fullmatch=True),
    low=st.integers(0, 10000),
    high=st.integers(0, 10000),
    units=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=200),
)
def test_property__raising_a_rollout_only_adds_units(
    key: str, low: int, high: int, units: list[str]
) -> None:
    low, high = sorted((low, high))
    small = Engine({key: _ramp_flag(key, low)})
    large = Engine({key: _ramp_flag(key, high)})
    for unit in units:
        if small.evaluate(key, {"targetingKey": unit}).value:
            assert large.evaluate(key, {"targetingKey": unit}).value


def _split_flag(key: str, weights: list[int]) -> dict[str, Any]:
    return {
        "key": key,
        "type": "number",
        "variants": {**{f"v{i}": i for i in range(len(weights))}, "none": -1},
        "off_variant": "none",
        "enabled": True,
        "default_serve": {
            "split": [{"variant": f"v{i}", "weight": w} for i, w in enumerate(weights)]
        },
    }


def _reference_pick(flag_key: str, unit: str, weights: list[int]) -> int:
    """flagd's fractional bucketing, from mmh3 directly: bucket = (h x total) >> 32."""
    h = mmh3.hash((flag_key + unit).encode("utf-8"), 0, signed=False)
    bucket = (h * sum(weights)) >> 32
    running = 0
    for index, weight in enumerate(weights):
        running += weight
        if bucket < running:
            return index
    raise AssertionError("bucket beyond the total")


@settings(max_examples=8, deadline=None)
@given(
    weights=st.lists(st.integers(1, 1000), min_size=2, max_size=5),
    key=st.from_regex(engine.FLAG_KEY_PATTERN, fullmatch=True),
)
def test_property__split_shares_within_one_point_over_100k_units(
    weights: list[int], key: str
) -> None:
    evaluator = Engine({key: _split_flag(key, weights)})
    counts = [0] * len(weights)
    for i in range(100_000):
        counts[evaluator.evaluate(key, {"targetingKey": f"user-{i}"}).value] += 1
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count / 100_000 - weight / sum(weights)) <= 0.01


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.integers(0, 400_000), min_size=1, max_size=6).filter(
        lambda w: 0 < sum(w) <= MAX_SPLIT_TOTAL
    ),
    key=st.from_regex(engine.FLAG_KEY_PATTERN, fullmatch=True),
    unit=st.text(min_size=1, max_size=30),
)
def test_property__any_positive_total__picks_like_flagd_fractional(
    weights: list[int], key: str, unit: str
) -> None:
    result = Engine({key: _split_flag(key, weights)}).evaluate(key, {"targetingKey": unit})
    assert result.reason == Reason.SPLIT
    assert result.value == _reference_pick(key, unit, weights)


def test_split__weights_one_one__serves_the_variants_that_10000_basis_points_would() -> None:
    # flagd's [["heads", 1], ["tails", 1]] ports unchanged; a unit's variant does not
    # depend on how the 50/50 is written (the bucket boundary is h < 2**31 either way).
    heads_tails = Engine({"coin": _split_flag("coin", [1, 1])})
    basis_points = Engine({"coin": _split_flag("coin", [5000, 5000])})
    for i in range(2_000):
        context = {"targetingKey": f"user-{i}"}
        assert heads_tails.evaluate("coin", context) == basis_points.evaluate("coin", context)


def test_split__thirds__are_exact_thirds_of_the_hash_space() -> None:
    evaluator = Engine({"thirds": _split_flag("thirds", [1, 1, 1])})
    for i in range(3_000):
        unit = f"user-{i}"
        h = murmur3_32("thirds" + unit)
        expected = 0 if 3 * h < 2**32 else 1 if 3 * h < 2 * 2**32 else 2
        assert evaluator.evaluate("thirds", {"targetingKey": unit}).value == expected


@given(
    a=st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
    b=st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
)
def test_property__semver_orders_like_integer_tuples(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    ka, kb = parse_semver(".".join(map(str, a))), parse_semver(".".join(map(str, b)))
    assert ka is not None and kb is not None
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)


@given(st.text(max_size=30))
def test_property__any_string_attribute_never_raises(value: str) -> None:
    flags = {
        f"f{i}": {
            "key": f"f{i}",
            "type": "boolean",
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "enabled": True,
            "default_serve": {"variant": "off"},
            "rules": [
                {
                    "conditions": [{"attribute": "a", "operator": op, "value": operand}],
                    "serve": {"variant": "on"},
                }
            ],
        }
        for i, (op, operand) in enumerate(
            [
                ("semver_gt", "1.0.0"),
                ("before", "2026-01-01T00:00:00Z"),
                ("matches", "^a+b$"),
                ("gt", 3),
                ("contains", "x"),
                ("in", ["a", 1]),
                ("equals", value or "x"),
            ]
        )
    }
    evaluator = Engine(flags)
    for key in flags:
        assert evaluator.evaluate(key, {"a": value}).reason in (
            Reason.TARGETING_MATCH,
            Reason.DEFAULT,
        )


def test_disabled_flag__constant_result_is_shared_and_ignores_context() -> None:
    evaluator = Engine({"f": _ramp_flag("f", 5000) | {"enabled": False}})
    assert evaluator.evaluate("f", {}) is evaluator.evaluate("f", {"targetingKey": "x"})


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-03-01T09:00:00Z", True),
        ("2026-03-01T09:00:00.123456+05:30", True),
        ("2026-03-01", True),
        ("2026-02-30", False),
        ("2026-03-01T25:00:00Z", False),
        ("March 1st", False),
        (20260301, False),
    ],
)
def test_parse_datetime(text: Any, ok: bool) -> None:
    assert (parse_datetime(text) is not None) == ok


def _matches_flag(pattern: str) -> dict[str, Any]:
    return {
        "key": "f",
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "enabled": True,
        "default_serve": {"variant": "off"},
        "rules": [
            {
                "conditions": [{"attribute": "a", "operator": "matches", "value": pattern}],
                "serve": {"variant": "on"},
            }
        ],
    }


HOSTILE_PATTERNS = ["(a+)+$", "(a|a)+$", "a*a*a*a*a*a*b", "(.*a){20}", "(.*a){20}$"]
HOSTILE_INPUTS = {
    "the longest attribute matched": "a" * (MAX_REGEX_INPUT - 1) + "!",
    "50,000 characters": "a" * 50_000 + "!",
}


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
@pytest.mark.parametrize("text", HOSTILE_INPUTS.values(), ids=list(HOSTILE_INPUTS))
def test_matches__catastrophic_backtracking_shapes__evaluate_in_linear_time(
    pattern: str, text: str
) -> None:
    # Python's backtracking `re` took seconds on (a|a)+$ with only 24 "a"s and "!".
    evaluator = Engine({"f": _matches_flag(pattern)})
    started = time.perf_counter()
    result = evaluator.evaluate("f", {"a": text})
    assert time.perf_counter() - started < 0.05
    assert result.variant in ("on", "off")


def test_matches__hostile_input__same_answer_as_a_backtracking_engine_on_a_short_one() -> None:
    evaluator = Engine({"f": _matches_flag("(a|a)+$")})
    assert evaluator.evaluate("f", {"a": "aaaa!"}).value is False
    assert evaluator.evaluate("f", {"a": "!aaaa"}).value is True


def test_matches__lone_surrogate_attribute__evaluates_without_raising() -> None:
    evaluator = Engine({"f": _matches_flag("x$")})
    assert evaluator.evaluate("f", {"a": "\ud83dx"}).value is True
    assert evaluator.evaluate("f", {"a": "\ud83d"}).value is False


def test_matches__pattern_saved_before_re2_with_a_lookahead__never_matches_and_builds() -> None:
    evaluator = Engine({"f": _matches_flag("^(?!admin)")})
    assert evaluator.evaluate("f", {"a": "user"}).variant == "off"


def test_matches__dollar_is_the_end_of_the_text__as_in_javascript() -> None:
    evaluator = Engine({"f": _matches_flag("^abc$")})
    assert evaluator.evaluate("f", {"a": "abc"}).value is True
    assert evaluator.evaluate("f", {"a": "abc\n"}).value is False


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({}, Reason.STATIC),
        ({"targets": [{"variant": "on", "values": ["vip"]}]}, Reason.DEFAULT),
        (
            {
                "rules": [
                    {
                        "conditions": [{"attribute": "a", "operator": "equals", "value": "x"}],
                        "serve": {"variant": "on"},
                    }
                ]
            },
            Reason.DEFAULT,
        ),
        ({"prerequisites": [{"flag": "base", "variant": "on"}]}, Reason.STATIC),
    ],
    ids=["no targets or rules", "targets none matched", "rules none matched", "prerequisite"],
)
def test_fixed_default__reason__static_only_without_targets_and_rules(
    state: dict[str, Any], reason: str
) -> None:
    base = {
        "key": "base",
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "enabled": True,
        "default_serve": {"variant": "on"},
    }
    flag = {**base, "key": "f", "default_serve": {"variant": "off"}, **state}
    result = Engine({"base": base, "f": flag}).evaluate("f", {"targetingKey": "someone"})
    assert (result.value, result.variant, result.reason) == (False, "off", reason)


def test_matches__input_longer_than_bound__never_matches() -> None:
    evaluator = Engine({"f": _matches_flag("x")})
    assert evaluator.evaluate("f", {"a": "x" * 4096}).value is True
    assert evaluator.evaluate("f", {"a": "x" * 4097}).value is False


@pytest.mark.integration
def test_pure_module__importing_and_evaluating__loads_no_django() -> None:
    # A fresh interpreter: this one has Django loaded by pytest-django already.
    probe = (
        "import sys\n"
        "from flagsvc_sdk.engine import Engine\n"
        "flag = {'key': 'f', 'enabled': True, 'variants': {'on': True, 'off': False},\n"
        "        'off_variant': 'off', 'default_serve': {'variant': 'on'}}\n"
        "assert Engine({'f': flag}).evaluate('f', {}).value is True\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in {'django', 'flags'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

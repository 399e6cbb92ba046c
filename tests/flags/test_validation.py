"""The save-time validator: each bad definition is refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from flags.validation import check_segment, check_state, check_variants, regex_problem

BOOL = {"on": True, "off": False}


def state(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "targets": [],
        "rules": [],
        "default_serve": {"variant": "on"},
        "prerequisites": [],
        **overrides,
    }


def problems(
    flags: dict[str, Any] | None = None, segments: set[str] | None = None, **overrides: Any
) -> dict[str, str]:
    return check_state(
        flag_key="f",
        variants=BOOL,
        state=state(**overrides),
        flags=flags or {},
        segment_keys=segments or set(),
    )


def rule(operator: str, value: Any, attribute: str = "a", serve: Any = None) -> dict[str, Any]:
    return {
        "conditions": [{"attribute": attribute, "operator": operator, "value": value}],
        "serve": serve or {"variant": "on"},
    }


def test_valid_state__has_no_problems() -> None:
    assert (
        problems(
            rules=[rule("in", ["DE"])],
            default_serve={
                "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
            },
        )
        == {}
    )


def test_unknown_operator__names_the_condition() -> None:
    errors = problems(rules=[rule("is_cool", 1)])
    assert "unknown operator 'is_cool'" in errors["rules[0].conditions[0].operator"]


def test_bad_regex__names_the_value() -> None:
    errors = problems(rules=[rule("matches", "(a)\\1")])
    assert errors["rules[0].conditions[0].value"].startswith("the pattern uses a backreference")


@pytest.mark.parametrize(
    "pattern",
    ["^[a-z]+-\\d{3}$", "(a+)+$", "(a|a)+$", "a*a*a*a*a*a*b", "(.*a){20}", "(?i)admin", "(?P<x>a)"],
)
def test_regex__linear_time_under_re2__is_accepted(pattern: str) -> None:
    # Once refused as "nested unbounded repetition" ((a+)+$), or accepted and then taking
    # seconds under backtracking ((a|a)+$): RE2 matches every one in linear time.
    assert problems(rules=[rule("matches", pattern)]) == {}


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(?:a{1,100}){1,100}$", "a {n,m} count may not exceed 1000"),
        ("(a)\\1", "uses a backreference"),
        ("(?P<x>a)(?P=x)", "uses a backreference"),
        ("(?=a)b", "uses a lookahead or lookbehind"),
        ("(?!admin)", "uses a lookahead or lookbehind"),
        ("(?<=a)b", "uses a lookahead or lookbehind"),
        ("(?<!a)b", "uses a lookahead or lookbehind"),
        ("^done\\Z", "write $"),
        (".{1000}.{1000}.{1000}x", "compiles to 24005 instructions, the limit is 2000"),
        ("[unclosed", "is not a valid RE2 regular expression: missing ]"),
        ("a" * 257, "is 257 characters long; the limit is 256"),
        ("", "non-empty"),
        (5, "non-empty string"),
    ],
)
def test_regex__refused__says_what_to_change(pattern: object, fragment: str) -> None:
    errors = problems(rules=[rule("matches", pattern)])
    assert errors["rules[0].conditions[0].value"].startswith("the pattern ")
    assert fragment in errors["rules[0].conditions[0].value"]
    assert fragment in (regex_problem(pattern) or "")


def split(*weights: Any) -> dict[str, Any]:
    return {
        "split": [{"variant": v, "weight": w} for v, w in zip(("on", "off"), weights, strict=True)]
    }


@pytest.mark.parametrize(
    "weights", [(1, 1), (2500, 2500), (1, 2), (0, 1), (10000, 0), (999_999, 1), (1_000_000, 0)]
)
def test_split_weights__any_positive_total__are_accepted(weights: tuple[int, int]) -> None:
    assert problems(default_serve=split(*weights)) == {}


def test_split_weights__thirds_of_three_variants__are_accepted() -> None:
    errors = check_state(
        flag_key="f",
        variants={"a": "a", "b": "b", "c": "c"},
        state=state(
            default_serve={"split": [{"variant": v, "weight": 1} for v in ("a", "b", "c")]}
        ),
        flags={},
        segment_keys=set(),
    )
    assert errors == {}


@pytest.mark.parametrize(
    ("weights", "field", "fragment"),
    [
        ((0, 0), "default_serve.split", "add up to 0; give at least one variant a weight above 0"),
        ((600_000, 600_000), "default_serve.split", "add up to 1200000; the limit is 1000000"),
        ((-1, 2), "default_serve.split[0].weight", "whole number from 0 to 1000000; got -1"),
        ((1.5, 1), "default_serve.split[0].weight", "got 1.5"),
        ((True, 1), "default_serve.split[0].weight", "got True"),
        (("50", 1), "default_serve.split[0].weight", "got '50'"),
        ((1, 1_000_001), "default_serve.split[1].weight", "got 1000001"),
    ],
)
def test_split_weights__refused__name_the_field(
    weights: tuple[Any, Any], field: str, fragment: str
) -> None:
    assert fragment in problems(default_serve=split(*weights))[field]


def test_unknown_variant__in_rule_serve_and_target() -> None:
    errors = problems(
        rules=[rule("equals", "x", serve={"variant": "maybe"})],
        targets=[{"variant": "nope", "values": ["u"]}],
    )
    assert "got 'maybe'" in errors["rules[0].serve.variant"]
    assert "got 'nope'" in errors["targets[0].variant"]


def test_prerequisite_cycle__shows_the_loop() -> None:
    others = {
        "b": {"variants": BOOL, "prerequisites": [{"flag": "c", "variant": "on"}]},
        "c": {"variants": BOOL, "prerequisites": [{"flag": "f", "variant": "on"}]},
    }
    errors = problems(flags=others, prerequisites=[{"flag": "b", "variant": "on"}])
    assert errors["prerequisites[0].flag"] == "creates a prerequisite cycle: f -> b -> c -> f"


def test_prerequisite_on_itself_unknown_flag_or_variant() -> None:
    others = {"b": {"variants": BOOL, "prerequisites": []}}
    assert (
        "its own prerequisite"
        in problems(prerequisites=[{"flag": "f", "variant": "on"}])["prerequisites[0].flag"]
    )
    assert (
        "unknown or archived"
        in problems(flags=others, prerequisites=[{"flag": "zz", "variant": "on"}])[
            "prerequisites[0].flag"
        ]
    )
    assert (
        "has no variant 'maybe'"
        in problems(flags=others, prerequisites=[{"flag": "b", "variant": "maybe"}])[
            "prerequisites[0].variant"
        ]
    )


@pytest.mark.parametrize(
    ("operator", "value", "fragment"),
    [
        ("semver_gt", "one", "not a semantic version"),
        ("before", "tomorrow", "not an ISO-8601 date-time"),
        ("gt", "5", "give a finite number"),
        ("in", "DE", "non-empty list"),
        ("in", [], "non-empty list"),
        ("equals", ["DE"], "use in/not_in"),
        ("starts_with", 5, "string or a non-empty list of strings"),
    ],
)
def test_bad_operand__explains_what_to_give(operator: str, value: Any, fragment: str) -> None:
    assert fragment in problems(rules=[rule(operator, value)])["rules[0].conditions[0].value"]


def test_unknown_segment__is_refused() -> None:
    errors = problems(
        rules=[
            {
                "conditions": [{"operator": "in_segment", "value": "beta"}],
                "serve": {"variant": "on"},
            }
        ]
    )
    assert "unknown segment 'beta'" in errors["rules[0].conditions[0].value"]
    assert (
        problems(
            segments={"beta"},
            rules=[
                {
                    "conditions": [{"operator": "in_segment", "value": "beta"}],
                    "serve": {"variant": "on"},
                }
            ],
        )
        == {}
    )


def test_target_key_in_two_variants__is_refused() -> None:
    errors = problems(
        targets=[{"variant": "on", "values": ["u1"]}, {"variant": "off", "values": ["u1"]}]
    )
    assert "already targeted by targets[0]" in errors["targets[1].values"]


def test_duplicate_rule_ids__are_refused() -> None:
    errors = problems(rules=[{**rule("equals", 1), "id": "x"}, {**rule("equals", 2), "id": "x"}])
    assert "duplicates" in errors["rules[1].id"]


def test_serve_with_both_variant_and_split__is_refused() -> None:
    errors = problems(default_serve={"variant": "on", "split": []})
    assert errors == {
        "default_serve": 'must be {"variant": NAME} or '
        '{"split": [{"variant": NAME, "weight": N}, ...]}'
    }


def test_variants__type_checked() -> None:
    assert check_variants("boolean", BOOL, "off") == {}
    assert "exactly" in check_variants("boolean", {"yes": True, "no": False}, "no")["variants"]
    assert "strings" in check_variants("string", {"a": 1}, "a")["variants.a"]
    assert "finite numbers" in check_variants("number", {"a": "1"}, "a")["variants.a"]
    assert (
        "must name one of the variants" in check_variants("string", {"a": "x"}, "b")["off_variant"]
    )
    assert "must be one of" in check_variants("yaml", {"a": 1}, "a")["type"]


def test_segment__may_not_nest_segments() -> None:
    errors = check_segment({"rules": [{"conditions": [{"operator": "in_segment", "value": "x"}]}]})
    assert "cannot refer to other segments" in errors["rules[0].conditions[0].operator"]

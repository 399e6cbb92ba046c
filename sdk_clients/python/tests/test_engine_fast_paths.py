"""The engine's fast paths (string equals, plain attribute names, remembered SemVer parses)
answer exactly as the general code they shortcut."""

from __future__ import annotations

from typing import Any

import pytest

from flagsvc_sdk import engine, values


class Text(str):
    """A str subclass (as Django's SafeString): never JSON-equal to a plain string."""


VALUES: list[Any] = ["pro", "Pro", "", Text("pro"), True, False, 0, 1, 1.0, None, ["pro"], {"a": 1}]


@pytest.mark.parametrize("operand", ["pro", "", "1"])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_equals__string_operand__same_answer_as_json_equality(operand: str, value: Any) -> None:
    assert engine.ATTRIBUTE_OPERATORS["equals"](operand)(value) is values.same_value(value, operand)


@pytest.mark.parametrize(
    "context",
    [{}, {"plan": None}, {"plan": "pro"}, {"plan": "free"}, {"plan": ["pro"]}, {"plan": 1}],
    ids=repr,
)
def test_plain_attribute__same_answer_as_the_general_lookup(context: dict[str, Any]) -> None:
    doc = {"attribute": "plan", "operator": "in", "value": ["pro", 1]}
    fast = engine._compile_condition(doc, {})
    predicate = engine.ATTRIBUTE_OPERATORS["in"](["pro", 1])
    value = engine._lookup(context, "plan")
    assert fast(context) is (value is not engine._MISSING and predicate(value))


@pytest.mark.parametrize(
    "text", ["1.2.3", "v2.0.0-rc.1", "2", "01.2.3", "x", "", Text("3.1.4"), 5, None], ids=repr
)
def test_semver__remembered_parse_answers_as_a_fresh_parse(text: Any) -> None:
    test = engine.ATTRIBUTE_OPERATORS["semver_gte"]("1.0.0")
    floor = engine.parse_semver("1.0.0")
    assert floor is not None
    for _ in range(2):  # the second call answers from memory
        fresh = engine.parse_semver(text)
        assert test(text) is (fresh is not None and fresh >= floor)

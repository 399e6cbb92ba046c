"""Selectors: the snapshot is complete and costs a fixed number of queries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flags.models import Environment, Flag, FlagState, Segment
from flags.selectors import snapshot_build, state_summary
from flagsvc_sdk.engine import Engine

pytestmark = pytest.mark.django_db

RULES = [
    {
        "id": "de",
        "conditions": [
            {"attribute": "country", "operator": "in", "value": ["DE", "AT"]},
            {"attribute": "plan", "operator": "equals", "value": "pro"},
        ],
        "serve": {"variant": "on"},
    },
    {
        "id": "staff",
        "conditions": [{"operator": "in_segment", "value": "staff"}],
        "serve": {"variant": "on"},
    },
]


def _bulk_flags(environment: Environment, n: int) -> None:
    # Read-path test data: inserted directly, the services are tested elsewhere.
    flags = Flag.objects.bulk_create(
        Flag(key=f"flag-{i:04d}", variants={"on": True, "off": False}) for i in range(n)
    )
    FlagState.objects.bulk_create(
        FlagState(
            flag=f,
            environment=environment,
            enabled=True,
            rules=RULES,
            default_serve={
                "split": [{"variant": "on", "weight": 1000}, {"variant": "off", "weight": 9000}]
            },
        )
        for f in flags
    )


@pytest.mark.parametrize("n", [10, 1000])
def test_snapshot_build__constant_queries_for_any_number_of_flags(
    n: int, django_assert_num_queries: Any
) -> None:
    environment = Environment.objects.create(key="production", name="Production")
    Segment.objects.create(environment=environment, key="staff", included=["u1"])
    _bulk_flags(environment, n)
    with django_assert_num_queries(2):
        snapshot = snapshot_build(environment)
    assert len(snapshot["flags"]) == n
    assert snapshot["flags"]["flag-0000"]["rules"] == RULES
    evaluator = Engine.from_snapshot(snapshot)
    assert evaluator.evaluate("flag-0001", {"targetingKey": "u1"}).reason == "TARGETING_MATCH"


def test_snapshot__same_version__same_document() -> None:
    environment = Environment.objects.create(key="production", name="Production")
    _bulk_flags(environment, 3)
    first, second = snapshot_build(environment), snapshot_build(environment)
    assert first is not None and len(first["flags"]) == 3
    # Byte for byte: the ETag names a version, so one version must always encode the same.
    assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)
    assert list(first["flags"]) == sorted(first["flags"])


@pytest.mark.parametrize(
    ("state", "label"),
    [
        ({"enabled": False}, "off"),
        ({"enabled": True, "default_serve": {"variant": "on"}}, "on"),
        (
            {
                "enabled": True,
                "default_serve": {
                    "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
                },
            },
            "25%",
        ),
        (
            {
                "enabled": True,
                "default_serve": {
                    "split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 1}]
                },
            },
            "50%",
        ),
        (
            {
                "enabled": True,
                "default_serve": {
                    "split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 2}]
                },
            },
            "33.33%",
        ),
        ({"enabled": True, "default_serve": {"variant": "off"}, "rules": RULES}, "off + 2 rules"),
        ({"enabled": True, "killed_at": "2026-01-01T00:00:00Z"}, "KILLED"),
    ],
)
def test_state_summary(state: dict[str, Any], label: str) -> None:
    flag = Flag(key="f", variants={"on": True, "off": False})
    assert (
        state_summary(flag, FlagState(flag=flag, **{"default_serve": {"variant": "on"}, **state}))
        == label
    )

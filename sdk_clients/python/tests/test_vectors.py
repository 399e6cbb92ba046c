"""The client passes every shared vector (sdk_clients/testdata/evaluation-cases.json) through
its public calls, from a snapshot as the server sends it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flagsvc_sdk import FlagsvcClient
from flagsvc_sdk.engine import bucket_of, murmur3_32

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "testdata" / "evaluation-cases.json").read_text()
)


def client_for(flags: dict[str, Any], segments: dict[str, Any] | None = None) -> FlagsvcClient:
    document = {
        "schema_version": 1,
        "environment": "vectors",
        "version": 1,
        "flags": flags,
        "segments": segments or {},
    }
    return FlagsvcClient(None, None, offline=True, bootstrap=document)


def all_cases() -> list[Any]:
    return [
        pytest.param(suite, case, id=f"{suite['name']}: {case['name']}")
        for suite in VECTORS["suites"]
        for case in suite["cases"]
    ]


def test_vectors__are_all_there() -> None:
    assert len(all_cases()) == VECTORS["case_count"] >= 80


@pytest.mark.parametrize(("suite", "case"), all_cases())
def test_vector__evaluate_and_typed_calls_answer_as_the_server(
    suite: dict[str, Any], case: dict[str, Any]
) -> None:
    client = client_for(suite["flags"], suite["segments"])
    assert client.snapshot is not None  # the bootstrap was accepted whole
    result = client.evaluate(case["flag"], case["context"], case.get("default"))
    got = {
        "value": result.value,
        "variant": result.variant,
        "reason": result.reason,
        "error_code": result.error_code,
    }
    assert got == case["expected"]
    expected = case["expected"]["value"]
    if isinstance(expected, float):
        assert isinstance(result.value, float)
    assert client.variant(case["flag"], case["context"]) == case["expected"]["variant"]
    if isinstance(expected, bool) and case["expected"]["error_code"] is None:
        assert client.is_enabled(case["flag"], case["context"]) is expected
        assert client.is_enabled(case["flag"], case["context"], default=not expected) is expected


@pytest.mark.parametrize("vector", VECTORS["hash_vectors"], ids=lambda v: v["flag_key"][:20])
def test_hash_vector(vector: dict[str, Any]) -> None:
    assert murmur3_32(vector["flag_key"] + vector["unit"]) == vector["hash"]
    for total, bucket in vector["buckets"].items():
        assert bucket_of(vector["flag_key"], vector["unit"], int(total)) == bucket


def test_ramp__each_percentage_serves_the_listed_units_and_keeps_the_previous_ones() -> None:
    ramp = VECTORS["ramp"]
    key = ramp["flag_key"]
    previous: set[int] = set()
    for percent in ramp["percentages"]:
        split = [
            {"variant": "on", "weight": percent * 100},
            {"variant": "off", "weight": 10000 - percent * 100},
        ]
        client = client_for(
            {
                key: {
                    "key": key,
                    "type": "boolean",
                    "variants": {"on": True, "off": False},
                    "off_variant": "off",
                    "enabled": True,
                    "default_serve": {"split": split},
                }
            }
        )
        on = {
            i
            for i, unit in enumerate(ramp["units"])
            if client.is_enabled(key, {"targetingKey": unit})
        }
        assert on == set(ramp["on_units"][str(percent)])
        assert previous <= on
        previous = on
    assert len(previous) == len(ramp["units"])

"""The OpenFeature provider through OpenFeature's own API (openfeature-sdk)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FakeFlagsvc, flag, snapshot, sse, wait_until
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from flagsvc_sdk import FlagsvcClient
from flagsvc_sdk.openfeature import FlagsvcProvider


def number(key: str, variants: dict[str, Any], serve: str) -> dict[str, Any]:
    return {
        **flag(key),
        "type": "number",
        "variants": variants,
        "off_variant": next(iter(variants)),
        "default_serve": {"variant": serve},
    }


DOCUMENT = snapshot(
    1,
    flag(
        "new-checkout",
        default_serve={"variant": "off"},
        rules=[
            {
                "conditions": [{"attribute": "plan", "operator": "equals", "value": "pro"}],
                "serve": {"variant": "on"},
            }
        ],
    ),
    flag("gated", prerequisites=[{"flag": "new-checkout", "variant": "on"}]),
    flag("killed", kill={"by": "oncall", "at": "2026-01-01T00:00:00Z", "reason": "x"}),
    {
        **flag("hero"),
        "type": "string",
        "variants": {"a": "spring", "b": "winter"},
        "off_variant": "a",
        "default_serve": {"split": [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]},
    },
    number("limit", {"low": 10, "high": 100}, "high"),
    number("ratio", {"low": 0.25, "high": 0.75}, "high"),
    {
        **flag("layout"),
        "type": "json",
        "variants": {"x": {"columns": 3}, "y": {"columns": 1}},
        "off_variant": "y",
        "default_serve": {"variant": "x"},
    },
)


@pytest.fixture
def of_client() -> Iterator[Any]:
    provider = FlagsvcProvider(FlagsvcClient(None, None, offline=True, bootstrap=DOCUMENT))
    api.set_provider(provider)
    yield api.get_client()
    api.shutdown()


def test_boolean__targeting_match_and_default_reasons(of_client: Any) -> None:
    pro = EvaluationContext("user-1", {"plan": "pro"})
    details = of_client.get_boolean_details("new-checkout", False, pro)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.TARGETING_MATCH)
    free = of_client.get_boolean_details(
        "new-checkout", True, EvaluationContext("u2", {"plan": "free"})
    )
    assert (free.value, free.reason) == (False, Reason.DEFAULT)


def test_kill_and_prerequisite__disabled_and_targeting_match_with_our_reason_in_metadata(
    of_client: Any,
) -> None:
    killed = of_client.get_boolean_details("killed", True)
    assert (killed.value, killed.reason, killed.flag_metadata["killed"]) == (
        False,
        "DISABLED",
        True,
    )
    gated = of_client.get_boolean_details("gated", True, EvaluationContext("u", {"plan": "free"}))
    assert (gated.value, gated.reason) == (False, Reason.TARGETING_MATCH)
    assert gated.flag_metadata["flagsvcReason"] == "PREREQUISITE_FAILED"


def test_typed_getters__string_split_integer_float_object(of_client: Any) -> None:
    hero = of_client.get_string_details("hero", "none", EvaluationContext("user-1"))
    assert hero.value in ("spring", "winter") and hero.reason == Reason.SPLIT
    assert of_client.get_integer_value("limit", 1) == 100
    assert of_client.get_float_value("ratio", 0.0) == 0.75
    assert of_client.get_float_value("limit", 0.0) == 100.0
    assert of_client.get_object_value("layout", {}) == {"columns": 3}


def test_errors__flag_not_found_and_type_mismatch_give_the_default(of_client: Any) -> None:
    missing = of_client.get_boolean_details("nope", True)
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    wrong = of_client.get_integer_details("hero", 5, EvaluationContext("user-1"))
    assert (wrong.value, wrong.error_code) == (5, ErrorCode.TYPE_MISMATCH)
    wrong_float = of_client.get_integer_details("ratio", 5)
    assert (wrong_float.value, wrong_float.error_code) == (5, ErrorCode.TYPE_MISMATCH)


def test_configuration_changed__event_names_the_changed_flags(fake: FakeFlagsvc) -> None:
    fake.document = DOCUMENT
    events: list[EventDetails] = []
    seen = threading.Event()

    def handler(details: EventDetails) -> None:
        events.append(details)
        seen.set()

    provider = FlagsvcProvider(FlagsvcClient(fake.url, "k", timeout=2), ready_timeout=5)
    api.set_provider(provider)
    try:
        api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
        wait_until(lambda: fake.streams)
        fake.push(
            sse(
                "patch",
                2,
                {
                    "environment": "production",
                    "version": 2,
                    "previous_version": 1,
                    "flags": {"limit": None, "new-checkout": flag("new-checkout")},
                    "segments": {},
                },
            )
        )
        assert seen.wait(2)
        assert events[-1].flags_changed == ["limit", "new-checkout"]
        assert api.get_client().get_boolean_value("new-checkout", False) is True
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
        api.shutdown()
    assert provider.client.status == "closed"

"""Flags over the API: list and filter, page, create, read, change, archive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db

SPLIT_25 = {"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]}


def _keys(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [f["key"] for f in response.json()["results"]]


@pytest.fixture
def catalogue(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> dict[str, Flag]:
    """Given flags in every state in production: on, off, killed, ramping, archived."""
    flags = {
        "checkout-on": make_flag("checkout-on", tags=["payments"], owner="Payments"),
        "checkout-off": make_flag(
            "checkout-off", tags=["payments"], description="the old checkout"
        ),
        "search-killed": make_flag("search-killed", tags=["search"], name="Search v2"),
        "search-ramp": make_flag("search-ramp", tags=["search"], owner="search-team"),
        "retired": make_flag("retired", tags=["payments"]),
    }
    services.flag_state_update(
        actor=actor, flag=flags["checkout-on"], environment=production, enabled=True
    )
    services.flag_state_update(
        actor=actor, flag=flags["search-killed"], environment=production, enabled=True
    )
    services.flag_kill(
        actor=actor, flag=flags["search-killed"], environment=production, reason="errors"
    )
    services.flag_state_update(
        actor=actor,
        flag=flags["search-ramp"],
        environment=production,
        enabled=True,
        default_serve=SPLIT_25,
    )
    services.flag_archive(actor=actor, flag=flags["retired"])
    return flags


def test_list__live_flags_by_key_with_a_summary_per_environment(
    api: Client, catalogue: dict[str, Flag]
) -> None:
    response = send(api, "GET", "/api/v1/flags/")
    assert _keys(response) == ["checkout-off", "checkout-on", "search-killed", "search-ramp"]
    ramp = response.json()["results"][3]
    assert list(ramp["environments"]) == ["development", "staging", "production"]
    assert ramp["environments"]["production"] == {
        "enabled": True,
        "killed": False,
        "summary": "25%",
        "version": 2,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=payments", ["checkout-off", "checkout-on"]),
        ("owner=payments", ["checkout-on"]),
        ("archived=true", ["retired"]),
        ("archived=any&tag=payments", ["checkout-off", "checkout-on", "retired"]),
        ("q=old checkout", ["checkout-off"]),
        ("q=search v2", ["search-killed"]),
        ("q=RAMP", ["search-ramp"]),
        ("state=production:on", ["checkout-on", "search-ramp"]),
        ("state=production:off", ["checkout-off"]),
        ("state=production:killed", ["search-killed"]),
        ("state=production:rollout", ["search-ramp"]),
        ("state=staging:on", []),
        ("tag=search&state=production:killed", ["search-killed"]),
    ],
)
def test_list__filters(
    api: Client, catalogue: dict[str, Flag], query: str, expected: list[str]
) -> None:
    assert _keys(send(api, "GET", f"/api/v1/flags/?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("state=production", "state"),
        ("state=production:maybe", "state"),
        ("state=prod:on", "state"),
        ("archived=perhaps", "archived"),
        ("archived=1", "archived"),  # exactly the documented true/false/any
        ("archived=", "archived"),
        ("page_size=0", "page_size"),  # not quietly the default page size
        ("page_size=null", "page_size"),
        ("page_size=501", "page_size"),
        ("cursor=garbage", "cursor"),  # not a 404, as if the list were gone
    ],
)
def test_list__bad_filter__400_names_the_parameter(
    api: Client, catalogue: dict[str, Flag], query: str, parameter: str
) -> None:
    response = send(api, "GET", f"/api/v1/flags/?{query}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_parameter" and list(error["fields"]) == [parameter]


def test_list__cursor_pages_walk_every_flag_once(
    api: Client, make_flag: Callable[..., Flag]
) -> None:
    for index in range(7):
        make_flag(f"flag-{index}")
    seen: list[str] = []
    url: str | None = "/api/v1/flags/?page_size=3"
    pages = 0
    while url:
        body = send(api, "GET", url).json()
        seen += [f["key"] for f in body["results"]]
        url = body["next"]
        pages += 1
    assert seen == [f"flag-{i}" for i in range(7)] and pages == 3
    back = send(api, "GET", body["previous"]).json()
    assert [f["key"] for f in back["results"]] == ["flag-3", "flag-4", "flag-5"]


def test_list__a_fixed_number_of_queries_whatever_the_number_of_flags(
    api: Client,
    make_flag: Callable[..., Flag],
    django_assert_max_num_queries: Any,
) -> None:
    for index in range(30):
        make_flag(f"flag-{index}", tags=["a", "b"])
    with django_assert_max_num_queries(8):
        response = send(api, "GET", "/api/v1/flags/")
    assert len(response.json()["results"]) == 30


def test_create__201_flag_with_its_state_everywhere_and_audited(api: Client) -> None:
    response = send(
        api,
        "POST",
        "/api/v1/flags/",
        {
            "key": "button-color",
            "type": "string",
            "variants": {"blue": "#00f", "green": "#0f0"},
            "off_variant": "blue",
            "tags": ["ui"],
            "owner": "web",
            "client_visible": True,
            "reason": "experiment",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response.headers["Location"] == "/api/v1/flags/button-color/"
    assert body["type"] == "string" and body["tags"] == ["ui"] and body["client_visible"]
    assert body["environments"]["production"]["default_serve"] == {"variant": "green"}
    assert not body["environments"]["production"]["enabled"]
    event = AuditEvent.objects.get(action="flag.create")
    assert (event.actor, event.reason) == ("ci-bot", "experiment")


def test_create__boolean_by_default(api: Client, environments: object) -> None:
    response = send(api, "POST", "/api/v1/flags/", {"key": "dark-mode"})
    assert response.status_code == 201
    assert response.json()["variants"] == {"on": True, "off": False}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "x", "type": "string"}, "variants"),
        ({"key": "x", "type": "colour"}, "type"),
        ({"key": "X Y"}, "key"),
        ({"key": "x", "client_visible": "yes"}, "client_visible"),
        ({"key": "x", "tags": "ui"}, "tags"),
        ({"key": "x", "enabled": True}, "enabled"),
        ({"key": "x", "type": "number", "variants": {"a": "1"}, "off_variant": "a"}, "variants.a"),
        ({}, "key"),
    ],
)
def test_create__bad_field__400_names_it_and_creates_nothing(
    api: Client, environments: object, body: dict[str, Any], field: str
) -> None:
    response = send(api, "POST", "/api/v1/flags/", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert field in error["fields"], error
    assert not Flag.objects.exists()


def test_create__existing_key__409(api: Client, make_flag: Callable[..., Flag]) -> None:
    make_flag("dark-mode")
    response = send(api, "POST", "/api/v1/flags/", {"key": "dark-mode"})
    assert response.status_code == 409 and error_of(response)["code"] == "already_exists"


def test_get__flag_with_full_state_in_every_environment(
    api: Client, catalogue: dict[str, Flag]
) -> None:
    body = send(api, "GET", "/api/v1/flags/search-killed/").json()
    production = body["environments"]["production"]
    assert production["kill"]["reason"] == "errors" and production["summary"] == "KILLED"
    assert set(production) >= {"enabled", "targets", "rules", "default_serve", "prerequisites"}
    assert body["environments"]["staging"]["kill"] is None


def test_get__archived_flag_is_still_readable(api: Client, catalogue: dict[str, Flag]) -> None:
    body = send(api, "GET", "/api/v1/flags/retired/").json()
    assert body["archived"] and body["archived_at"]


def test_get__unknown__404(api: Client, environments: object) -> None:
    response = send(api, "GET", "/api/v1/flags/nope/")
    assert response.status_code == 404 and "No flag 'nope'" in error_of(response)["message"]


def test_patch__changes_owner_and_tags(api: Client, make_flag: Callable[..., Flag]) -> None:
    make_flag("dark-mode", tags=["ui"])
    response = send(
        api, "PATCH", "/api/v1/flags/dark-mode/", {"owner": "web-team", "tags": ["ui", "beta"]}
    )
    assert response.status_code == 200
    assert response.json()["owner"] == "web-team" and response.json()["tags"] == ["beta", "ui"]
    assert AuditEvent.objects.get(action="flag.update").after["owner"] == "web-team"


@pytest.mark.parametrize("field", ["key", "type"])
def test_patch__key_or_type__400_they_are_fixed(
    api: Client, make_flag: Callable[..., Flag], field: str
) -> None:
    make_flag("dark-mode")
    response = send(api, "PATCH", "/api/v1/flags/dark-mode/", {field: "string"})
    assert response.status_code == 400
    assert "fixed" in error_of(response)["fields"][field]


def test_patch__archived_flag__409_flag_archived(api: Client, catalogue: dict[str, Flag]) -> None:
    response = send(api, "PATCH", "/api/v1/flags/retired/", {"owner": "x"})
    assert response.status_code == 409 and error_of(response)["code"] == "flag_archived"


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_archive__delete_or_post_archive__flag_leaves_the_list(
    api: Client, make_flag: Callable[..., Flag], method: str
) -> None:
    make_flag("dark-mode")
    path = "/api/v1/flags/dark-mode/" + ("archive/" if method == "POST" else "")
    response = send(api, method, path, **{"X-Reason": "done"})
    assert response.status_code == 200 and response.json()["archived"]
    assert _keys(send(api, "GET", "/api/v1/flags/")) == []
    assert AuditEvent.objects.get(action="flag.archive").reason == "done"


def test_archive__prerequisite_of_another_flag__400_nothing_changes(
    api: Client, make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    make_flag("payments-api")
    services.flag_state_update(
        actor=actor,
        flag=make_flag("new-checkout"),
        environment=production,
        prerequisites=[{"flag": "payments-api", "variant": "on"}],
    )
    response = send(api, "POST", "/api/v1/flags/payments-api/archive/")
    assert response.status_code == 400
    assert "prerequisite of new-checkout" in error_of(response)["message"]
    assert not Flag.objects.get(key="payments-api").archived


def test_unarchive__brings_the_flag_back(api: Client, catalogue: dict[str, Flag]) -> None:
    response = send(api, "POST", "/api/v1/flags/retired/unarchive/", {"reason": "needed"})
    assert response.status_code == 200 and not response.json()["archived"]
    assert "retired" in _keys(send(api, "GET", "/api/v1/flags/"))

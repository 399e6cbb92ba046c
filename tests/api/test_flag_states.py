"""A flag's state in one environment: read with an ETag, replace or change it conditionally."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag, FlagState
from tests.api.conftest import error_of, send
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db

STATE = "/api/v1/flags/new-checkout/environments/production/"
RULE_FR = {
    "id": "fr",
    "conditions": [{"attribute": "country", "operator": "equals", "value": "FR"}],
    "serve": {"variant": "on"},
}
SPLIT_25 = {"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]}


@pytest.fixture
def flag(make_flag: Callable[..., Flag]) -> Flag:
    return make_flag("new-checkout")


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def test_get__state_with_etag_of_its_version(
    api: Client, flag: Flag, production: Environment
) -> None:
    response = send(api, "GET", STATE)
    assert response.status_code == 200
    body = response.json()
    assert response.headers["ETag"] == '"1"'
    assert body["version"] == 1 and body["environment_version"] == refreshed(production).version
    assert body["kill"] is None and body["enabled"] is False
    assert body["default_serve"] == {"variant": "on"}


def test_get__if_none_match_current__304(api: Client, flag: Flag) -> None:
    assert send(api, "GET", STATE, **{"If-None-Match": '"1"'}).status_code == 304
    assert send(api, "GET", STATE, **{"If-None-Match": '"0"'}).status_code == 200


def test_get__unknown_environment__404_names_it(api: Client, flag: Flag) -> None:
    response = send(api, "GET", "/api/v1/flags/new-checkout/environments/prod/")
    assert response.status_code == 404 and "environment 'prod'" in error_of(response)["message"]


def test_put__replaces_all_five_fields_and_answers_new_versions(
    api: Client, flag: Flag, production: Environment, actor: Actor
) -> None:
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        targets=[{"variant": "on", "values": ["user-1"]}],
    )
    environment_version = refreshed(production).version
    response = send(
        api,
        "PUT",
        STATE,
        {"enabled": True, "rules": [RULE_FR], "default_serve": SPLIT_25, "reason": "ramp"},
        **{"If-Match": '"2"'},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 3 and response.headers["ETag"] == '"3"'
    assert body["environment_version"] == environment_version + 1
    assert body["targets"] == [] and body["rules"] == [RULE_FR]  # left out: emptied
    state = _state(flag, production)
    assert state.enabled and state.default_serve == SPLIT_25 and state.targets == []
    latest = AuditEvent.objects.filter(action="flag_state.update").first()
    assert latest is not None and latest.reason == "ramp"


def test_put__without_required_fields__400(api: Client, flag: Flag) -> None:
    response = send(api, "PUT", STATE, {"enabled": True})
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["default_serve"]


def test_patch__changes_only_the_given_fields(
    api: Client, flag: Flag, production: Environment
) -> None:
    send(api, "PATCH", STATE, {"rules": [RULE_FR]})
    response = send(api, "PATCH", STATE, {"enabled": True})
    assert response.status_code == 200
    state = _state(flag, production)
    assert state.enabled and state.rules == [RULE_FR] and state.version == 3


@pytest.mark.parametrize(
    "conditional",
    [{"headers": {"If-Match": '"1"'}}, {"body": {"version": 1}}],
    ids=["if-match", "body-version"],
)
def test_stale_version__409_and_nothing_changes(
    api: Client, flag: Flag, production: Environment, conditional: dict[str, Any]
) -> None:
    # Given someone else changed the state after we read version 1
    send(api, "PATCH", STATE, {"rules": [RULE_FR]})
    environment_version = refreshed(production).version
    events = AuditEvent.objects.count()

    # When we write with what we read
    body = {"enabled": True, "default_serve": SPLIT_25, **conditional.get("body", {})}
    response = send(api, "PUT", STATE, body, **conditional.get("headers", {}))

    # Then: a conflict, and nothing changed anywhere
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "version_conflict"
    assert "version 2, not 1" in error["message"] and "Re-read" in error["message"]
    state = _state(flag, production)
    assert (state.enabled, state.default_serve, state.version) == (False, {"variant": "on"}, 2)
    assert refreshed(production).version == environment_version
    assert AuditEvent.objects.count() == events


def test_current_if_match__write_happens(api: Client, flag: Flag) -> None:
    response = send(api, "PATCH", STATE, {"enabled": True}, **{"If-Match": 'W/"1"'})
    assert response.status_code == 200 and response.json()["version"] == 2


def test_no_version_given__last_write_wins(api: Client, flag: Flag) -> None:
    assert send(api, "PATCH", STATE, {"enabled": True}).json()["version"] == 2
    second = send(api, "PATCH", STATE, {"enabled": False})
    assert second.status_code == 200 and second.json()["version"] == 3
    current = send(api, "GET", STATE).json()
    assert current["enabled"] is False and current["version"] == 3


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"If-Match": "version-one"}, {}), ({"If-Match": '"1"'}, {"version": 2})],
    ids=["not-an-etag", "header-and-body-disagree"],
)
def test_bad_if_match__400_names_the_header(
    api: Client, flag: Flag, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = send(api, "PATCH", STATE, {"enabled": True, **body}, **headers)
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["If-Match"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": "true"}, "enabled"),
        ({"default_serve": {"variant": "maybe"}}, "default_serve.variant"),
        ({"rules": {"id": "x"}}, "rules"),
        (
            {"rules": [{"conditions": [{"operator": "nope"}], "serve": {"variant": "on"}}]},
            "rules[0].conditions[0].operator",
        ),
        ({"default_serve": {"split": [{"variant": "on", "weight": 0}]}}, "default_serve.split"),
        ({"prerequisites": [{"flag": "missing", "variant": "on"}]}, "prerequisites[0].flag"),
        ({"kill": None}, "kill"),
        ({"enabeld": True}, "enabeld"),
    ],
)
def test_invalid_state__400_names_the_field_and_nothing_changes(
    api: Client, flag: Flag, production: Environment, body: dict[str, Any], field: str
) -> None:
    response = send(api, "PATCH", STATE, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed" and field in error["fields"], error
    assert _state(flag, production).version == 1


def test_write_to_killed_flag__keeps_the_kill(
    api: Client, flag: Flag, production: Environment, actor: Actor
) -> None:
    services.flag_kill(actor=actor, flag=flag, environment=production, reason="incident")
    response = send(api, "PATCH", STATE, {"enabled": True})
    assert response.status_code == 200
    assert response.json()["kill"]["reason"] == "incident"
    assert _state(flag, production).killed


def test_write_to_archived_flag__409(api: Client, flag: Flag, actor: Actor) -> None:
    services.flag_archive(actor=actor, flag=flag)
    response = send(api, "PATCH", STATE, {"enabled": True})
    assert response.status_code == 409 and error_of(response)["code"] == "flag_archived"

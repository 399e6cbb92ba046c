"""Environments over the API: list, create (optionally copied), read, rename."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from audit.models import AuditEvent
from flags.models import Environment, Flag, FlagState
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db


def test_list__in_order_with_versions(api: Client, environments: dict[str, Environment]) -> None:
    body = send(api, "GET", "/api/v1/environments/").json()
    assert [e["key"] for e in body] == ["development", "staging", "production"]
    assert body[2]["version"] == Environment.objects.get(key="production").version
    assert set(body[0]) == {"key", "name", "description", "version", "created_at"}


def test_create__201_with_location_and_a_state_for_every_flag(
    api: Client, make_flag: Callable[..., Flag]
) -> None:
    make_flag("new-checkout")
    response = send(
        api, "POST", "/api/v1/environments/", {"key": "qa", "name": "QA", "reason": "testing"}
    )
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/environments/qa/"
    assert response.json()["name"] == "QA"
    assert FlagState.objects.filter(environment__key="qa").count() == 1
    assert AuditEvent.objects.get(action="environment.create", target_key="qa").reason == "testing"


def test_create__copy_from__copies_states(
    api: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    make_flag("new-checkout")
    send(api, "PATCH", "/api/v1/flags/new-checkout/environments/production/", {"enabled": True})
    response = send(
        api, "POST", "/api/v1/environments/", {"key": "production-eu", "copy_from": "production"}
    )
    assert response.status_code == 201
    assert FlagState.objects.get(environment__key="production-eu").enabled


def test_create__copy_from_unknown__400_names_the_field(api: Client) -> None:
    response = send(api, "POST", "/api/v1/environments/", {"key": "qa", "copy_from": "prod"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["fields"] == {"copy_from": "no environment 'prod'"}
    assert not Environment.objects.filter(key="qa").exists()


def test_create__existing_key__409_already_exists(api: Client) -> None:
    response = send(api, "POST", "/api/v1/environments/", {"key": "production"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "already_exists"


def test_create__bad_key__400_says_the_pattern(api: Client) -> None:
    response = send(api, "POST", "/api/v1/environments/", {"key": "Prod EU"})
    assert response.status_code == 400
    assert "lowercase" in error_of(response)["message"]


def test_get__unknown__404_says_how_to_list(api: Client, environments: object) -> None:
    response = send(api, "GET", "/api/v1/environments/prod/")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found" and "GET /api/v1/environments/" in error["message"]


def test_patch__renames_and_audits_with_the_header_reason(api: Client) -> None:
    response = send(
        api,
        "PATCH",
        "/api/v1/environments/production/",
        {"name": "Production (EU)"},
        **{"X-Reason": "rename"},
    )
    assert response.status_code == 200 and response.json()["name"] == "Production (EU)"
    event = AuditEvent.objects.get(action="environment.update")
    assert event.reason == "rename" and event.after["name"] == "Production (EU)"


def test_patch__key__400_key_is_fixed(api: Client) -> None:
    response = send(api, "PATCH", "/api/v1/environments/production/", {"key": "prod"})
    assert response.status_code == 400
    assert error_of(response)["fields"] == {
        "key": "an environment's key is fixed (SDK keys and URLs use it)"
    }

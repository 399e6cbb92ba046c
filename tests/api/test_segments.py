"""Segments over the API: per-environment audiences, created, changed and deleted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag, Segment
from tests.api.conftest import error_of, send
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db

SEGMENTS = "/api/v1/environments/production/segments/"
EMAIL_RULE = {"conditions": [{"attribute": "email", "operator": "ends_with", "value": "@acme.com"}]}


@pytest.fixture
def staff(actor: Actor, production: Environment) -> Segment:
    return services.segment_create(
        actor=actor, environment=production, key="staff", included=["u1"]
    )


def test_create__201_bumps_the_environment_and_audits(api: Client, production: Environment) -> None:
    version = refreshed(production).version
    response = send(
        api,
        "POST",
        SEGMENTS,
        {"key": "beta", "name": "Beta", "included": ["u1"], "rules": [EMAIL_RULE]},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["environment"] == "production" and body["rules"] == [EMAIL_RULE]
    assert body["environment_version"] == version + 1
    assert response.headers["Location"] == SEGMENTS + "beta/"
    assert AuditEvent.objects.filter(action="segment.create").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "beta", "included": "u1"}, "included"),
        ({"key": "beta", "included": [1]}, "included"),
        (
            {"key": "beta", "rules": [{"conditions": [{"operator": "in_segment", "value": "x"}]}]},
            "rules[0].conditions[0].operator",
        ),
        ({"key": "Beta!"}, "key"),
    ],
)
def test_create__invalid__400_names_the_field(
    api: Client, production: Environment, body: dict[str, object], field: str
) -> None:
    response = send(api, "POST", SEGMENTS, body)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Segment.objects.exists()


def test_create__existing_key__409(api: Client, staff: Segment) -> None:
    response = send(api, "POST", SEGMENTS, {"key": "staff"})
    assert response.status_code == 409


def test_list_and_get(api: Client, staff: Segment) -> None:
    assert [s["key"] for s in send(api, "GET", SEGMENTS).json()] == ["staff"]
    assert send(api, "GET", SEGMENTS + "staff/").json()["included"] == ["u1"]
    assert send(api, "GET", "/api/v1/environments/staging/segments/").json() == []


def test_get__unknown__404(api: Client, staff: Segment) -> None:
    response = send(api, "GET", "/api/v1/environments/staging/segments/staff/")
    assert response.status_code == 404
    assert "No segment 'staff' in staging" in error_of(response)["message"]


def test_patch__changes_the_segment(api: Client, staff: Segment) -> None:
    response = send(api, "PATCH", SEGMENTS + "staff/", {"included": ["u1", "u2"]})
    assert response.status_code == 200 and response.json()["included"] == ["u1", "u2"]
    assert Segment.objects.get().included == ["u1", "u2"]


def test_delete__204_and_gone(api: Client, staff: Segment) -> None:
    response = send(api, "DELETE", SEGMENTS + "staff/", {"reason": "unused"})
    assert response.status_code == 204
    assert not Segment.objects.exists()
    assert AuditEvent.objects.get(action="segment.delete").reason == "unused"


def test_delete__used_by_a_flag__400_and_kept(
    api: Client,
    staff: Segment,
    make_flag: Callable[..., Flag],
    production: Environment,
    actor: Actor,
) -> None:
    services.flag_state_update(
        actor=actor,
        flag=make_flag("new-checkout"),
        environment=production,
        rules=[
            {
                "conditions": [{"operator": "in_segment", "value": "staff"}],
                "serve": {"variant": "on"},
            }
        ],
    )
    response = send(api, "DELETE", SEGMENTS + "staff/")
    assert response.status_code == 400
    assert "used by new-checkout" in error_of(response)["message"]
    assert Segment.objects.exists()

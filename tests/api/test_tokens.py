"""Tokens over the API: issued once, listed without their values, revoked for good."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from flags.models import ApiToken, Environment
from flags.tokens import token_digest
from tests.api.conftest import bearer, error_of, send

pytestmark = pytest.mark.django_db


def test_create__201_shows_the_token_once_and_it_works(
    api: Client, environments: dict[str, Environment]
) -> None:
    response = send(api, "POST", "/api/v1/tokens/", {"name": "deploy-bot", "kind": "admin"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    raw = body["token"]
    assert raw.startswith("fsv_admin_") and body["hint"] == raw[-4:]
    assert body["environment"] is None and not body["revoked"]
    assert send(bearer(raw), "GET", "/api/v1/flags/").status_code == 200


def test_create__server_key_for_an_environment(
    api: Client, environments: dict[str, Environment]
) -> None:
    response = send(
        api,
        "POST",
        "/api/v1/tokens/",
        {"name": "checkout", "kind": "server", "environment": "production"},
    )
    assert response.status_code == 201
    assert response.json()["environment"] == "production"
    assert response.json()["token"].startswith("fsv_server_")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "checkout", "kind": "server"}, "environment"),
        ({"name": "ops", "kind": "admin", "environment": "production"}, "environment"),
        ({"name": "checkout", "kind": "server", "environment": "prod"}, "environment"),
        ({"name": "x", "kind": "root"}, "kind"),
        ({"kind": "admin"}, "name"),
    ],
)
def test_create__invalid__400_names_the_field_and_issues_nothing(
    api: Client, environments: dict[str, Environment], body: dict[str, str], field: str
) -> None:
    count = ApiToken.objects.count()
    response = send(api, "POST", "/api/v1/tokens/", body)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert ApiToken.objects.count() == count


def test_list_and_audit__never_contain_the_raw_token_or_its_digest(
    api: Client, admin_token: str, environments: dict[str, Environment]
) -> None:
    issued = send(
        api,
        "POST",
        "/api/v1/tokens/",
        {"name": "checkout", "kind": "server", "environment": "staging"},
    ).json()["token"]
    listing = send(api, "GET", "/api/v1/tokens/")
    single = send(api, "GET", f"/api/v1/tokens/{ApiToken.objects.get(name='checkout').pk}/")
    audit = send(api, "GET", "/api/v1/audit/?format=jsonl")
    exported = b"".join(audit.streaming_content).decode()
    for raw in (issued, admin_token):
        for secret in (raw, token_digest(raw)):
            assert secret not in listing.content.decode()
            assert secret not in single.content.decode()
            assert secret not in exported
    assert {t["name"] for t in listing.json()} == {"ci-bot", "checkout"}
    assert "digest" not in listing.json()[0] and "token" not in listing.json()[0]


def test_list__filters_by_kind_and_revoked(api: Client, issue: object) -> None:
    send(api, "POST", "/api/v1/tokens/", {"name": "pager", "kind": "kill"})
    assert [t["name"] for t in send(api, "GET", "/api/v1/tokens/?kind=kill").json()] == ["pager"]
    assert send(api, "GET", "/api/v1/tokens/?revoked=true").json() == []
    response = send(api, "GET", "/api/v1/tokens/?kind=root")
    assert response.status_code == 400 and list(error_of(response)["fields"]) == ["kind"]


def test_revoke__token_stops_working_and_is_audited(api: Client) -> None:
    raw = send(api, "POST", "/api/v1/tokens/", {"name": "temp", "kind": "admin"}).json()["token"]
    token = ApiToken.objects.get(name="temp")
    response = send(api, "POST", f"/api/v1/tokens/{token.pk}/revoke/", {"reason": "leaked"})
    assert response.status_code == 200
    assert response.json()["revoked"] and response.json()["revoked_by"] == "ci-bot"
    assert send(bearer(raw), "GET", "/api/v1/flags/").status_code == 401
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.reason == "leaked" and event.after["revoked"] is True


def test_revoke__unknown_id__404(api: Client) -> None:
    response = send(api, "POST", "/api/v1/tokens/99999/revoke/")
    assert response.status_code == 404 and "No token with id 99999" in error_of(response)["message"]

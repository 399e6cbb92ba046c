"""Who may call the management API: bearer tokens, sessions, request ids in the audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import ApiToken, Flag
from tests.api.conftest import bearer, error_of, send

pytestmark = pytest.mark.django_db


def test_admin_token__lists_environments(api: Client) -> None:
    response = send(api, "GET", "/api/v1/environments/")
    assert response.status_code == 200
    assert [e["key"] for e in response.json()] == ["development", "staging", "production"]


def test_no_credentials__401_says_how_to_authenticate(db: None) -> None:
    response = send(Client(), "GET", "/api/v1/flags/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = error_of(response)
    assert error["code"] == "not_authenticated"
    assert "Authorization: Bearer" in error["message"]


def test_unknown_token__401_says_to_check_or_issue_one(db: None) -> None:
    response = send(bearer("fsv_admin_not-a-real-token"), "GET", "/api/v1/flags/")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_token"
    assert "Unknown token" in error["message"] and "issue" in error["message"]


def test_revoked_token__401_names_it_and_says_issue_a_new_one(
    admin_token: str, actor: Actor
) -> None:
    services.token_revoke(actor=actor, token=ApiToken.objects.get(name="ci-bot"))
    response = send(bearer(admin_token), "GET", "/api/v1/flags/")
    assert response.status_code == 401
    assert "token 'ci-bot' was revoked; issue a new one" in error_of(response)["message"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer two tokens", "Bearer  "])
def test_malformed_bearer_header__401(db: None, header: str) -> None:
    response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/flags/")
    assert response.status_code == 401
    assert error_of(response)["code"] in ("invalid_token", "not_authenticated")


def test_superuser_session__may_write_and_is_the_audit_actor(
    admin_client: Client, make_flag: Callable[..., Flag]
) -> None:
    make_flag("new-checkout")
    response = send(
        admin_client,
        "PATCH",
        "/api/v1/flags/new-checkout/environments/production/",
        {"enabled": True, "reason": "launch"},
    )
    assert response.status_code == 200, response.json()
    event = AuditEvent.objects.get(action="flag_state.update")
    assert (event.actor, event.actor_kind, event.reason) == ("admin", "user", "launch")


def test_non_staff_session__403_says_a_staff_account_is_needed(db: None) -> None:
    user = User.objects.create_user("visitor", password="x")
    client = Client()
    client.force_login(user)
    response = send(client, "GET", "/api/v1/flags/")
    assert response.status_code == 403
    assert "not a staff account" in error_of(response)["message"]


def test_staff_session_write__needs_the_csrf_token(
    admin_user: User, environments: dict[str, object]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    refused = send(client, "POST", "/api/v1/environments/", {"key": "qa"})
    assert refused.status_code == 403
    error = error_of(refused)
    assert error["code"] == "csrf_failed" and "X-CSRFToken" in error["message"]

    client.get("/admin/")  # any page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = send(
        client, "POST", "/api/v1/environments/", {"key": "qa"}, **{"X-CSRFToken": token}
    )
    assert accepted.status_code == 201


def test_token_write__audit_event_names_token_request_id_and_address(
    api: Client, make_flag: Callable[..., Flag]
) -> None:
    make_flag("new-checkout")
    response = send(
        api,
        "PATCH",
        "/api/v1/flags/new-checkout/environments/production/",
        {"enabled": True},
        **{"X-Request-ID": "deploy-4711", "X-Reason": "ship it"},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "deploy-4711"
    event = AuditEvent.objects.get(action="flag_state.update")
    assert (event.actor, event.actor_kind) == ("ci-bot", "token")
    assert (event.request_id, event.source_ip, event.reason) == (
        "deploy-4711",
        "127.0.0.1",
        "ship it",
    )


def test_request_id__too_long_or_missing__a_fresh_one_is_answered(api: Client) -> None:
    generated = send(api, "GET", "/api/v1/environments/").headers["X-Request-ID"]
    replaced = send(api, "GET", "/api/v1/environments/", **{"X-Request-ID": "x" * 65})
    assert len(generated) == 32 and generated.isalnum()
    assert replaced.headers["X-Request-ID"] != "x" * 65
    assert len(replaced.headers["X-Request-ID"]) == 32

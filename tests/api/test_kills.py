"""The kill-switch endpoints: kill/restore a flag or a tag, list active kills, trigger URLs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag, FlagState, KillTrigger
from tests.api.conftest import bearer, error_of, send
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db

KILL = "/api/v1/flags/new-checkout/kill/"
RESTORE = "/api/v1/flags/new-checkout/restore/"


@pytest.fixture
def kill_key(issue: Callable[..., str]) -> Client:
    return bearer(issue("kill", name="pager"))


@pytest.fixture
def checkout(make_flag: Callable[..., Flag]) -> Flag:
    return make_flag("new-checkout", tags=["payments"])


def test_kill__answers_the_kill_and_the_new_environment_version(
    kill_key: Client, checkout: Flag, production: Environment
) -> None:
    response = send(
        kill_key, "POST", KILL, {"environment": "production", "reason": "checkout 500s"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["changed"] is True and body["killed"] is True
    assert body["kill"]["by"] == "pager" and body["kill"]["reason"] == "checkout 500s"
    assert body["environment_version"] == refreshed(production).version
    event = AuditEvent.objects.get(action="flag.kill")
    assert (event.actor, event.actor_kind, event.reason) == ("pager", "token", "checkout 500s")


def test_kill__already_killed__200_with_the_existing_kill_and_nothing_written(
    kill_key: Client, checkout: Flag, production: Environment
) -> None:
    first = send(kill_key, "POST", KILL, {"environment": "production", "reason": "first"}).json()
    events = AuditEvent.objects.count()
    second = send(kill_key, "POST", KILL, {"environment": "production", "reason": "second"})
    assert second.status_code == 200
    body = second.json()
    assert body["changed"] is False and body["kill"] == first["kill"]
    assert body["environment_version"] == first["environment_version"]
    assert AuditEvent.objects.count() == events


def test_restore__lifts_the_kill(kill_key: Client, checkout: Flag, production: Environment) -> None:
    send(kill_key, "POST", KILL, {"environment": "production", "reason": "incident"})
    response = send(
        kill_key, "POST", RESTORE, {"environment": "production", "reason": "fixed in 4.2.1"}
    )
    assert (
        response.status_code == 200
        and response.json()["killed"] is False
        and response.json()["changed"] is True
    )
    assert not FlagState.objects.get(flag=checkout, environment=production).killed


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"environment": "production"}, "reason", "required"),
        ({"environment": "production", "reason": "x" * 501}, "reason", "500"),
        ({"reason": "r"}, "environment", "required"),
        ({"environment": "prod", "reason": "r"}, "environment", "no environment 'prod'"),
        ({"environment": "production", "reason": "r", "force": True}, "force", "unknown field"),
    ],
)
def test_kill__bad_input__400_naming_the_field_and_nothing_changes(
    kill_key: Client,
    checkout: Flag,
    production: Environment,
    body: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    response = send(kill_key, "POST", KILL, body)
    assert response.status_code == 400
    error = error_of(response)
    assert field in error["fields"] and fragment in (error["fields"][field] + error["message"])
    assert not FlagState.objects.filter(killed_at__isnull=False).exists()


def test_kill__unknown_flag__404(kill_key: Client, production: Environment) -> None:
    response = send(
        kill_key, "POST", "/api/v1/flags/nope/kill/", {"environment": "production", "reason": "r"}
    )
    assert response.status_code == 404 and "No flag 'nope'" in error_of(response)["message"]


def test_kill_key_bound_to_an_environment__acts_there_without_naming_it(
    issue: Callable[..., str], checkout: Flag, production: Environment
) -> None:
    bound = bearer(issue("kill", name="prod-pager", environment="production"))
    assert send(bound, "POST", KILL, {"reason": "r"}).json()["environment"] == "production"
    refused = send(bound, "POST", RESTORE, {"environment": "staging", "reason": "r"})
    assert refused.status_code == 403 and "bound to 'production'" in error_of(refused)["message"]


def test_tag_kill__kills_every_tagged_flag_under_one_incident(
    kill_key: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    for key in ("pay-a", "pay-b"):
        make_flag(key, tags=["payments"])
    make_flag("search", tags=["search"])
    response = send(
        kill_key,
        "POST",
        "/api/v1/kill/",
        {"tag": "payments", "environment": "production", "reason": "PSP down"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] == ["pay-a", "pay-b"] and body["incident"]
    events = AuditEvent.objects.filter(action="flag.kill")
    assert {str(e.incident_id) for e in events} == {body["incident"]}
    restored = send(
        kill_key,
        "POST",
        "/api/v1/restore/",
        {"tag": "payments", "environment": "production", "reason": "PSP back"},
    )
    assert restored.json()["changed"] == ["pay-a", "pay-b"]


def test_tag_kill__unknown_tag__404(
    kill_key: Client, checkout: Flag, production: Environment
) -> None:
    response = send(
        kill_key,
        "POST",
        "/api/v1/kill/",
        {"tag": "nope", "environment": "production", "reason": "r"},
    )
    assert response.status_code == 404 and "tag 'nope'" in error_of(response)["message"]


def test_kills_list__who_when_why_how_long(
    kill_key: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    a, b = make_flag("a"), make_flag("b")
    services.flag_kill(
        actor=Actor.cli("alice"), flag=a, environment=environments["production"], reason="one"
    )
    services.flag_kill(
        actor=Actor.cli("bob"), flag=b, environment=environments["staging"], reason="two"
    )
    kills = send(kill_key, "GET", "/api/v1/kills/").json()["kills"]
    assert {(k["flag"], k["environment"], k["kill"]["by"], k["kill"]["reason"]) for k in kills} == {
        ("a", "production", "alice", "one"),
        ("b", "staging", "bob", "two"),
    }
    assert all(k["killed_for_seconds"] >= 0 for k in kills)
    only = send(kill_key, "GET", "/api/v1/kills/?environment=staging").json()["kills"]
    assert [k["flag"] for k in only] == ["b"]


def test_trigger__create_shows_an_unguessable_url_once(
    api: Client, checkout: Flag, production: Environment
) -> None:
    response = send(
        api,
        "POST",
        "/api/v1/triggers/",
        {"name": "datadog", "flag": "new-checkout", "environment": "production"},
    )
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    url = response.json()["url"]
    secret = re.search(r"/api/v1/triggers/([^/]+)/$", url).group(1)  # type: ignore[union-attr]
    assert len(secret) - len("fsv_trigger_") >= 43  # >= 256 bits base64url
    listed = send(api, "GET", "/api/v1/triggers/").json()["triggers"]
    assert secret not in str(listed) and listed[0]["hint"] == secret[-4:]


def test_trigger__fire_needs_no_credential_and_records_name_and_caller(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    _, secret = services.trigger_create(
        actor=actor, name="datadog", flag=checkout, environment=production
    )
    response = Client(REMOTE_ADDR="198.51.100.7").post(
        f"/api/v1/triggers/{secret}/",
        data='{"title": "5xx rate above 5%"}',
        content_type="text/plain",
    )
    assert response.status_code == 200 and response.json()["killed"] is True
    event = AuditEvent.objects.get(action="flag.kill")
    assert (event.actor, event.source_ip) == ("trigger:datadog", "198.51.100.7")
    assert "5xx rate above 5%" in event.reason


def test_trigger__wrong_or_revoked_secret__404(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    trigger, secret = services.trigger_create(
        actor=actor, name="datadog", flag=checkout, environment=production
    )
    assert Client().post("/api/v1/triggers/fsv_trigger_wrong/").status_code == 404
    assert Client().post(f"/api/v1/triggers/{secret[:-1]}x/").status_code == 404
    services.trigger_revoke(actor=actor, trigger=trigger)
    response = Client().post(f"/api/v1/triggers/{secret}/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert not FlagState.objects.get(flag=checkout, environment=production).killed


def test_trigger__rate_limited_with_retry_after(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    _, secret = services.trigger_create(
        actor=actor, name="noisy", flag=checkout, environment=production
    )
    statuses = [Client().post(f"/api/v1/triggers/{secret}/").status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30
    limited = Client().post(f"/api/v1/triggers/{secret}/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert error_of(limited)["code"] == "throttled"
    # every firing that got through is on the audit trail
    assert AuditEvent.objects.filter(actor="trigger:noisy").count() == 30


def test_trigger_revoke_endpoint(
    api: Client, checkout: Flag, production: Environment, actor: Actor
) -> None:
    trigger, _ = services.trigger_create(
        actor=actor, name="datadog", flag=checkout, environment=production
    )
    response = send(api, "POST", f"/api/v1/triggers/{trigger.pk}/revoke/", {"reason": "rotated"})
    assert response.status_code == 200 and response.json()["revoked"] is True
    assert KillTrigger.objects.get().revoked


def test_trigger__unknown_secrets_rate_limited_per_address(
    checkout: Flag, production: Environment, actor: Actor
) -> None:
    _, secret = services.trigger_create(
        actor=actor, name="datadog", flag=checkout, environment=production
    )
    guesses = [
        Client(REMOTE_ADDR="203.0.113.9").post(f"/api/v1/triggers/fsv_trigger_guess{n}/")
        for n in range(61)
    ]
    assert [r.status_code for r in guesses] == [404] * 60 + [429]
    assert error_of(guesses[-1])["code"] == "throttled" and int(guesses[-1]["Retry-After"]) > 0
    # Another address still gets its 404s, and the real URL still fires from the guesser's
    assert Client(REMOTE_ADDR="203.0.113.10").post("/api/v1/triggers/nope/").status_code == 404
    fired = Client(REMOTE_ADDR="203.0.113.9").post(f"/api/v1/triggers/{secret}/")
    assert fired.status_code == 200 and fired.json()["killed"] is True

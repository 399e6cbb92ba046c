"""The scope matrix: every endpoint by every kind of caller, allowed or refused.

Written as data: an endpoint lists the callers it allows; every other caller must
be refused (401 without valid credentials, 403 with the wrong kind) and change
nothing. Kill and SDK-edge endpoints join by adding rows (with ``allowed`` naming
``kill``, ``server`` or ``client``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import guardrails, rollouts, services, webhooks
from flags.models import ApiToken, Environment, Flag
from tests.api.conftest import bearer, error_of, send

pytestmark = pytest.mark.django_db

ADMIN = frozenset({"admin", "staff"})
KILL = ADMIN | {"kill", "kill (production)"}
EVERYONE = frozenset(
    {
        "admin",
        "staff",
        "server",
        "client",
        "kill",
        "kill (production)",
        "kill (staging)",
        "non-staff user",
        "no token",
        "revoked admin",
    }
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {token_id} is filled in with a token that exists
    body: Any = None
    allowed: frozenset[str] = field(default=ADMIN)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


STATE = "/api/v1/flags/new-checkout/environments/production/"
SEGMENT = "/api/v1/environments/production/segments/staff/"
PLAN = "/api/v1/flags/new-checkout/environments/production/rollout-plan/"
GUARDRAILS = "/api/v1/flags/new-checkout/environments/production/guardrails/"
WEBHOOKS = "/api/v1/environments/production/webhooks/"
ENDPOINTS = [
    Endpoint("GET", "/api/v1/environments/"),
    Endpoint("POST", "/api/v1/environments/", {"key": "qa"}),
    Endpoint("GET", "/api/v1/environments/production/"),
    Endpoint("PATCH", "/api/v1/environments/production/", {"name": "Prod"}),
    Endpoint("GET", "/api/v1/flags/"),
    Endpoint("POST", "/api/v1/flags/", {"key": "other-flag"}),
    Endpoint("GET", "/api/v1/flags/new-checkout/"),
    Endpoint("PATCH", "/api/v1/flags/new-checkout/", {"owner": "payments"}),
    Endpoint("DELETE", "/api/v1/flags/new-checkout/"),
    Endpoint("POST", "/api/v1/flags/new-checkout/archive/"),
    Endpoint("POST", "/api/v1/flags/retired/unarchive/"),
    Endpoint("GET", STATE),
    Endpoint("PUT", STATE, {"enabled": True, "default_serve": {"variant": "on"}}),
    Endpoint("PATCH", STATE, {"enabled": True}),
    Endpoint("GET", "/api/v1/environments/production/segments/"),
    Endpoint("POST", "/api/v1/environments/production/segments/", {"key": "beta"}),
    Endpoint("GET", SEGMENT),
    Endpoint("PATCH", SEGMENT, {"included": ["user-2"]}),
    Endpoint("DELETE", SEGMENT),
    Endpoint("GET", "/api/v1/tokens/"),
    Endpoint("POST", "/api/v1/tokens/", {"name": "deploy", "kind": "admin"}),
    Endpoint("GET", "/api/v1/tokens/{token_id}/"),
    Endpoint("POST", "/api/v1/tokens/{token_id}/revoke/"),
    Endpoint("GET", "/api/v1/audit/"),
    Endpoint("GET", "/api/v1/audit/?format=csv"),
    Endpoint("GET", "/api/v1/audit/?format=jsonl"),
    # The kill switch: kill keys too (a bound one only in its own environment).
    Endpoint(
        "POST",
        "/api/v1/flags/new-checkout/kill/",
        {"environment": "production", "reason": "r"},
        KILL,
    ),
    Endpoint(
        "POST",
        "/api/v1/flags/new-checkout/restore/",
        {"environment": "production", "reason": "r"},
        KILL,
    ),
    Endpoint(
        "POST",
        "/api/v1/kill/",
        {"tag": "payments", "environment": "production", "reason": "r"},
        KILL,
    ),
    Endpoint(
        "POST",
        "/api/v1/restore/",
        {"tag": "payments", "environment": "production", "reason": "r"},
        KILL,
    ),
    Endpoint("GET", "/api/v1/kills/?environment=production", allowed=KILL),
    Endpoint("GET", "/api/v1/triggers/"),
    Endpoint(
        "POST",
        "/api/v1/triggers/",
        {"name": "apm", "flag": "new-checkout", "environment": "production"},
    ),
    Endpoint("POST", "/api/v1/triggers/{trigger_id}/revoke/"),
    # A trigger URL's secret is its credential: whoever holds it may fire it.
    Endpoint("POST", "/api/v1/triggers/{trigger_secret}/", allowed=EVERYONE),
    # Scheduled ramp-ups: management, so admin only.
    Endpoint("GET", PLAN),
    Endpoint("PUT", PLAN, {"steps": [{"percentage": 10}]}),
    Endpoint("DELETE", PLAN),
    Endpoint("POST", PLAN + "pause/"),
    Endpoint("POST", PLAN + "resume/"),
    Endpoint("POST", PLAN + "abort/"),
    Endpoint("POST", PLAN + "skip/", {"step": 2}),
    # Guardrails and webhooks: management, so admin only.
    Endpoint("GET", GUARDRAILS),
    Endpoint("POST", GUARDRAILS, {"name": "latency", "query": "up", "threshold": 1}),
    Endpoint("GET", GUARDRAILS + "errors/"),
    Endpoint("PATCH", GUARDRAILS + "errors/", {"enabled": False}),
    Endpoint("DELETE", GUARDRAILS + "errors/"),
    Endpoint("POST", GUARDRAILS + "errors/evaluate/"),
    Endpoint("GET", WEBHOOKS),
    Endpoint("POST", WEBHOOKS, {"name": "chat", "url": "https://chat.example.com/hook"}),
    Endpoint("GET", WEBHOOKS + "{webhook_id}/"),
    Endpoint("PATCH", WEBHOOKS + "{webhook_id}/", {"enabled": False}),
    Endpoint("DELETE", WEBHOOKS + "{webhook_id}/"),
    Endpoint("POST", WEBHOOKS + "{webhook_id}/rotate-secret/", {"overlap_hours": 1}),
    Endpoint("GET", WEBHOOKS + "{webhook_id}/deliveries/"),
]

# Who calls, and the status a refusal must have. "kill (staging)" is a kill key bound to
# another environment than the one the kill endpoints act on.
CALLERS = {
    "admin": 403,
    "staff": 403,
    "server": 403,
    "client": 403,
    "kill": 403,
    "kill (production)": 403,
    "kill (staging)": 403,
    "non-staff user": 403,
    "no token": 401,
    "revoked admin": 401,
}
assert set(CALLERS) == EVERYONE


@pytest.fixture
def world(
    actor: Actor, environments: dict[str, Environment], make_flag: Callable[..., Flag]
) -> dict[str, Any]:
    production = environments["production"]
    make_flag("new-checkout", tags=["payments"])
    services.flag_archive(actor=actor, flag=make_flag("retired"))
    services.segment_create(actor=actor, environment=production, key="staff", included=["u1"])
    rollouts.rollout_plan_create(
        actor=actor,
        flag=Flag.objects.get(key="new-checkout"),
        environment=production,
        steps=[{"percentage": 1}, {"percentage": 5, "after": "1h"}],
    )

    def issue(kind: str, name: str, environment: Environment | None = None) -> tuple[ApiToken, str]:
        return services.token_issue(actor=actor, kind=kind, name=name, environment=environment)

    tokens = {
        "admin": issue("admin", "ci-bot")[1],
        "server": issue("server", "checkout-service", production)[1],
        "client": issue("client", "web", production)[1],
        "kill": issue("kill", "pager")[1],
        "kill (production)": issue("kill", "pager-production", production)[1],
        "kill (staging)": issue("kill", "pager-staging", environments["staging"])[1],
    }
    revoked, tokens["revoked admin"] = issue("admin", "old-bot")
    services.token_revoke(actor=actor, token=revoked)
    target, _ = issue("server", "to-inspect", production)
    trigger, secret = services.trigger_create(
        actor=actor, name="apm", flag=Flag.objects.get(key="new-checkout"), environment=production
    )
    guardrails.guardrail_create(
        actor=actor,
        flag=Flag.objects.get(key="new-checkout"),
        environment=production,
        name="errors",
        query="up",
        threshold=1,
    )
    webhook, _ = webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url="https://ops.example.com/hook"
    )
    return {
        "tokens": tokens,
        "webhook_id": webhook.pk,
        "token_id": target.pk,
        "trigger_id": trigger.pk,
        "trigger_secret": secret,
    }


def _client(who: str, world: dict[str, Any]) -> Client:
    if who == "staff":
        client = Client()
        client.force_login(User.objects.create_superuser("root", password="x"))
        return client
    if who == "non-staff user":
        client = Client()
        client.force_login(User.objects.create_user("visitor", password="x"))
        return client
    if who == "no token":
        return Client()
    return bearer(world["tokens"][who])


@pytest.mark.parametrize("who", list(CALLERS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_scope_matrix(endpoint: Endpoint, who: str, world: dict[str, Any]) -> None:
    # Given a world where every endpoint has something to act on
    path = endpoint.path.format(
        token_id=world["token_id"],
        trigger_id=world["trigger_id"],
        trigger_secret=world["trigger_secret"],
        webhook_id=world["webhook_id"],
    )
    events_before = AuditEvent.objects.count()

    # When this caller calls it
    response = send(_client(who, world), endpoint.method, path, endpoint.body)

    # Then it is allowed, or refused with the right status and nothing changes
    if who in endpoint.allowed:
        assert response.status_code < 400, (response.status_code, response.content[:300])
        return
    assert response.status_code == CALLERS[who], response.content[:300]
    error = error_of(response)
    if who in ("server", "client", "kill"):
        assert "needs an admin token" in error["message"]
    if who == "kill (staging)" and endpoint.allowed == KILL:
        assert "bound to 'staging'" in error["message"]
    assert AuditEvent.objects.count() == events_before


def test_wrong_kind_message__says_what_the_token_is_for(world: dict[str, Any]) -> None:
    response = send(bearer(world["tokens"]["kill"]), "GET", "/api/v1/flags/")
    message = error_of(response)["message"]
    assert "a kill key ('pager')" in message
    assert "kill, restore and the list of active kills" in message

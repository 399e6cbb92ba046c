"""Session users get exactly their Django permissions on the API; tokens are allowed by kind."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from audit.models import AuditEvent
from flags.api.permissions import KILL_KINDS, environment_scope_check, model_permissions
from flags.models import ApiToken, Flag, FlagState
from tests.api.conftest import error_of, send
from tests.api.test_scope import (  # noqa: F401
    ENDPOINTS,
    EVERYONE,
    GUARDRAILS,
    WEBHOOKS,
    Endpoint,
    world,
)

pytestmark = pytest.mark.django_db

STATE = "/api/v1/flags/new-checkout/environments/production/"
SEGMENT = "/api/v1/environments/production/segments/staff/"
PLAN = "/api/v1/flags/new-checkout/environments/production/rollout-plan/"
PLAN_ACTIONS = ("pause/", "resume/", "abort/", "skip/")

# The permissions each endpoint of the scope matrix needs from a session, and no others.
NEEDS: dict[str, tuple[str, ...]] = {
    "GET /api/v1/environments/": ("flags.view_environment",),
    "POST /api/v1/environments/": ("flags.add_environment",),
    "GET /api/v1/environments/production/": ("flags.view_environment",),
    "PATCH /api/v1/environments/production/": ("flags.change_environment",),
    "GET /api/v1/flags/": ("flags.view_flag",),
    "POST /api/v1/flags/": ("flags.add_flag",),
    "GET /api/v1/flags/new-checkout/": ("flags.view_flag",),
    "PATCH /api/v1/flags/new-checkout/": ("flags.change_flag",),
    "DELETE /api/v1/flags/new-checkout/": ("flags.delete_flag",),
    "POST /api/v1/flags/new-checkout/archive/": ("flags.delete_flag",),
    "POST /api/v1/flags/retired/unarchive/": ("flags.add_flag",),
    f"GET {STATE}": ("flags.view_flagstate",),
    f"PUT {STATE}": ("flags.change_flagstate",),
    f"PATCH {STATE}": ("flags.change_flagstate",),
    "GET /api/v1/environments/production/segments/": ("flags.view_segment",),
    "POST /api/v1/environments/production/segments/": ("flags.add_segment",),
    f"GET {SEGMENT}": ("flags.view_segment",),
    f"PATCH {SEGMENT}": ("flags.change_segment",),
    f"DELETE {SEGMENT}": ("flags.delete_segment",),
    "GET /api/v1/tokens/": ("flags.view_apitoken",),
    "POST /api/v1/tokens/": ("flags.add_apitoken", "flags.issue_admin_token"),  # kind admin
    "GET /api/v1/tokens/{token_id}/": ("flags.view_apitoken",),
    "POST /api/v1/tokens/{token_id}/revoke/": ("flags.change_apitoken",),
    "GET /api/v1/audit/": ("audit.view_auditevent",),
    "GET /api/v1/audit/?format=csv": ("audit.view_auditevent",),
    "GET /api/v1/audit/?format=jsonl": ("audit.view_auditevent",),
    "POST /api/v1/flags/new-checkout/kill/": ("flags.kill_flag",),
    "POST /api/v1/flags/new-checkout/restore/": ("flags.restore_flag",),
    "POST /api/v1/kill/": ("flags.kill_flag",),
    "POST /api/v1/restore/": ("flags.restore_flag",),
    "GET /api/v1/kills/?environment=production": ("flags.kill_flag",),
    "GET /api/v1/triggers/": ("flags.view_killtrigger",),
    "POST /api/v1/triggers/": ("flags.add_killtrigger", "flags.kill_flag"),  # a kill trigger
    "POST /api/v1/triggers/{trigger_id}/revoke/": ("flags.change_killtrigger",),
    f"GET {PLAN}": ("flags.view_rolloutplan",),
    f"PUT {PLAN}": ("flags.add_rolloutplan",),
    f"DELETE {PLAN}": ("flags.change_rolloutplan",),
    **{f"POST {PLAN}{action}": ("flags.change_rolloutplan",) for action in PLAN_ACTIONS},
    f"GET {GUARDRAILS}": ("flags.view_guardrail",),
    f"POST {GUARDRAILS}": ("flags.add_guardrail",),
    f"GET {GUARDRAILS}errors/": ("flags.view_guardrail",),
    f"PATCH {GUARDRAILS}errors/": ("flags.change_guardrail",),
    f"DELETE {GUARDRAILS}errors/": ("flags.delete_guardrail",),
    f"POST {GUARDRAILS}errors/evaluate/": ("flags.view_guardrail",),
    f"GET {WEBHOOKS}": ("flags.view_webhooksubscription",),
    f"POST {WEBHOOKS}": ("flags.add_webhooksubscription",),
    f"GET {WEBHOOKS}{{webhook_id}}/": ("flags.view_webhooksubscription",),
    f"PATCH {WEBHOOKS}{{webhook_id}}/": ("flags.change_webhooksubscription",),
    f"DELETE {WEBHOOKS}{{webhook_id}}/": ("flags.delete_webhooksubscription",),
    f"POST {WEBHOOKS}{{webhook_id}}/rotate-secret/": ("flags.change_webhooksubscription",),
    f"GET {WEBHOOKS}{{webhook_id}}/deliveries/": ("flags.view_webhooksubscription",),
}
MANAGED = [e for e in ENDPOINTS if e.allowed != EVERYONE]
_names = itertools.count()


def staff_with(*permissions: str, superuser: bool = False) -> Client:
    """A client logged in as a new staff account holding exactly these permissions."""
    name = f"staff-{next(_names)}"
    if superuser:
        user = User.objects.create_superuser(name, password="x")
    else:
        user = User.objects.create_user(name, password="x", is_staff=True)
    user.user_permissions.add(*[_permission(p) for p in permissions])
    client = Client()
    client.force_login(user)
    return client


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _path(endpoint: Endpoint, world: dict[str, Any]) -> str:  # noqa: F811
    return endpoint.path.format(
        token_id=world["token_id"],
        trigger_id=world["trigger_id"],
        trigger_secret=world["trigger_secret"],
        webhook_id=world["webhook_id"],
    )


def test_needs_table__covers_every_management_route() -> None:
    """A new endpoint must say what it needs (and gets tested here) before it ships."""

    def names(patterns: list[Any], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found |= names(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.add(pattern.name)
        return found

    routes = {n for n in names(get_resolver().url_patterns) if n.startswith("api-")}
    routes -= {"api-schema", "api-docs", "api-trigger-fire"}  # public or the secret is the key
    tested = {
        resolve(e.path.split("?")[0].format(token_id=1, trigger_id=1, webhook_id=1)).url_name
        for e in MANAGED
    }
    assert routes == tested
    assert set(NEEDS) == {str(e) for e in MANAGED}


@pytest.mark.parametrize("endpoint", MANAGED, ids=str)
def test_staff_without_permissions__403_naming_the_missing_permission(
    endpoint: Endpoint,
    world: dict[str, Any],  # noqa: F811
) -> None:
    events_before = AuditEvent.objects.count()

    response = send(staff_with(), endpoint.method, _path(endpoint, world), endpoint.body)

    assert response.status_code == 403, response.content[:300]
    message = error_of(response)["message"]
    assert NEEDS[str(endpoint)][0] in message, message
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize("endpoint", MANAGED, ids=str)
def test_staff_with_exactly_the_needed_permissions__allowed(
    endpoint: Endpoint,
    world: dict[str, Any],  # noqa: F811
) -> None:
    client = staff_with(*NEEDS[str(endpoint)])
    response = send(client, endpoint.method, _path(endpoint, world), endpoint.body)
    assert response.status_code < 400, (response.status_code, response.content[:300])


@pytest.mark.parametrize("endpoint", MANAGED, ids=str)
def test_staff_with_every_other_permission__still_refused(
    endpoint: Endpoint,
    world: dict[str, Any],  # noqa: F811
) -> None:
    needed = NEEDS[str(endpoint)]
    others = [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
        if f"{p.content_type.app_label}.{p.codename}" != needed[-1]
    ]
    response = send(staff_with(*others), endpoint.method, _path(endpoint, world), endpoint.body)
    assert response.status_code == 403, response.content[:300]
    assert needed[-1] in error_of(response)["message"]


@pytest.mark.parametrize("kind", ["admin", "server", "client", "kill"])
def test_staff_without_permissions__cannot_mint_any_token(
    environments: dict[str, Any], kind: str
) -> None:
    body = {"name": "mine", "kind": kind}
    if kind in ("server", "client"):
        body["environment"] = "production"
    response = send(staff_with(), "POST", "/api/v1/tokens/", body)
    assert response.status_code == 403
    assert "flags.add_apitoken" in error_of(response)["message"]
    assert not ApiToken.objects.exists()


def test_add_apitoken__mints_a_kill_key_but_not_an_admin_token(
    environments: dict[str, Any],
) -> None:
    client = staff_with("flags.add_apitoken")

    refused = send(client, "POST", "/api/v1/tokens/", {"name": "root", "kind": "admin"})
    kill_key = send(client, "POST", "/api/v1/tokens/", {"name": "pager", "kind": "kill"})

    assert refused.status_code == 403
    assert "lacks the permission flags.issue_admin_token" in error_of(refused)["message"]
    assert kill_key.status_code == 201
    assert list(ApiToken.objects.values_list("name", "kind")) == [("pager", "kill")]


def test_issue_admin_token_permission__mints_an_admin_token(
    environments: dict[str, Any],
) -> None:
    client = staff_with("flags.add_apitoken", "flags.issue_admin_token")
    response = send(client, "POST", "/api/v1/tokens/", {"name": "deploy", "kind": "admin"})
    assert response.status_code == 201
    raw = response.json()["token"]
    assert (
        send(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), "GET", "/api/v1/flags/").status_code == 200
    )


def test_superuser__mints_an_admin_token_and_kills(
    make_flag: Callable[..., Flag],
) -> None:
    make_flag("new-checkout")
    root = staff_with(superuser=True)
    minted = send(root, "POST", "/api/v1/tokens/", {"name": "deploy", "kind": "admin"})
    killed = send(
        root,
        "POST",
        "/api/v1/flags/new-checkout/kill/",
        {"environment": "production", "reason": "5xx"},
    )
    assert (minted.status_code, killed.status_code) == (201, 200)
    assert killed.json()["killed"] is True


def test_view_flag__lists_flags_but_cannot_change_them(
    make_flag: Callable[..., Flag],
) -> None:
    make_flag("new-checkout")
    viewer = staff_with("flags.view_flag")

    listed = send(viewer, "GET", "/api/v1/flags/")
    renamed = send(viewer, "PATCH", "/api/v1/flags/new-checkout/", {"name": "Renamed"})
    killed = send(
        viewer,
        "POST",
        "/api/v1/flags/new-checkout/kill/",
        {"environment": "production", "reason": "x"},
    )

    assert listed.status_code == 200
    assert [f["key"] for f in listed.json()["results"]] == ["new-checkout"]
    assert (renamed.status_code, killed.status_code) == (403, 403)
    assert "flags.change_flag" in error_of(renamed)["message"]
    assert "flags.kill_flag" in error_of(killed)["message"]
    assert Flag.objects.get().name == ""
    assert not FlagState.objects.filter(killed_at__isnull=False).exists()


def test_kill_flag__kills_but_cannot_restore(make_flag: Callable[..., Flag]) -> None:
    make_flag("new-checkout")
    commander = staff_with("flags.kill_flag")
    body = {"environment": "production", "reason": "checkout 5xx"}

    killed = send(commander, "POST", "/api/v1/flags/new-checkout/kill/", body)
    restored = send(commander, "POST", "/api/v1/flags/new-checkout/restore/", body)

    assert killed.status_code == 200 and killed.json()["killed"] is True
    assert restored.status_code == 403
    assert "flags.restore_flag" in error_of(restored)["message"]
    event = AuditEvent.objects.get(action="flag.kill")
    assert event.actor_kind == "user" and event.actor.startswith("staff-")


def test_trigger__add_killtrigger_without_kill_flag__cannot_create_a_kill_url(
    make_flag: Callable[..., Flag],
) -> None:
    make_flag("new-checkout")
    client = staff_with("flags.add_killtrigger", "flags.restore_flag")
    body = {"name": "apm", "flag": "new-checkout", "environment": "production"}

    kill_url = send(client, "POST", "/api/v1/triggers/", body)
    restore_url = send(client, "POST", "/api/v1/triggers/", {**body, "action": "restore"})

    assert kill_url.status_code == 403
    assert "flags.kill_flag" in error_of(kill_url)["message"]
    assert restore_url.status_code == 201


# --- token kinds ------------------------------------------------------------------------------


class KillLikeView(APIView):
    """A kill endpoint: admin or kill tokens, bound kill keys checked."""

    permission_classes = [model_permissions(Flag, kinds=KILL_KINDS, POST="kill")]

    def post(self, request: Request, environment: str) -> Response:
        environment_scope_check(request, environment)
        return Response({"ok": True})


def _call(raw: str, environment: str) -> Any:
    request = APIRequestFactory().post("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    return KillLikeView.as_view()(request, environment=environment)


@pytest.mark.parametrize(
    ("kind", "bound_to", "environment", "status"),
    [
        ("admin", None, "production", 200),
        ("kill", None, "production", 200),
        ("kill", "staging", "staging", 200),
        ("kill", "staging", "production", 403),
        ("server", "production", "production", 403),
        ("client", "production", "production", 403),
    ],
)
def test_token_kinds__allows_the_named_kinds_and_checks_bound_environments(
    issue: Callable[..., str], kind: str, bound_to: str | None, environment: str, status: int
) -> None:
    response = _call(issue(kind, environment=bound_to), environment)
    assert response.status_code == status, response.data


def test_token_kinds__refusal_names_every_kind_and_the_session_permission(
    issue: Callable[..., str],
) -> None:
    response = _call(issue("server", environment="production"), "production")
    message = response.data["error"]["message"]
    assert "needs an admin token, a kill key or a staff session with flags.kill_flag" in message


def test_token_kinds__typo_fails_at_import() -> None:
    with pytest.raises(ValueError):
        model_permissions(Flag, kinds=("admin", "kil"))


def test_environment_scope_check__bound_key_message_names_both_environments(
    issue: Callable[..., str],
) -> None:
    response = _call(issue("kill", environment="staging"), "production")
    assert "bound to the environment 'staging'; it cannot act on 'production'" in str(
        response.data["error"]["message"]
    )

"""Tokens in the Django admin: issued through the service and shown once, revoked, never edited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import ApiToken, Environment

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/flags/apitoken/"


def test_add__issues_through_the_service_and_shows_the_token_once(
    admin_client: Client, environments: dict[str, Environment]
) -> None:
    response = admin_client.post(
        CHANGELIST + "add/",
        {
            "name": "checkout",
            "kind": "server",
            "environment": environments["production"].pk,
            "reason": "new service",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw"]
    assert raw.startswith("fsv_server_") and raw in response.content.decode()
    token = ApiToken.objects.get(name="checkout")
    assert token.environment is not None and token.environment.key == "production"
    assert raw.endswith(token.hint)
    event = AuditEvent.objects.get(action="token.create")
    assert (event.actor, event.reason) == ("admin", "new service")
    # Shown once: the list and the token's page never show it again.
    assert raw not in admin_client.get(CHANGELIST).content.decode()
    assert raw not in admin_client.get(f"{CHANGELIST}{token.pk}/change/").content.decode()


def test_add__service_refusal__nothing_issued_and_the_reason_shown(
    admin_client: Client, environments: dict[str, Environment]
) -> None:
    response = admin_client.post(
        CHANGELIST + "add/", {"name": "checkout", "kind": "server"}, follow=True
    )
    assert not ApiToken.objects.exists()
    assert "belongs to one environment" in response.content.decode()


def test_list__shows_kind_environment_hint_and_revoked(
    admin_client: Client, environments: dict[str, Environment], actor: Actor
) -> None:
    token, _ = services.token_issue(actor=actor, kind="kill", name="pager")
    services.token_revoke(actor=actor, token=token)
    page = admin_client.get(CHANGELIST).content.decode()
    assert "pager" in page and token.hint in page and "kill key" in page
    assert "icon-yes" in page  # revoked


def test_revoke_action__revokes_through_the_service(
    admin_client: Client, environments: dict[str, Environment], actor: Actor
) -> None:
    token, _ = services.token_issue(actor=actor, kind="admin", name="old-bot")
    response = admin_client.post(
        CHANGELIST, {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.revoked and token.revoked_by == "admin"
    assert AuditEvent.objects.get(action="token.revoke").actor == "admin"


def test_tokens__cannot_be_edited_or_deleted(
    admin_client: Client, environments: dict[str, Environment], actor: Actor
) -> None:
    token, _ = services.token_issue(actor=actor, kind="admin", name="ci-bot")
    admin_client.post(f"{CHANGELIST}{token.pk}/change/", {"name": "renamed", "kind": "kill"})
    token.refresh_from_db()
    assert (token.name, token.kind) == ("ci-bot", "admin")
    assert admin_client.get(f"{CHANGELIST}{token.pk}/delete/").status_code == 403
    actions = admin_client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["revoke_tokens"]


def test_revoke_action__hidden_without_change_permission(
    environments: dict[str, Environment], actor: Actor
) -> None:
    from django.contrib.auth.models import Permission

    services.token_issue(actor=actor, kind="admin", name="ci-bot")
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client = Client()
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None or not [
        name for name, _ in response.context["action_form"].fields["action"].choices if name
    ]

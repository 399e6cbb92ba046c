"""The admin grants what the API grants: kill, restore, archive and admin tokens need their permission."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from audit.recorder import Actor
from flags import services
from flags.models import ApiToken, Environment, Flag, FlagState, KillTrigger

pytestmark = pytest.mark.django_db

_names = itertools.count()


def staff_with(*permissions: str) -> Client:
    """A client logged in as a new staff account holding exactly these permissions."""
    user = User.objects.create_user(f"staff-{next(_names)}", password="x", is_staff=True)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def _kill(client: Client, flag: Flag, production: Environment, action: str = "kill") -> str:
    response = client.post(
        reverse("admin:flags_flag_environment_action", args=[flag.pk, action]),
        {"environment": production.key, "reason": "checkout 5xx", "confirm": "on"},
        follow=True,
    )
    return " ".join(str(m) for m in response.context["messages"])


def _killed(flag: Flag, production: Environment) -> bool:
    return FlagState.objects.get(flag=flag, environment=production).killed


def _offered_actions(client: Client) -> list[str]:
    form = client.get("/admin/flags/flag/").context["action_form"]
    return [name for name, _ in form.fields["action"].choices if name] if form else []


def test_kill_button__staff_who_may_change_flags_but_not_kill__refused_by_name(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    editor = staff_with("flags.view_flag", "flags.change_flag", "flags.change_flagstate")

    said = _kill(editor, flag, production)

    assert "lack the permission flags.kill_flag" in said
    assert not _killed(flag, production)


def test_kill_button__with_kill_flag__kills_but_cannot_restore(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    commander = staff_with("flags.view_flag", "flags.kill_flag")

    assert "kill: 1 flag(s) changed in production" in _kill(commander, flag, production)
    said = _kill(commander, flag, production, action="restore")

    assert "lack the permission flags.restore_flag" in said
    assert _killed(flag, production)


def test_bulk_actions__offered_by_permission(make_flag: Callable[..., Flag]) -> None:
    make_flag()
    viewer = staff_with("flags.view_flag")
    commander = staff_with("flags.view_flag", "flags.kill_flag", "flags.restore_flag")
    editor = staff_with("flags.view_flag", "flags.change_flagstate", "flags.delete_flag")

    assert _offered_actions(viewer) == []
    assert _offered_actions(commander) == ["kill_action", "restore_action"]
    assert _offered_actions(editor) == ["enable_action", "disable_action", "archive_action"]


def test_bulk_archive__view_only_staff__archives_nothing(make_flag: Callable[..., Flag]) -> None:
    flag = make_flag()
    viewer = staff_with("flags.view_flag")
    viewer.post("/admin/flags/flag/", {"action": "archive_action", "_selected_action": [flag.pk]})
    flag.refresh_from_db()
    assert not flag.archived


def test_active_kills_page__needs_a_flag_permission(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    services.flag_kill(
        actor=Actor.cli("alice"), flag=make_flag(), environment=production, reason="errors"
    )
    page = reverse("admin:flags_flag_active_kills")
    assert staff_with().get(page).status_code == 403
    assert "alice" in staff_with("flags.view_flag").get(page).content.decode()


def _issue(client: Client, kind: str) -> str:
    response = client.post(
        "/admin/flags/apitoken/add/", {"name": f"{kind}-key", "kind": kind, "reason": "r"}
    )
    return response.content.decode()


def test_token_add__admin_kind_needs_issue_admin_token(
    environments: dict[str, Environment],
) -> None:
    issuer = staff_with("flags.view_apitoken", "flags.add_apitoken")

    page = _issue(issuer, "admin")
    kill_page = _issue(issuer, "kill")

    assert "issuing one needs the permission flags.issue_admin_token" in page
    assert "shown only this once" in kill_page
    assert list(ApiToken.objects.values_list("kind", flat=True)) == ["kill"]


def test_token_add__with_issue_admin_token__issues_an_admin_token(
    environments: dict[str, Environment],
) -> None:
    issuer = staff_with("flags.view_apitoken", "flags.add_apitoken", "flags.issue_admin_token")
    assert "shown only this once" in _issue(issuer, "admin")
    assert ApiToken.objects.get().kind == "admin"


def test_token_add__without_add_apitoken__refused(environments: dict[str, Environment]) -> None:
    response = staff_with("flags.view_apitoken").get("/admin/flags/apitoken/add/")
    assert response.status_code == 403


def test_trigger_add__kill_url_needs_kill_flag(
    make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    creator = staff_with("flags.view_killtrigger", "flags.add_killtrigger")
    response = creator.post(
        "/admin/flags/killtrigger/add/",
        {"name": "apm", "flag": flag.pk, "environment": production.pk, "action": "kill"},
    )
    assert "creating one needs the permission flags.kill_flag" in response.content.decode()
    assert not KillTrigger.objects.exists()

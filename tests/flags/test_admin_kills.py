"""Admin for incident commanders: active kills and trigger URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag, KillTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_cache() -> Any:
    cache.clear()
    yield
    cache.clear()


def test_changelist__banner_and_button_when_something_is_killed(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    make_flag("calm")
    assert "Active kills (0)" in admin_client.get("/admin/flags/flag/").content.decode()
    services.flag_kill(
        actor=Actor.cli("alice"), flag=make_flag("risky"), environment=production, reason="errors"
    )
    page = admin_client.get("/admin/flags/flag/").content.decode()
    assert "Active kills (1)" in page and "1 flag state killed right now" in page


def test_active_kills_view__who_when_why_and_restore(
    admin_client: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    services.flag_kill(
        actor=Actor.cli("alice"),
        flag=make_flag("risky"),
        environment=environments["production"],
        reason="checkout errors",
    )
    page = admin_client.get(reverse("admin:flags_flag_active_kills")).content.decode()
    for text in ("risky", "production", "alice", "checkout errors", "Restore"):
        assert text in page


def test_trigger_admin__creates_and_shows_the_url_once(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    response = admin_client.post(
        "/admin/flags/killtrigger/add/",
        {
            "name": "datadog",
            "flag": flag.pk,
            "environment": production.pk,
            "action": "kill",
            "reason": "APM alert",
        },
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "shown only this once" in page and "/api/v1/triggers/fsv_trigger_" in page
    trigger = KillTrigger.objects.get()
    assert AuditEvent.objects.filter(action="trigger.create", actor="admin").exists()
    secret = page.split("/api/v1/triggers/")[1].split("/")[0]
    assert Client().post(f"/api/v1/triggers/{secret}/").json()["killed"] is True
    admin_client.post(
        "/admin/flags/killtrigger/", {"action": "revoke_triggers", "_selected_action": [trigger.pk]}
    )
    assert KillTrigger.objects.get().revoked
    assert Client().post(f"/api/v1/triggers/{secret}/").status_code == 404

"""The admin for people, without a browser: badges, times, the list's toggle, the overview."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.admin.display import ago, badge_of, utc_time
from flags.models import Environment, Flag, FlagState

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 29, 14, 53, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "just now"), (180, "3 min ago"), (3 * 3600 + 60, "3 h ago"), (86400 * 12, "12 days ago")],
)
def test_ago(seconds: int, text: str) -> None:
    assert ago(NOW - timedelta(seconds=seconds), now=NOW) == text


def test_utc_time__today_short_else_with_the_date() -> None:
    assert utc_time(datetime(2026, 11, 29, 14, 50, tzinfo=UTC), now=NOW) == "14:50 UTC"
    assert utc_time(datetime(2026, 11, 28, 9, 5, tzinfo=UTC), now=NOW) == "2026-11-28 09:05 UTC"


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def test_badges__say_what_is_served(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag("checkout")
    assert badge_of(flag, _state(flag, production)).label == "OFF"
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        enabled=True,
        default_serve={"split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 3}]},
    )
    assert badge_of(flag, _state(flag, production)).label == "25%"
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        default_serve={"variant": "off"},
        rules=[
            {
                "conditions": [{"attribute": "country", "operator": "equals", "value": "DE"}],
                "serve": {"variant": "on"},
            }
        ],
    )
    badge = badge_of(flag, _state(flag, production))
    assert (badge.label, badge.kind, badge.detail) == ("ON", "partial", "default off · 1 rule")
    services.flag_kill(actor=actor, flag=flag, environment=production, reason="x")
    assert badge_of(flag, _state(flag, production)).label == "KILLED"
    colours = make_flag(
        "colours", type="string", variants={"a": "1", "b": "2", "c": "3"}, off_variant="a"
    )
    services.flag_state_update(
        actor=actor,
        flag=colours,
        environment=production,
        enabled=True,
        default_serve={
            "split": [{"variant": v, "weight": w} for v, w in (("a", 80), ("b", 10), ("c", 10))]
        },
    )
    assert badge_of(colours, _state(colours, production)).label == "SPLIT 80/10/10"


def test_list_toggle__posts_through_the_service_and_comes_back_to_the_list(
    admin_client: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    flag = make_flag()
    page = admin_client.get("/admin/flags/flag/?tag=").content.decode()
    enable = reverse("admin:flags_flag_environment_action", args=[flag.pk, "enable"])
    assert f'data-url="{enable}"' in page and 'data-environment="staging"' in page
    response = admin_client.post(
        enable,
        {
            "environment": "staging",
            "reason": "try it",
            "confirm": "on",
            "next": "/admin/flags/flag/?q=new",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/admin/flags/flag/?q=new"
    assert _state(flag, environments["staging"]).enabled
    assert not _state(flag, environments["production"]).enabled
    event = AuditEvent.objects.filter(action="flag_state.update").latest("sequence")
    assert (event.actor, event.environment_key, event.reason) == ("admin", "staging", "try it")
    # Elsewhere is refused: back to the flag page instead
    response = admin_client.post(
        reverse("admin:flags_flag_environment_action", args=[flag.pk, "disable"]),
        {"environment": "staging", "reason": "r", "confirm": "on", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("admin:flags_flag_change", args=[flag.pk])


def test_overview__kills_rollouts_changes_and_stale_flags(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    killed = make_flag("killed-one")
    services.flag_kill(actor=actor, flag=killed, environment=production, reason="psp down")
    old = make_flag("old-one")
    long_ago = timezone.now() - timedelta(days=120)
    Flag.objects.filter(pk=old.pk).update(updated_at=long_ago)
    FlagState.objects.filter(flag=old).update(updated_at=long_ago)
    page = admin_client.get(reverse("admin:flags_flag_overview")).content.decode()
    kills = page.split('id="overview-kills"')[1].split('id="overview-rollouts"')[0]
    assert "killed-one" in kills and "psp down" in kills and "UTC" in kills
    stale = page.split('id="overview-stale"')[1]
    assert "old-one" in stale and "killed-one" not in stale
    assert "flag.kill" in page.split('id="overview-changes"')[1]
    home = admin_client.get("/admin/").content.decode()
    assert 'id="flags-at-a-glance"' in home and "1 active kill" in home

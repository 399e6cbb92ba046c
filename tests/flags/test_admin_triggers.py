"""Trigger URLs for people: a dry run that never kills (audited as a test), the live command
behind a warning, and the trigger's configured reason as the kill reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from audit.models import AuditEvent
from flags.edge.emergency import KillRoute
from flags.models import Environment, Flag, FlagState, KillTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_cache() -> Any:
    cache.clear()
    yield
    cache.clear()


def _create(admin_client: Client, flag: Flag, environment: Environment, reason: str) -> str:
    page = admin_client.post(
        "/admin/flags/killtrigger/add/",
        {
            "name": "datadog",
            "flag": flag.pk,
            "environment": environment.pk,
            "action": "kill",
            "reason": reason,
        },
    ).content.decode()
    return page


def test_created_page__offers_the_dry_run_and_the_live_curl_behind_a_warning(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    page = _create(admin_client, make_flag(), production, "checkout 5xx above 2%")
    secret = page.split("/api/v1/triggers/")[1].split("/")[0]
    dry = f"/api/v1/triggers/{secret}/?dry_run=1"
    assert 'id="trigger-test"' in page and dry in page
    # the live command only inside the warning block, after the dry run
    live_block = page.split('id="trigger-live-curl"')[1]
    assert "Warning: this command really kills" in live_block
    assert f"-X POST 'http://testserver/api/v1/triggers/{secret}/' " in live_block
    assert f"/api/v1/triggers/{secret}/' -H" not in page.split('id="trigger-live-curl"')[0]
    assert "checkout 5xx above 2% (trigger 'datadog' fired)" in page


def test_dry_run__changes_nothing_and_is_audited_as_a_test(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    page = _create(admin_client, flag, production, "checkout 5xx above 2%")
    secret = page.split("/api/v1/triggers/")[1].split("/")[0]
    production.refresh_from_db()
    versions = (
        production.version,
        FlagState.objects.get(flag=flag, environment=production).version,
    )
    answer = Client().post(
        f"/api/v1/triggers/{secret}/?dry_run=1",
        data=json.dumps({"note": "runbook"}),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["dry_run"] is True and body["would_change"] is True and body["killed"] is False
    assert body["reason"] == "checkout 5xx above 2% (trigger 'datadog' fired: runbook)"
    state = FlagState.objects.get(flag=flag, environment=production)
    production.refresh_from_db()
    assert not state.killed and (production.version, state.version) == versions
    assert not AuditEvent.objects.filter(action="flag.kill").exists()
    test = AuditEvent.objects.get(action="trigger.test")
    assert test.actor == "trigger:datadog" and test.flag_key == flag.key
    assert "nothing changed" in test.reason


def test_firing__uses_the_configured_reason_with_the_note(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    page = _create(admin_client, flag, production, "checkout 5xx above 2%")
    secret = page.split("/api/v1/triggers/")[1].split("/")[0]
    assert KillTrigger.objects.get().reason == "checkout 5xx above 2%"
    fired = Client().post(
        f"/api/v1/triggers/{secret}/",
        data=json.dumps({"note": "p99 up"}),
        content_type="application/json",
    )
    assert fired.json()["killed"] is True
    state = FlagState.objects.get(flag=flag, environment=production)
    assert state.kill_reason == "checkout 5xx above 2% (trigger 'datadog' fired: p99 up)"
    kill = AuditEvent.objects.get(action="flag.kill")
    assert kill.reason == state.kill_reason


def test_firing_without_a_configured_reason__says_which_trigger_fired(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    page = _create(admin_client, flag, production, "")
    secret = page.split("/api/v1/triggers/")[1].split("/")[0]
    Client().post(f"/api/v1/triggers/{secret}/")
    assert FlagState.objects.get(flag=flag, environment=production).kill_reason == (
        "trigger 'datadog' fired"
    )


class _Django:
    """Stands in for Django's ASGI app behind the edge route: records calls, answers a status."""

    def __init__(self, status: int, body: bytes) -> None:
        self.calls = 0
        self.status, self.body = status, body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await receive()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": self.body})


def _post_trigger(route: KillRoute, query: bytes) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/triggers/fsv_trigger_x/",
        "query_string": query,
        "headers": [(b"content-length", b"2")],
        "path_params": {"secret": "fsv_trigger_x"},
        "client": ("127.0.0.1", 1),
    }
    asyncio.run(route(scope, receive, send))
    return sent


@pytest.mark.parametrize("database_ok", [True, False])
def test_edge__a_dry_run_never_takes_the_emergency_kill_path(database_ok: bool) -> None:
    # Given the database out (known, or found out by Django's 503), a dry run of a trigger
    django = _Django(503, b'{"error": {"code": "database_unavailable"}}')
    state = SimpleNamespace(database_ok=database_ok, triggers={})
    route = KillRoute(django, state, "kill", kind="trigger")  # type: ignore[arg-type]

    async def no_emergency(*args: Any) -> list[Any]:
        raise AssertionError("a dry run must never kill through Redis")

    route.emergency = no_emergency  # type: ignore[method-assign,assignment]
    sent = _post_trigger(route, b"dry_run=1")
    # Then Django answers it (refused: 503), and nothing is killed through Redis
    assert django.calls == 1 and sent[0]["status"] == 503


def test_edge__a_real_firing_with_the_database_down_does_take_the_emergency_path() -> None:
    django = _Django(503, b'{"error": {"code": "database_unavailable"}}')
    state = SimpleNamespace(database_ok=True, triggers={})
    route = KillRoute(django, state, "kill", kind="trigger")  # type: ignore[arg-type]
    taken: list[str] = []

    async def emergency(*args: Any) -> list[Any]:
        taken.append("emergency")
        return [{"type": "http.response.start", "status": 200, "headers": []}]

    route.emergency = emergency  # type: ignore[method-assign,assignment]
    _post_trigger(route, b"")
    assert taken == ["emergency"]

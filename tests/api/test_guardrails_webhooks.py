"""Guardrails and webhooks over the management API: create, evaluate now, enable/disable, delivery log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import rollouts, webhooks
from flags.models import Environment, Flag, Guardrail, WebhookDelivery
from flags.webhooks import queue
from tests import prometheus as prom
from tests.api.conftest import error_of, send
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db

GUARDRAILS = "/api/v1/flags/checkout/environments/production/guardrails/"
WEBHOOKS = "/api/v1/environments/production/webhooks/"


@pytest.fixture
def checkout(make_flag: Callable[..., Flag]) -> Flag:
    return make_flag("checkout")


@pytest.fixture
def prometheus() -> Iterator[tuple[prom.Exporter, prom.Prometheus]]:
    if prom.binary() is None:
        pytest.skip("prometheus is not installed: apt-get install -y prometheus")
    with prom.Exporter(0.3) as exporter, prom.Prometheus([exporter.target]) as server:
        server.wait_for("checkout_error_ratio", 0.3)
        yield exporter, server


def test_guardrail_create__201_audited_and_listed(api: Client, checkout: Flag) -> None:
    response = send(
        api,
        "POST",
        GUARDRAILS,
        {"name": "errors", "query": "sum(rate(x[1m]))", "threshold": 0.05, "action": "kill"},
        **{"X-Reason": "protect checkout"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["action"], body["health"], body["enabled"], body["checks"]) == (
        "kill",
        "unknown",
        True,
        [],
    )
    assert AuditEvent.objects.get(action="guardrail.create").reason == "protect checkout"
    listed = send(api, "GET", GUARDRAILS).json()
    assert [g["name"] for g in listed] == ["errors"]
    again = send(api, "POST", GUARDRAILS, {"name": "errors", "query": "up", "threshold": 1})
    assert again.status_code == 409


def test_guardrail_create__bad_body__400_naming_fields(api: Client, checkout: Flag) -> None:
    response = send(
        api,
        "POST",
        GUARDRAILS,
        {"name": "Bad Name", "query": "up", "threshold": "x", "action": "nuke"},
    )
    assert response.status_code == 400
    assert {"name", "threshold", "action"} <= set(error_of(response)["fields"])


def test_guardrail_disable_and_enable__audited(api: Client, checkout: Flag) -> None:
    send(api, "POST", GUARDRAILS, {"name": "errors", "query": "up", "threshold": 1})
    off = send(api, "PATCH", GUARDRAILS + "errors/", {"enabled": False, "reason": "noisy"})
    assert off.status_code == 200 and off.json()["enabled"] is False
    on = send(api, "PATCH", GUARDRAILS + "errors/", {"enabled": True})
    assert on.json()["enabled"] is True
    assert list(
        AuditEvent.objects.filter(action__startswith="guardrail.")
        .order_by("sequence")
        .values_list("action", flat=True)
    ) == [
        "guardrail.create",
        "guardrail.disable",
        "guardrail.enable",
    ]
    assert send(api, "DELETE", GUARDRAILS + "errors/", {"reason": "gone"}).status_code == 204
    assert send(api, "GET", GUARDRAILS + "errors/").status_code == 404


@pytest.mark.integration
def test_guardrail_evaluate__shows_the_current_value_without_acting(
    api: Client,
    checkout: Flag,
    production: Environment,
    actor: Actor,
    prometheus: tuple[prom.Exporter, prom.Prometheus],
) -> None:
    _, server = prometheus
    plan = rollouts.rollout_plan_create(
        actor=actor, flag=checkout, environment=production, steps=[{"percentage": 5}]
    )
    send(
        api,
        "POST",
        GUARDRAILS,
        {
            "name": "errors",
            "query": "checkout_error_ratio",
            "threshold": 0.05,
            "action": "kill",
            "prometheus_url": server.url,
        },
    )
    before = AuditEvent.objects.count()
    response = send(api, "POST", GUARDRAILS + "errors/evaluate/")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "health": "pending",
        "value": 0.3,
        "message": "0.3 > 0.05",
        "breaching": True,
        "would_act": "kill",
    }
    assert AuditEvent.objects.count() == before
    assert Guardrail.objects.get().last_checked_at is None
    plan.refresh_from_db()
    assert plan.status == "scheduled"


def test_guardrail_evaluate__unreachable__error_shown(api: Client, checkout: Flag) -> None:
    send(
        api,
        "POST",
        GUARDRAILS,
        {
            "name": "errors",
            "query": "up",
            "threshold": 1,
            "prometheus_url": f"http://127.0.0.1:{prom.free_port()}",
        },
    )
    body = send(api, "POST", GUARDRAILS + "errors/evaluate/").json()
    assert body["health"] == "error" and "unreachable" in body["message"]


def test_rollout_plan__shows_why_its_step_waits_and_the_checks(
    api: Client, checkout: Flag, production: Environment, actor: Actor
) -> None:
    from flags import guardrails

    rollouts.rollout_plan_create(
        actor=actor, flag=checkout, environment=production, steps=[{"percentage": 5}]
    )
    guardrail = guardrails.guardrail_create(
        actor=actor,
        flag=checkout,
        environment=production,
        name="errors",
        query="up",
        threshold=1,
        prometheus_url=f"http://127.0.0.1:{prom.free_port()}",
    )
    guardrails.guardrail_check(guardrail=guardrail)
    rollouts.rollout_plans_advance_due()
    body = send(api, "GET", "/api/v1/flags/checkout/environments/production/rollout-plan/").json()
    assert body["blocked_reason"].startswith("rollout plan #")
    assert "guardrail errors: error" in body["blocked_reason"]
    assert body["guardrail_checks"][0]["guardrail"] == "errors"
    assert body["guardrail_checks"][0]["health"] == "error"


def test_webhook_create__secret_shown_once_then_only_its_hint(
    api: Client, production: Environment
) -> None:
    response = send(
        api,
        "POST",
        WEBHOOKS,
        {"name": "ops", "url": "https://hooks.example.com/x", "kinds": ["kill"], "format": "slack"},
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    secret = created["signing_secret"]
    assert secret.startswith("fsv_whsec_") and created["secret_hint"] == secret[-4:]
    shown = send(api, "GET", WEBHOOKS + f"{created['id']}/").json()
    assert "signing_secret" not in shown and secret not in str(shown)
    assert secret not in AuditEvent.objects.get(action="webhook.create").after_json
    bad = send(api, "POST", WEBHOOKS, {"name": "x", "url": "ftp://nope", "kinds": ["everything"]})
    assert bad.status_code == 400 and {"url", "kinds.0"} <= set(error_of(bad)["fields"])


def test_webhook_rotate_secret__new_one_shown_once__previous_signs_for_the_overlap(
    api: Client, production: Environment
) -> None:
    created = send(api, "POST", WEBHOOKS, {"name": "ops", "url": "https://hooks.example.com/x"})
    url = WEBHOOKS + f"{created.json()['id']}/rotate-secret/"
    rotated = send(api, "POST", url, {"overlap_hours": 12, "reason": "yearly"})
    assert rotated.status_code == 200, rotated.json()
    body = rotated.json()
    secret = body["signing_secret"]
    assert secret.startswith("fsv_whsec_") and secret != created.json()["signing_secret"]
    assert body["secret_hint"] == secret[-4:] and body["previous_secret_until"] is not None
    shown = send(api, "GET", WEBHOOKS + f"{body['id']}/").json()
    assert (
        secret not in str(shown) and shown["previous_secret_until"] == body["previous_secret_until"]
    )
    event = AuditEvent.objects.get(action="webhook.rotate_secret")
    assert event.reason == "yearly" and secret not in event.after_json
    # Left out: 24 hours. 0: the previous secret retired at once.
    assert send(api, "POST", url, {}).json()["previous_secret_until"] is not None
    assert send(api, "POST", url, {"overlap_hours": 0}).json()["previous_secret_until"] is None


@pytest.mark.parametrize("overlap", [-1, 169, True, "24", None])
def test_webhook_rotate_secret__bad_overlap__400_naming_the_field_and_nothing_changes(
    api: Client, production: Environment, overlap: Any
) -> None:
    created = send(api, "POST", WEBHOOKS, {"name": "ops", "url": "https://hooks.example.com/x"})
    url = WEBHOOKS + f"{created.json()['id']}/rotate-secret/"
    refused = send(api, "POST", url, {"overlap_hours": overlap})
    assert refused.status_code == 400 and "overlap_hours" in error_of(refused)["fields"]
    assert not AuditEvent.objects.filter(action="webhook.rotate_secret").exists()
    assert send(api, "POST", WEBHOOKS + "999/rotate-secret/", {}).status_code == 404


def test_webhook_patch__changes_url_kinds_and_authorization__400_for_a_bad_one(
    api: Client, production: Environment
) -> None:
    created = send(api, "POST", WEBHOOKS, {"name": "ops", "url": "https://a.example.com/x"})
    url = WEBHOOKS + f"{created.json()['id']}/"
    changed = send(
        api,
        "PATCH",
        url,
        {"url": "https://b.example.com/y", "kinds": ["kill"], "authorization": "Bearer t"},
        **{"X-Reason": "new receiver"},
    )
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert (body["url"], body["kinds"], body["name"]) == (
        "https://b.example.com/y",
        ["kill"],
        "ops",
    )
    assert body["secret_hint"] == created.json()["secret_hint"]
    assert AuditEvent.objects.get(action="webhook.update").reason == "new receiver"
    bad = send(api, "PATCH", url, {"url": "javascript:alert(1)", "format": "xml"})
    assert bad.status_code == 400 and {"url", "format"} <= set(error_of(bad)["fields"])
    assert send(api, "GET", url).json()["url"] == "https://b.example.com/y"


def test_webhook_deliveries__logged_with_status_attempts_latency(
    api: Client,
    checkout: Flag,
    production: Environment,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(
        queue, "delivery_queue", lambda i, countdown=0: webhooks.webhook_delivery_attempt(i)
    )
    with Receiver([200]) as receiver:
        created = send(api, "POST", WEBHOOKS, {"name": "ops", "url": receiver.url}).json()
        with django_capture_on_commit_callbacks(execute=True):
            kill = send(
                api,
                "POST",
                "/api/v1/flags/checkout/kill/",
                {"environment": "production", "reason": "spike"},
            )
        assert kill.status_code == 200, kill.json()
        receiver.wait(1)
    log = send(api, "GET", WEBHOOKS + f"{created['id']}/deliveries/").json()
    assert [(d["action"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("flag.kill", "delivered", 1, 200)
    ]
    assert log[0]["latency_ms"] > 0
    off = send(api, "PATCH", WEBHOOKS + f"{created['id']}/", {"enabled": False})
    assert off.json()["enabled"] is False and WebhookDelivery.objects.count() == 1

"""Guardrails and webhooks in the admin: created through the services (audited as the staff
user), evaluated now without acting, switched on and off; the secret shown once; the delivery log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import guardrails, webhooks
from flags.models import Environment, Flag, Guardrail, WebhookDelivery, WebhookSubscription
from tests.prometheus import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkout(make_flag: Callable[..., Flag]) -> Flag:
    return make_flag("checkout")


def test_guardrail_add__through_the_service_audited_as_the_staff_user(
    admin_client: Client, checkout: Flag, production: Environment
) -> None:
    response = admin_client.post(
        "/admin/flags/guardrail/add/",
        {
            "flag": checkout.pk,
            "environment": production.pk,
            "name": "errors",
            "query": "sum(rate(http_requests_total{code=~'5..'}[1m]))",
            "comparison": "gt",
            "threshold": "0.05",
            "for_seconds": "30",
            "action": "step_back",
            "watch_seconds": "900",
            "prometheus_url": "",
            "enabled": "on",
            "reason": "protect checkout",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    guardrail = Guardrail.objects.get()
    assert (guardrail.action, guardrail.for_seconds, guardrail.created_by) == (
        "step_back",
        30,
        "admin",
    )
    event = AuditEvent.objects.get(action="guardrail.create")
    assert (event.actor, event.reason) == ("admin", "protect checkout")
    page = admin_client.get(f"/admin/flags/guardrail/{guardrail.pk}/change/")
    assert b"not checked yet" in page.content


def test_guardrail_actions__evaluate_now_shows_the_error_and_disable_audits(
    admin_client: Client, checkout: Flag, production: Environment, actor: Actor
) -> None:
    guardrail = guardrails.guardrail_create(
        actor=actor,
        flag=checkout,
        environment=production,
        name="errors",
        query="up",
        threshold=1,
        prometheus_url=f"http://127.0.0.1:{free_port()}",
    )
    evaluated = admin_client.post(
        "/admin/flags/guardrail/",
        {"action": "evaluate_now", "_selected_action": [guardrail.pk]},
        follow=True,
    )
    assert b"rrors (checkout@production): error: Prometheus at" in evaluated.content
    assert not guardrail.checks.exists()
    admin_client.post(
        "/admin/flags/guardrail/", {"action": "disable", "_selected_action": [guardrail.pk]}
    )
    assert not Guardrail.objects.get().enabled
    assert AuditEvent.objects.filter(action="guardrail.disable", actor="admin").count() == 1


def test_webhook_add__secret_shown_once_and_log_listed(
    admin_client: Client, production: Environment, actor: Actor
) -> None:
    response = admin_client.post(
        "/admin/flags/webhooksubscription/add/",
        {
            "name": "chat",
            "environment": production.pk,
            "url": "hooks.slack.example.com/services/x",  # no scheme: https
            "kinds": ["kill", "guardrail"],
            "format": "slack",
            "authorization": "",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    subscription = WebhookSubscription.objects.get()
    assert subscription.kinds == ["guardrail", "kill"]
    assert subscription.url == "https://hooks.slack.example.com/services/x"
    assert subscription.signing_secret.encode() in response.content
    detail = admin_client.get(f"/admin/flags/webhooksubscription/{subscription.pk}/change/")
    assert subscription.signing_secret.encode() not in detail.content
    WebhookDelivery.objects.create(
        subscription=subscription,
        event_sequence=1,
        action="flag.kill",
        kind="kill",
        payload={},
        attempts=2,
        status="failed",
        last_error="HTTP 500 Internal Server Error",
    )
    log = admin_client.get(
        f"/admin/flags/webhookdelivery/?subscription__id__exact={subscription.pk}"
    )
    assert b"HTTP 500 Internal Server Error" in log.content
    admin_client.post(
        "/admin/flags/webhooksubscription/",
        {"action": "disable", "_selected_action": [subscription.pk]},
    )
    assert not WebhookSubscription.objects.get().enabled
    assert webhooks.webhook_record(WebhookSubscription.objects.get())["enabled"] is False


def test_webhook_rotate__new_secret_shown_once__previous_overlap_on_the_page_and_audited(
    admin_client: Client, production: Environment, actor: Actor
) -> None:
    subscription, first = webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url="https://ops.example.com/h"
    )
    change = admin_client.get(f"/admin/flags/webhooksubscription/{subscription.pk}/change/")
    rotate = f"/admin/flags/webhooksubscription/{subscription.pk}/rotate-secret/"
    assert rotate.encode() in change.content and first.encode() not in change.content
    assert b"Previous secret keeps signing for" in admin_client.get(rotate).content
    refused = admin_client.post(rotate, {"overlap_hours": "500", "reason": "x"})
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert WebhookSubscription.objects.get().signing_secret == first
    done = admin_client.post(rotate, {"overlap_hours": "24", "reason": "yearly"})
    second = WebhookSubscription.objects.get().signing_secret
    assert second != first and second.encode() in done.content
    assert b"signed with both secrets" in done.content
    again = admin_client.get(f"/admin/flags/webhooksubscription/{subscription.pk}/change/")
    assert second.encode() not in again.content
    assert b"the previous secret also signs until" in again.content
    event = AuditEvent.objects.get(action="webhook.rotate_secret")
    assert event.actor == "admin" and event.reason == "yearly"


def test_webhook_rotate__staff_without_change_permission__403(
    client: Client, production: Environment, actor: Actor, django_user_model: Any
) -> None:
    subscription, _ = webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url="https://ops.example.com/h"
    )
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)
    rotate = f"/admin/flags/webhooksubscription/{subscription.pk}/rotate-secret/"
    assert client.post(rotate, {"overlap_hours": "0"}).status_code == 403
    assert not AuditEvent.objects.filter(action="webhook.rotate_secret").exists()


def test_webhook_change__edits_through_the_service__authorization_kept_unless_replaced(
    admin_client: Client, production: Environment, actor: Actor
) -> None:
    subscription, _ = webhooks.webhook_create(
        actor=actor,
        environment=production,
        name="grafana",
        url="https://grafana.example.com/api/annotations",
        format="grafana",
        authorization="Bearer glsa_secret",
    )
    page = f"/admin/flags/webhooksubscription/{subscription.pk}/change/"
    shown = admin_client.get(page)
    assert b'name="url"' in shown.content and b"glsa_secret" not in shown.content
    form = {
        "name": "grafana",
        "url": "grafana2.example.com/api/annotations",  # no scheme: https
        "kinds": ["kill"],
        "format": "grafana",
        "authorization": "",
        "reason": "new Grafana",
    }
    assert admin_client.post(page, form).status_code == 302
    saved = WebhookSubscription.objects.get()
    assert saved.url == "https://grafana2.example.com/api/annotations"
    assert saved.kinds == ["kill"] and saved.authorization == "Bearer glsa_secret"
    assert AuditEvent.objects.get(action="webhook.update").actor == "admin"
    admin_client.post(page, {**form, "authorization": "Bearer glsa_new"})
    assert WebhookSubscription.objects.get().authorization == "Bearer glsa_new"
    admin_client.post(page, {**form, "clear_authorization": "on"})
    assert WebhookSubscription.objects.get().authorization == ""
    refused = admin_client.post(page, {**form, "url": "ftp://nope.example.com"})
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert WebhookSubscription.objects.get().url == "https://grafana2.example.com/api/annotations"

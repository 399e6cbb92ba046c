"""Webhook secrets sealed at rest: a database dump does not give them away, SECRET_KEY can be
rotated through SECRET_KEY_FALLBACKS, and a secret no key opens is never used to sign."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from audit.recorder import Actor
from flags import webhooks
from flags.models import Environment, WebhookDelivery, WebhookSubscription
from flags.webhooks.delivery import UNREADABLE_SECRET
from flagsvc import sealed

pytestmark = pytest.mark.django_db

COLUMNS = ("signing_secret", "previous_signing_secret", "authorization")
QUOTED = ", ".join(f'"{column}"' for column in COLUMNS)  # AUTHORIZATION is an SQL keyword


def stored(subscription: WebhookSubscription) -> dict[str, str]:
    """The columns as the database holds them (what a dump or a backup shows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {QUOTED} FROM flags_webhooksubscription WHERE id = %s",
            [subscription.pk],
        )
        return dict(zip(COLUMNS, cursor.fetchone(), strict=True))


@pytest.fixture
def subscription(production: Environment, actor: Actor) -> tuple[WebhookSubscription, str]:
    created, _ = webhooks.webhook_create(
        actor=actor,
        environment=production,
        name="grafana",
        url="https://grafana.example.com/api/annotations",
        authorization="Bearer glsa_token",
    )
    rotated, newer = webhooks.webhook_rotate_secret(actor=actor, subscription=created)
    return rotated, newer


def test_stored_sealed__read_back_as_issued(
    subscription: tuple[WebhookSubscription, str],
) -> None:
    created, secret = subscription
    raw = stored(created)
    assert all(value.startswith("fsv1:") for value in raw.values())
    assert not any(
        text in value
        for value in raw.values()
        for text in (secret, "glsa_token", created.previous_signing_secret)
    )
    again = WebhookSubscription.objects.get()
    assert again.signing_secret == secret and again.authorization == "Bearer glsa_token"
    assert again.previous_signing_secret.startswith("fsv_whsec_")


def test_secret_key_rotated_with_the_old_one_as_fallback__still_opens__resealed_on_save(
    subscription: tuple[WebhookSubscription, str], settings: Any
) -> None:
    _, secret = subscription
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "k" * 50 + "new", [old_key]
    again = WebhookSubscription.objects.get()
    assert again.signing_secret == secret
    again.save()
    settings.SECRET_KEY_FALLBACKS = []  # the old key retired: what was re-saved still opens
    assert WebhookSubscription.objects.get().signing_secret == secret


def test_secret_key_changed_without_fallback__not_signed_with_a_wrong_key__rotation_repairs(
    subscription: tuple[WebhookSubscription, str],
    settings: Any,
    actor: Actor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.SECRET_KEY = "k" * 50 + "unrelated"
    lost = WebhookSubscription.objects.get()
    assert lost.signing_secret == "" and "cannot be opened" in caplog.text
    delivery = WebhookDelivery.objects.create(
        subscription=lost, event_sequence=1, action="flag.kill", kind="kill", payload={}
    )
    assert webhooks.webhook_delivery_attempt(delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert delivery.last_error == UNREADABLE_SECRET
    repaired, secret = webhooks.webhook_rotate_secret(actor=actor, subscription=lost)
    assert WebhookSubscription.objects.get().signing_secret == secret
    assert repaired.signing_secrets(repaired.created_at) == [secret]  # "" never signs


def test_rows_from_before_sealing__read_as_stored__and_the_migration_seals_them(
    subscription: tuple[WebhookSubscription, str],
) -> None:
    created, secret = subscription
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE flags_webhooksubscription SET signing_secret = %s, "authorization" = %s',
            [secret, "Bearer plain"],
        )
    assert WebhookSubscription.objects.get().authorization == "Bearer plain"
    migration = importlib.import_module("flags.migrations.0012_seal_webhook_secrets")
    migration.seal_stored(apps, connection.schema_editor())
    raw = stored(created)
    assert raw["signing_secret"].startswith("fsv1:") and "plain" not in raw["authorization"]
    again = WebhookSubscription.objects.get()
    assert (again.signing_secret, again.authorization) == (secret, "Bearer plain")


def test_seal__randomised_and_empty_stays_empty() -> None:
    assert sealed.seal("") == ""
    assert sealed.seal("x") != sealed.seal("x")
    assert sealed.unseal(sealed.seal("x")) == "x"
    assert sealed.unseal("fsv1:not-a-token") == ""

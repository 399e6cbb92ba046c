"""One delivery attempt: sign and POST the body, log how it went, schedule the retry or give up.

At least once: a receiver may see an event twice (a worker lost after the POST but
before the log was written); ``event.sequence`` (or the delivery id header) tells
duplicates apart. Retries back off exponentially (WEBHOOK_RETRY_BASE_SECONDS, doubled each time) up
to WEBHOOK_MAX_ATTEMPTS; WEBHOOK_DISABLE_AFTER failed attempts in a row, whatever the
event, disable the subscription with an audit event (``webhook.disable``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags.models import WebhookDelivery, WebhookSubscription
from flags.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header

Status = WebhookDelivery.Status
USER_AGENT = "flagsvc-webhooks/1"
UNREADABLE_SECRET = (
    "not sent: the signing secret cannot be opened (SECRET_KEY changed without the old key "
    "in SECRET_KEY_FALLBACKS); rotate the secret and give the receiver the new one"
)


def request_for(
    delivery: WebhookDelivery, subscription: WebhookSubscription
) -> urllib.request.Request:
    """The signed POST of a delivery, timestamped now."""
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(
            subscription.signing_secrets(timezone.now()), timestamp, body
        ),
        "X-Flagsvc-Event": delivery.action,
        "X-Flagsvc-Delivery": str(delivery.pk),
    }
    if subscription.authorization:
        headers["Authorization"] = subscription.authorization
    return urllib.request.Request(subscription.url, data=body, headers=headers, method="POST")


def webhook_delivery_attempt(delivery_id: int) -> float | None:
    """Attempt a pending delivery; returns the delay before the next attempt (None: no more)."""
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Status.PENDING:
        return None
    subscription = delivery.subscription
    if not subscription.enabled:
        return _outcome(delivery_id, None, "the subscription is disabled", None, attempted=False)
    if not subscription.signing_secret:  # sealed under a key this server no longer has
        return _outcome(delivery_id, None, UNREADABLE_SECRET, None, attempted=False)
    started = time.perf_counter()
    code: int | None = None
    error = ""
    try:
        with urllib.request.urlopen(
            request_for(delivery, subscription), timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        ) as response:
            code = response.status
            response.read(1024)
    except urllib.error.HTTPError as failure:
        code, error = failure.code, f"HTTP {failure.code} {failure.reason}"
    except (OSError, ValueError) as failure:
        error = f"{getattr(failure, 'reason', failure)}"[:1000]
    latency_ms = (time.perf_counter() - started) * 1000
    return _outcome(delivery_id, code, error, latency_ms, attempted=True)


@transaction.atomic
def _outcome(
    delivery_id: int, code: int | None, error: str, latency_ms: float | None, *, attempted: bool
) -> float | None:
    delivery = (
        WebhookDelivery.objects.select_for_update()
        .select_related("subscription")
        .get(pk=delivery_id)
    )
    subscription = WebhookSubscription.objects.select_for_update().get(pk=delivery.subscription_id)
    if delivery.status != Status.PENDING:
        return None  # a duplicate message got here first
    moment = timezone.now()
    if not attempted:
        delivery.status, delivery.last_error = Status.FAILED, error
        delivery.next_attempt_at = None
        delivery.save()
        return None
    delivery.attempts += 1
    delivery.last_status_code, delivery.latency_ms = code, latency_ms
    countdown: float | None = None
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.delivered_at, delivery.last_error = Status.DELIVERED, moment, ""
        delivery.next_attempt_at = None
        subscription.consecutive_failures = 0
    else:
        delivery.last_error = error or f"HTTP {code}"
        subscription.consecutive_failures += 1
        if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = Status.FAILED, None
        else:
            countdown = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = moment + timedelta(seconds=countdown)
        if (
            subscription.enabled
            and subscription.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER
        ):
            countdown = None
            delivery.status, delivery.next_attempt_at = Status.FAILED, None
            _disable(subscription, delivery)
    delivery.save()
    subscription.save(update_fields=["consecutive_failures", "enabled", "disabled_reason"])
    return countdown


def _disable(subscription: WebhookSubscription, delivery: WebhookDelivery) -> None:
    reason = (
        f"disabled after {subscription.consecutive_failures} failed delivery attempts in a row "
        f"(last: {delivery.last_error})"
    )
    subscription.enabled, subscription.disabled_reason = False, reason
    WebhookDelivery.objects.filter(subscription=subscription, status=Status.PENDING).exclude(
        pk=delivery.pk
    ).update(status=Status.FAILED, last_error="the subscription was disabled", next_attempt_at=None)
    recorder.audit_record(
        actor=Actor.system("webhooks"),
        action="webhook.disable",
        target_type="webhook",
        target_key=f"{subscription.environment.key}:{subscription.name}",
        environment_key=subscription.environment.key,
        before={"enabled": True},
        after={
            "enabled": False,
            "url": subscription.url,
            "failures": subscription.consecutive_failures,
        },
        reason=reason,
    )

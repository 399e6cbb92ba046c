"""Turn every audited change into webhook deliveries, queued for Celery once the change commits.

``deliveries_queue`` receives ``audit.recorder.event_recorded`` — the one place every
audited change passes, people's and the scheduler's and guardrails' alike — inside
the change's transaction. It writes the deliveries there (they vanish if the change
rolls back) and hands their ids to Celery only after commit. Nothing here can fail
the change: a broker that cannot take the message is logged, and the beat sweep
(``flags.sweep_webhooks``) sends the delivery later.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from audit import recorder
from audit.models import AuditEvent
from flags.models import WebhookDelivery, WebhookSubscription
from flags.webhooks.formatters import FORMATTERS, event_document, event_kind, flag_link

logger = logging.getLogger(__name__)

DELIVER_TASK = "flags.deliver_webhook"
SWEEP_GRACE = timedelta(seconds=60)


def delivery_queue(delivery_id: int, countdown: float = 0) -> None:
    """Hand one delivery to Celery (by task name: the tasks module sits above this one)."""
    try:
        current_app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown or None)
    except Exception:  # the change stands; the sweep sends it later
        logger.warning("could not queue webhook delivery #%s", delivery_id, exc_info=True)


def _queue_all(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        delivery_queue(delivery_id)


@receiver(recorder.event_recorded, dispatch_uid="webhooks.deliveries_queue")
def deliveries_queue(*, event: AuditEvent, **_: Any) -> None:
    """Write a delivery per matching subscription and queue them after commit.

    A subscription matches its environment's events (and flag definition changes,
    which have none: they reach every environment) of the kinds it asked for.
    """
    kind = event_kind(event.action)
    if kind is None:
        return
    subscriptions = WebhookSubscription.objects.filter(enabled=True)
    if event.environment_key:
        subscriptions = subscriptions.filter(environment__key=event.environment_key)
    matching = [s for s in subscriptions if not s.kinds or kind in s.kinds]
    if not matching:
        return
    document = event_document(
        sequence=event.sequence,
        occurred_at=event.occurred_at,
        actor=event.actor,
        actor_kind=event.actor_kind,
        action=event.action,
        target_type=event.target_type,
        target_key=event.target_key,
        flag_key=event.flag_key,
        environment_key=event.environment_key,
        before=event.before,
        after=event.after,
        reason=event.reason,
        incident_id=str(event.incident_id) if event.incident_id else None,
    )
    link = flag_link(settings.FLAGSVC_PUBLIC_URL, event.flag_key)
    created = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=subscription,
            event_sequence=event.sequence,
            action=event.action,
            kind=kind,
            payload=FORMATTERS[subscription.format](document, kind, link),
        )
        for subscription in matching
    )
    transaction.on_commit(partial(_queue_all, [d.pk for d in created]), robust=True)


def deliveries_overdue_requeue(*, now: Any = None) -> int:
    """Queue again the pending deliveries whose message was lost (what the sweep task runs)."""
    moment = now or timezone.now()
    overdue = list(
        WebhookDelivery.objects.filter(
            Q(next_attempt_at__lt=moment - SWEEP_GRACE)
            | Q(next_attempt_at__isnull=True, created_at__lt=moment - SWEEP_GRACE),
            status=WebhookDelivery.Status.PENDING,
            subscription__enabled=True,
        ).values_list("id", flat=True)[:1000]
    )
    _queue_all(overdue)
    return len(overdue)

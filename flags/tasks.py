"""Celery tasks of the flag domain: the rollout tick, the guardrail tick, webhook deliveries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from flags import guardrails, selectors, webhooks
from flags.rollouts import rollout_plans_advance_due

logger = logging.getLogger(__name__)


@shared_task(name="flags.advance_rollouts", ignore_result=True)
def advance_rollouts(hint: bool = True, until: float | None = None) -> int:
    """Apply every rollout step that is due (beat sends this every ROLLOUT_TICK_SECONDS).

    Any number of these may run at once, twice, or late: each step is applied
    exactly once (flags.rollouts.scheduler). So that steps land on time between ticks, a run
    also queues one extra run for the next step due before the next tick (``until``,
    a timestamp; a beat tick sets it to now + the interval), and that run does the
    same up to the same ``until``: one short chain per tick, never overlapping the
    next tick's. Exactly-once never depends on it; ``hint=False`` turns it off.
    """
    applied = rollout_plans_advance_due()
    if hint:
        now = timezone.now()
        horizon = (
            datetime.fromtimestamp(until, tz=UTC)
            if until is not None
            else now + timedelta(seconds=settings.ROLLOUT_TICK_SECONDS)
        )
        _queue_run_for_next_due(now, horizon)
    return applied


def _queue_run_for_next_due(now: datetime, horizon: datetime) -> None:
    upcoming = selectors.rollout_next_due_between(now, horizon)
    if upcoming is None:
        return
    try:
        advance_rollouts.apply_async(
            kwargs={"hint": True, "until": horizon.timestamp()},
            eta=upcoming,
            expires=horizon + timedelta(seconds=settings.ROLLOUT_TICK_SECONDS),
            retry=False,
        )
    except Exception:  # the beat tick still comes; only the precision is lost
        logger.warning("could not queue the rollout step due at %s", upcoming, exc_info=True)


@shared_task(name="flags.check_guardrails", ignore_result=True)
def check_guardrails() -> int:
    """Check every watched guardrail (beat sends this every GUARDRAIL_TICK_SECONDS).

    Runs twice at once safely: each breach is acted on exactly once (flags.guardrails.checks).
    """
    return guardrails.guardrails_check_due()


@shared_task(name="flags.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """Attempt one webhook delivery; a failure queues the next attempt with exponential backoff."""
    countdown = webhooks.webhook_delivery_attempt(delivery_id)
    if countdown is not None:
        webhooks.delivery_queue(delivery_id, countdown=countdown)


@shared_task(name="flags.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> int:
    """Queue again deliveries whose message was lost (broker down at commit, worker lost)."""
    return webhooks.deliveries_overdue_requeue()

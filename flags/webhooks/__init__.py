"""Outbound webhooks: every audited change, signed, delivered by Celery after commit with retries.

``queue`` turns audit events into deliveries after commit; ``delivery`` makes one
attempt (sign, POST, log, back off, disable after repeated failures); ``signing`` the
HMAC; ``formatters`` the bodies (signed JSON, Slack, Grafana annotations);
``subscriptions`` people's writes. ``flags.apps`` connects the queue's receiver.
"""

from flags.webhooks.delivery import webhook_delivery_attempt
from flags.webhooks.formatters import KINDS, event_kind, grafana_annotation, slack_message
from flags.webhooks.queue import deliveries_overdue_requeue, delivery_queue
from flags.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signature_header,
    signature_valid,
)
from flags.webhooks.subscriptions import (
    MAX_OVERLAP_HOURS,
    webhook_create,
    webhook_delete,
    webhook_record,
    webhook_rotate_secret,
    webhook_set_enabled,
    webhook_update,
)

__all__ = [
    "KINDS",
    "MAX_OVERLAP_HOURS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "deliveries_overdue_requeue",
    "delivery_queue",
    "event_kind",
    "grafana_annotation",
    "signature",
    "signature_header",
    "signature_valid",
    "slack_message",
    "webhook_create",
    "webhook_delete",
    "webhook_delivery_attempt",
    "webhook_record",
    "webhook_rotate_secret",
    "webhook_set_enabled",
    "webhook_update",
]

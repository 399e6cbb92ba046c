"""Guardrails (health checks that halt a bad rollout) and outbound webhooks (design §10)."""

from __future__ import annotations

from datetime import datetime

from django.db import models

from flags.models.core import Environment, Flag, RolloutPlan, key_validator
from flagsvc.sealed import SealedTextField


class Guardrail(models.Model):
    """A health check watching one flag in one environment: a Prometheus query and a threshold.

    Evaluated by Celery beat (``flags.guardrails``) while the flag has an advancing
    rollout plan, and for ``watch_seconds`` after any change to its state. When the
    comparison holds for ``for_seconds`` the guardrail acts once per breach (pause the
    plan, step it back, or kill the flag) through the audited services, as
    ``guardrail:<name>``. A query that fails or returns nothing blocks the plan's next step.
    """

    class Comparison(models.TextChoices):
        GT = "gt", ">"
        GTE = "gte", ">="
        LT = "lt", "<"
        LTE = "lte", "<="

    class Action(models.TextChoices):
        PAUSE = "pause", "pause the rollout plan"
        STEP_BACK = "step_back", "step the plan back to its previous split"
        KILL = "kill", "kill the flag"

    class Health(models.TextChoices):
        UNKNOWN = "unknown"  # never checked yet
        OK = "ok"
        PENDING = "pending"  # breaching, not yet for `for_seconds`
        BREACH = "breach"  # breaching for `for_seconds`: acted (or had nothing to act on)
        ERROR = "error"  # the query failed
        NO_DATA = "no_data"  # the query answered no (finite) number

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="guardrails")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="guardrails"
    )
    name = models.CharField(max_length=100, validators=[key_validator])
    query = models.TextField(help_text="A PromQL instant query answering one number.")
    comparison = models.CharField(max_length=3, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField()
    for_seconds = models.PositiveIntegerField(default=0)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.PAUSE)
    watch_seconds = models.PositiveIntegerField(
        default=900, help_text="How long it keeps watching after a step or a manual change."
    )
    prometheus_url = models.CharField(
        max_length=500, blank=True, help_text="Empty: the PROMETHEUS_URL setting."
    )
    enabled = models.BooleanField(default=True)
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.UNKNOWN)
    last_value = models.FloatField(null=True, blank=True)
    last_message = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # Start of the current breach (None: healthy); acted_for marks the breach acted upon.
    breach_started_at = models.DateTimeField(null=True, blank=True)
    acted_for = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("flag__key", "environment__sort_order", "name")
        constraints = [
            models.UniqueConstraint(
                fields=("flag", "environment", "name"), name="unique_guardrail_name"
            )
        ]

    def __str__(self) -> str:
        return f"guardrail {self.name}"


class GuardrailCheck(models.Model):
    """One evaluation of a guardrail: what the query answered and what (if anything) was done."""

    guardrail = models.ForeignKey(Guardrail, on_delete=models.CASCADE, related_name="checks")
    plan = models.ForeignKey(
        RolloutPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="checks"
    )
    checked_at = models.DateTimeField(db_index=True)
    health = models.CharField(max_length=10, choices=Guardrail.Health.choices)
    value = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    acted = models.CharField(max_length=10, blank=True)  # the action taken, if any
    breach_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-checked_at", "-id")
        constraints = [
            # Exactly once: one action per breach of a guardrail, whatever runs at once.
            models.UniqueConstraint(
                fields=("guardrail", "breach_started_at"),
                condition=~models.Q(acted=""),
                name="one_action_per_breach",
            )
        ]

    def __str__(self) -> str:
        return f"{self.health} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class WebhookSubscription(models.Model):
    """Where changes in one environment are sent: a URL, the kinds of change, a format.

    ``signing_secret`` is kept usable (an HMAC key must be), shown once when created or
    rotated; after a rotation the ``previous_signing_secret`` also signs deliveries until
    ``previous_secret_expires_at``, so receivers can switch without losing any.
    ``authorization`` is an optional header value (a Grafana service-account token).
    """

    class Format(models.TextChoices):
        JSON = "json", "signed JSON (the audit event)"
        SLACK = "slack", "Slack-compatible incoming webhook"
        GRAFANA = "grafana", "Grafana annotation (POST /api/annotations)"

    name = models.CharField(max_length=100)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    kinds = models.JSONField(default=list, help_text="Event kinds sent; empty: every kind.")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.JSON)
    # Sealed at rest (flagsvc.sealed): flagsvc must read them back to sign and to send.
    signing_secret = SealedTextField(editable=False)
    previous_signing_secret = SealedTextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    authorization = SealedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("environment__sort_order", "name")

    def __str__(self) -> str:
        return f"webhook {self.name}"

    @property
    def secret_hint(self) -> str:
        return self.signing_secret[-4:]

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with at ``now``: the current one, then the previous
        one while a rotation's overlap lasts."""
        previous = self.previous_signing_secret
        until = self.previous_secret_expires_at
        if previous and until is not None and until > now:
            return [self.signing_secret, previous]
        return [self.signing_secret]


class WebhookDelivery(models.Model):
    """One audit event sent to one subscription: its attempts and how the last one went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last retry (or the subscription was disabled)

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_sequence = models.PositiveBigIntegerField()
    action = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(
                fields=("subscription", "event_sequence"), name="one_delivery_per_event"
            )
        ]
        indexes = [models.Index(fields=("status", "next_attempt_at"))]

    def __str__(self) -> str:
        return f"{self.action} #{self.event_sequence}: {self.status}"

"""The flag domain: environments, flags, each flag's state per environment, segments,
issued secrets, rollout plans, and the edge's and emergency path's records.

Models hold data and its invariants only. Every write goes through
``flags.services`` (audited, versioned, published after commit).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.validators import RegexValidator
from django.db import models

from flagsvc_sdk.engine import FLAG_KEY_PATTERN, FLAG_TYPES

key_validator = RegexValidator(
    FLAG_KEY_PATTERN,
    "Use 1-100 characters: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit.",
)


def new_lineage() -> str:
    return secrets.token_hex(6)


def new_revision() -> str:
    return secrets.token_hex(4)


class Environment(models.Model):
    """A deployment stage (development, staging, production) with its own flag states."""

    key = models.CharField(max_length=64, unique=True, validators=[key_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # Bumped in the same transaction as every change to what this environment
    # evaluates to; SDKs and caches compare it to know they are current.
    version = models.PositiveBigIntegerField(default=1)
    # A version number alone does not say which history it belongs to: a restored
    # backup or a recreated database counts again from a lower number, and another
    # deployment may share the Redis. ``lineage`` is drawn once when the environment
    # is created and ``revision`` anew with every version, so (lineage, version,
    # revision) names one snapshot, and any cache holding a different one is stale.
    lineage = models.CharField(max_length=16, default=new_lineage, editable=False)
    revision = models.CharField(max_length=16, default=new_revision, editable=False)
    sort_order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("sort_order", "id")

    def __str__(self) -> str:
        return self.key


class Tag(models.Model):
    """A label on flags (team, area, "kill-switch"); a tag kill acts on all its flags."""

    name = models.CharField(max_length=64, unique=True, validators=[key_validator])

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Flag(models.Model):
    """A feature flag: its key, type and variants are the same in every environment."""

    class Type(models.TextChoices):
        BOOLEAN = "boolean"
        STRING = "string"
        NUMBER = "number"
        JSON = "json"

    assert tuple(Type.values) == FLAG_TYPES

    key = models.CharField(max_length=100, unique=True, validators=[key_validator])
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.BOOLEAN)
    variants = models.JSONField(default=dict)
    off_variant = models.CharField(max_length=64, default="off")
    tags = models.ManyToManyField(Tag, blank=True, related_name="flags")
    owner = models.CharField(max_length=200, blank=True, help_text="Team or person to ask.")
    client_visible = models.BooleanField(
        default=False, help_text="Browsers (client SDK keys) may evaluate this flag."
    )
    archived_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("key",)
        permissions = [
            ("kill_flag", "Can kill a flag (serve its off variant now) and list active kills"),
            ("restore_flag", "Can restore a killed flag"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class FlagState(models.Model):
    """How one flag behaves in one environment, plus the kill overlay on top of it."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="states")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="flag_states"
    )
    enabled = models.BooleanField(default=False)
    targets = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, blank=True)
    default_serve = models.JSONField(default=dict)
    prerequisites = models.JSONField(default=list, blank=True)
    # The kill overlay: set by flag_kill, cleared by flag_restore; the
    # definition above is never touched by either.
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_by = models.CharField(max_length=200, blank=True)
    kill_reason = models.TextField(blank=True)
    kill_incident = models.UUIDField(null=True, blank=True)
    # Optimistic-concurrency version of this state (If-Match), bumped on every write.
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("flag", "environment"), name="one_state_per_environment"
            )
        ]
        indexes = [models.Index(fields=("environment", "killed_at"))]

    def __str__(self) -> str:
        return f"{self.flag_id}@{self.environment_id}"

    @property
    def killed(self) -> bool:
        return self.killed_at is not None

    def definition(self) -> dict[str, Any]:
        """The editable part of the state, as the validator and the audit trail see it."""
        return {
            "enabled": self.enabled,
            "targets": self.targets,
            "rules": self.rules,
            "default_serve": self.default_serve,
            "prerequisites": self.prerequisites,
        }

    def kill_overlay(self) -> dict[str, Any] | None:
        if self.killed_at is None:
            return None
        return {
            "by": self.killed_by,
            "at": self.killed_at.isoformat().replace("+00:00", "Z"),
            "reason": self.kill_reason,
            "incident": str(self.kill_incident) if self.kill_incident else None,
        }


class Segment(models.Model):
    """A reusable audience in one environment: listed keys plus attribute rules."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="segments")
    key = models.CharField(max_length=100, validators=[key_validator])
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    included = models.JSONField(default=list, blank=True)
    excluded = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("environment", "key")
        constraints = [
            models.UniqueConstraint(
                fields=("environment", "key"), name="segment_key_per_environment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.environment_id}"

    def definition(self) -> dict[str, Any]:
        return {"included": self.included, "excluded": self.excluded, "rules": self.rules}


class IssuedSecret(models.Model):
    """A secret shown once, stored as its SHA-256 digest, revocable: API tokens and kill triggers.

    Issued and revoked (audited) by ``flags.services.credentials``; the raw value is
    made and digested by ``flags.issued_secrets``.
    """

    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The last characters of the raw secret, so people can tell secrets apart.
    hint = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True
        ordering = ("-created_at",)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def audit_label(self) -> str:
        """How the audit trail names it: its name and hint, never the secret."""
        return f"{self.name} (…{self.hint})"


class ApiToken(IssuedSecret):
    """A credential for the HTTP API. Only its SHA-256 digest is stored; the raw value is shown once."""

    class Kind(models.TextChoices):
        ADMIN = "admin", "admin (management API)"
        SERVER = "server", "server SDK key"
        CLIENT = "client", "client SDK key"
        KILL = "kill", "kill key"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    environment = models.ForeignKey(
        Environment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tokens",
        help_text="Required for server and client keys; optional for kill keys; none for admin.",
    )
    # Written at most once a minute per process, never on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(IssuedSecret.Meta):
        # Minting an admin token grants full API power: it needs this beyond add_apitoken.
        permissions = [("issue_admin_token", "Can issue admin tokens (full API access)")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}…{self.hint})"


class KillTrigger(IssuedSecret):
    """An unguessable URL that kills or restores one flag in one environment (for APM alerts).

    Only the SHA-256 digest of its secret is stored; the URL is shown once.
    """

    class Action(models.TextChoices):
        KILL = "kill"
        RESTORE = "restore"

    name = models.CharField(max_length=100, help_text="Who fires it, e.g. datadog-checkout-errors.")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="triggers")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="triggers")
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.KILL)
    reason = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="The reason of every kill or restore this URL fires (an alert's note is added).",
    )

    def __str__(self) -> str:
        return f"{self.name}: {self.action} {self.flag_id}@{self.environment_id}"


class RolloutPlan(models.Model):
    """A scheduled ramp-up of one flag's percentage split in one environment.

    Celery beat carries it out step by step through ``flags.rollouts`` (audited,
    versioned, published). At most one plan per flag and environment is active
    (scheduled, running or paused); finished plans stay for the record.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"  # no step applied yet
        RUNNING = "running"  # some steps applied, more to come
        PAUSED = "paused"  # by a person, a kill or a manual edit; waits for resume
        COMPLETED = "completed"  # every step applied
        ABORTED = "aborted"  # stopped for good (abort, replace, archive)

    ACTIVE = ("scheduled", "running", "paused")
    ADVANCING = ("scheduled", "running")

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="rollout_plans")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="rollout_plans"
    )
    # The split the plan drives: the default serve, or the serve of the rule with this id.
    rule_id = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=64, help_text="The variant being rolled out.")
    baseline_variant = models.CharField(max_length=64, help_text="What everyone else gets.")
    bucket_by = models.CharField(max_length=256, default="targetingKey")
    allow_decrease = models.BooleanField(default=False)
    timezone = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.CharField(max_length=200, blank=True)
    # When the next step falls due; null while paused or finished.
    next_due_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    resumed_at = models.DateTimeField(null=True, blank=True)
    # The serve the plan expects to find before its next step (what it last wrote, or
    # what was there when it started or resumed): anything else means someone changed it.
    expected_serve = models.JSONField(null=True, blank=True)
    # Why the due step is not applied yet (a guardrail not known healthy); empty otherwise.
    blocked_reason = models.TextField(blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(
                fields=("flag", "environment"),
                condition=models.Q(status__in=("scheduled", "running", "paused")),
                name="one_active_rollout_plan",
            )
        ]
        indexes = [models.Index(fields=("status", "next_due_at"))]

    def __str__(self) -> str:
        return f"rollout plan #{self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def target_label(self) -> str:
        return f"rule {self.rule_id!r}" if self.rule_id else "default serve"


class RolloutStep(models.Model):
    """One step of a rollout plan; ``applied_at`` is written in the transaction that applies it."""

    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField(help_text="1, 2, 3, … in the plan's order.")
    weight = models.PositiveIntegerField(help_text="Basis points of the rolled-out variant.")
    at = models.DateTimeField(null=True, blank=True)
    after_seconds = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    # When it fell due and when it was applied, both written by the applying transaction.
    due_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("plan", "number")
        constraints = [
            models.UniqueConstraint(fields=("plan", "number"), name="one_step_per_number")
        ]

    def __str__(self) -> str:
        return f"step {self.number} of plan #{self.plan_id}"


class EdgeProcess(models.Model):
    """A live edge process's last report (what it serves), when there is no Redis to hold it.

    Written by ``flags.propagation`` only: kill answers read these rows to confirm
    that every process has installed the new version.
    """

    name = models.CharField(max_length=200, primary_key=True)
    report = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name


class EmergencyRecord(models.Model):
    """A journaled emergency kill or restore that has been written to the database.

    Inserted in the same transaction as the audited kill it replays: its unique
    entry id makes the replay happen exactly once, whichever process runs it.
    """

    entry_id = models.CharField(max_length=64, unique=True)
    action = models.CharField(max_length=16)
    flag_key = models.CharField(max_length=100)
    environment_key = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.action} {self.flag_key}@{self.environment_key} ({self.entry_id})"

"""Issued secrets: API tokens and kill triggers, issued (the raw value shown once) and revoked, audited."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags import publish
from flags.errors import FlagArchived, ValidationFailed
from flags.issued_secrets import (
    TOKEN_PREFIXES,
    TRIGGER_PREFIX,
    secret_digest,
    secret_generate,
)
from flags.models import ApiToken, Environment, Flag, IssuedSecret, KillTrigger
from flags.services import core

Secret = TypeVar("Secret", bound=IssuedSecret)


@dataclass(frozen=True)
class _SecretKind:
    """How one kind of issued secret is audited: what the trail calls it and records of it."""

    target_type: str  # "token" or "trigger": the audit target type and action prefix
    related: tuple[str, ...]  # loaded with it to build its record
    record: Callable[[Any], dict[str, Any]]  # never the secret or its digest
    scope: Callable[[Any], tuple[str, str]]  # the audit event's flag key and environment key
    # Every process must hear of a change (it refuses a revoked token as fast as a kill spreads).
    announced: bool = False


def _token_record(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "kind": token.kind,
        "environment": token.environment.key if token.environment else None,
        "hint": token.hint,
        "revoked": token.revoked,
    }


def _trigger_record(trigger: KillTrigger) -> dict[str, Any]:
    return {
        "name": trigger.name,
        "flag": trigger.flag.key,
        "environment": trigger.environment.key,
        "action": trigger.action,
        "hint": trigger.hint,
        "revoked": trigger.revoked,
    }


TOKENS = _SecretKind(
    target_type="token",
    related=("environment",),
    record=_token_record,
    scope=lambda t: ("", t.environment.key if t.environment else ""),
    announced=True,
)
TRIGGERS = _SecretKind(
    target_type="trigger",
    related=("flag", "environment"),
    record=_trigger_record,
    scope=lambda t: (t.flag.key, t.environment.key),
)


def _check_name(name: str, what: str, example: str, problem: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            f"Name the {what} (1-100 characters), e.g. {example}.", {"name": problem}
        )
    return name


def _audit(
    kind: _SecretKind,
    secret: IssuedSecret,
    verb: str,
    *,
    actor: Actor,
    reason: str,
    before: dict[str, Any] | None = None,
) -> None:
    """The one audit event of an issued secret's change (``<type>.<verb>``), then the announcement."""
    flag_key, environment_key = kind.scope(secret)
    recorder.audit_record(
        actor=actor,
        action=f"{kind.target_type}.{verb}",
        target_type=kind.target_type,
        target_key=secret.audit_label,
        flag_key=flag_key,
        environment_key=environment_key,
        before=before,
        after=kind.record(secret),
        reason=reason,
    )
    if kind.announced:
        transaction.on_commit(publish.tokens_changed)


def _issue(
    kind: _SecretKind, secret: Secret, *, actor: Actor, prefix: str, reason: str
) -> tuple[Secret, str]:
    """Give ``secret`` (unsaved) a new raw value, save it, audit ``<type>.create``; returns both."""
    raw = secret_generate(prefix)
    secret.digest, secret.hint, secret.created_by = secret_digest(raw), raw[-4:], actor.name
    secret.save()
    _audit(kind, secret, "create", actor=actor, reason=reason)
    return secret, raw


def _revoke(kind: _SecretKind, secret: Secret, *, actor: Actor, reason: str) -> Secret:
    """Revoke ``secret`` (locked and re-read first) and audit ``<type>.revoke``; once only."""
    reason = core.check_reason(reason)
    secret = (
        type(secret)
        ._default_manager.select_for_update(of=("self",))
        .select_related(*kind.related)
        .get(pk=secret.pk)
    )
    if secret.revoked:
        return secret
    before = kind.record(secret)
    secret.revoked_at, secret.revoked_by = timezone.now(), actor.name
    secret.save(update_fields=["revoked_at", "revoked_by"])
    _audit(kind, secret, "revoke", actor=actor, reason=reason, before=before)
    return secret


# --- API tokens -------------------------------------------------------------------------------


@transaction.atomic
def token_issue(
    *,
    actor: Actor,
    kind: str,
    name: str,
    environment: Environment | None = None,
    reason: str = "",
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never shown again.

    Server and client SDK keys belong to one environment; a kill key may; an admin
    token may not.
    """
    reason = core.check_reason(reason)
    if kind not in ApiToken.Kind.values:
        raise ValidationFailed(
            f"Unknown token kind {kind!r}; use one of {', '.join(ApiToken.Kind.values)}.",
            {"kind": f"one of {', '.join(ApiToken.Kind.values)}"},
        )
    name = _check_name(name, "token", "checkout-service", "required, at most 100 characters")
    if kind in (ApiToken.Kind.SERVER, ApiToken.Kind.CLIENT) and environment is None:
        raise ValidationFailed(
            f"A {kind} SDK key belongs to one environment; say which.",
            {"environment": "required for this kind"},
        )
    if kind == ApiToken.Kind.ADMIN and environment is not None:
        raise ValidationFailed(
            "Admin tokens act on every environment; do not give one.",
            {"environment": "not allowed for admin tokens"},
        )
    token = ApiToken(name=name, kind=kind, environment=environment)
    return _issue(TOKENS, token, actor=actor, prefix=TOKEN_PREFIXES[kind], reason=reason)


@transaction.atomic
def token_revoke(*, actor: Actor, token: ApiToken, reason: str = "") -> ApiToken:
    """Revoke a token: every process refuses it as fast as a kill propagates."""
    return _revoke(TOKENS, token, actor=actor, reason=reason)


def token_last_used_update(*, seen: Mapping[str, float]) -> int:
    """Record when tokens were last used (batched by flags.tokens.usage).

    Usage bookkeeping, not a change anyone makes: no audit event, no version bump,
    and a time never moves backwards.
    """
    updated = 0
    for digest, moment in seen.items():
        at = datetime.fromtimestamp(moment, tz=UTC)
        updated += ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=at), digest=digest
        ).update(last_used_at=at)
    return updated


# --- kill triggers ----------------------------------------------------------------------------


@transaction.atomic
def trigger_create(
    *,
    actor: Actor,
    name: str,
    flag: Flag,
    environment: Environment,
    action: str = "kill",
    reason: str = "",
) -> tuple[KillTrigger, str]:
    """Create a trigger URL for an APM alert; returns it with its secret, which is never shown again."""
    reason = core.check_reason(reason)
    name = _check_name(name, "trigger", "datadog-checkout-5xx", "required")
    if action not in KillTrigger.Action.values:
        raise ValidationFailed(
            f"A trigger either kills or restores; got {action!r}.", {"action": "kill or restore"}
        )
    if flag.archived:
        raise FlagArchived(f"Flag {flag.key!r} is archived; triggers for it would do nothing.")
    # The reason given here is also the reason of every kill or restore the URL fires.
    trigger = KillTrigger(
        name=name,
        flag=flag,
        environment=environment,
        action=action,
        reason=reason[: core.MAX_KILL_REASON],
    )
    return _issue(TRIGGERS, trigger, actor=actor, prefix=TRIGGER_PREFIX, reason=reason)


@transaction.atomic
def trigger_revoke(*, actor: Actor, trigger: KillTrigger, reason: str = "") -> KillTrigger:
    """Revoke a trigger: its URL answers 404 from now on."""
    return _revoke(TRIGGERS, trigger, actor=actor, reason=reason)

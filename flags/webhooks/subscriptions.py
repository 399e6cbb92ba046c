"""People's webhook writes: subscribe (the signing secret is shown once), rotate the secret
(shown once too), enable, disable, delete.

The signing secret is kept readable, not as a digest: flagsvc needs it to sign every
delivery. It is sealed at rest (``flagsvc.sealed``, a key derived from SECRET_KEY), as is
the receiver's Authorization header, and never shown again: the admin and the API show
its last four characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from audit import recorder
from audit.recorder import Actor
from flags.models import Environment, WebhookSubscription
from flags.services import core
from flags.webhooks.formatters import KINDS
from flags.webhooks.signing import signing_secret_generate


def webhook_record(subscription: WebhookSubscription) -> dict[str, Any]:
    """A subscription as the audit trail and the API show it (never its secret)."""
    return {
        "id": subscription.pk,
        "name": subscription.name,
        "environment": subscription.environment.key,
        "url": subscription.url,
        "kinds": list(subscription.kinds),
        "format": subscription.format,
        "enabled": subscription.enabled,
        "secret_hint": subscription.secret_hint,
        "previous_secret_until": (
            subscription.previous_secret_expires_at.isoformat()
            if subscription.previous_signing_secret and subscription.previous_secret_expires_at
            else None
        ),
        "authorization": bool(subscription.authorization),
    }


def _audit(
    actor: Actor, action: str, subscription: WebhookSubscription, before: Any, reason: str
) -> None:
    recorder.audit_record(
        actor=actor,
        action=f"webhook.{action}",
        target_type="webhook",
        target_key=f"{subscription.environment.key}:{subscription.name}",
        environment_key=subscription.environment.key,
        before=before,
        after=webhook_record(subscription) if action != "delete" else None,
        reason=reason,
    )


def _problems(name: Any, url: Any, kinds: Any, format: Any, authorization: Any) -> dict[str, str]:
    """What is wrong with a subscription's settings (empty if nothing)."""
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors["name"] = "1-100 characters"
    try:
        if not isinstance(url, str) or len(url) > 500:
            raise ValidationError("too long")
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        errors["url"] = "an http(s) URL of at most 500 characters"
    if not isinstance(kinds, list | tuple) or any(kind not in KINDS for kind in kinds):
        errors["kinds"] = f"a list of: {', '.join(KINDS)} (empty: every kind)"
    if format not in WebhookSubscription.Format.values:
        errors["format"] = f"one of {', '.join(WebhookSubscription.Format.values)}"
    if (
        not isinstance(authorization, str)
        or len(authorization) > 500
        or any(ord(c) < 32 or ord(c) == 127 for c in authorization)
    ):
        errors["authorization"] = "a header value of at most 500 characters, on one line"
    return errors


@transaction.atomic
def webhook_create(
    *,
    actor: Actor,
    environment: Environment,
    name: str,
    url: str,
    kinds: Sequence[str] = (),
    format: str = "json",
    authorization: str = "",
    reason: str = "",
) -> tuple[WebhookSubscription, str]:
    """Send ``environment``'s changes of ``kinds`` (none: all) to ``url``; returns it and its secret."""
    reason = core.check_reason(reason)
    core.raise_definition(_problems(name, url, kinds, format, authorization))
    secret = signing_secret_generate()
    subscription = WebhookSubscription.objects.create(
        environment=environment,
        name=name.strip(),
        url=url,
        kinds=sorted(set(kinds)),
        format=format,
        authorization=authorization,
        signing_secret=secret,
        created_by=actor.name,
    )
    _audit(actor, "create", subscription, None, reason)
    return subscription, secret


def _locked(subscription: WebhookSubscription) -> WebhookSubscription:
    return (
        WebhookSubscription.objects.select_for_update(of=("self",))
        .select_related("environment")
        .get(pk=subscription.pk)
    )


EDITABLE = ("name", "url", "kinds", "format", "authorization", "enabled")


@transaction.atomic
def webhook_update(
    *, actor: Actor, subscription: WebhookSubscription, reason: str = "", **changes: Any
) -> WebhookSubscription:
    """Change any of ``EDITABLE`` (the rest stays); one audit event, nothing if nothing changes.

    Enabling resets the failure count; the signing secret is changed only by rotation."""
    reason = core.check_reason(reason)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        core.raise_definition(dict.fromkeys(unknown, "not editable (create a new subscription)"))
    subscription = _locked(subscription)
    before = webhook_record(subscription)
    proposed = {
        key: changes.get(key, getattr(subscription, key))
        for key in ("name", "url", "kinds", "format", "authorization")
    }
    enabled = changes.get("enabled", subscription.enabled)
    errors = _problems(**proposed)
    if not isinstance(enabled, bool):
        errors["enabled"] = "true or false"
    core.raise_definition(errors)
    subscription.name = proposed["name"].strip()
    subscription.url = proposed["url"]
    subscription.kinds = sorted(set(proposed["kinds"]))
    subscription.format = proposed["format"]
    authorization_changed = proposed["authorization"] != subscription.authorization
    subscription.authorization = proposed["authorization"]
    if enabled != subscription.enabled:
        subscription.enabled = enabled
        subscription.consecutive_failures = 0
        subscription.disabled_reason = "" if enabled else f"disabled by {actor.name}"
    if webhook_record(subscription) == before and not authorization_changed:
        return subscription
    subscription.save()
    action = "update"
    if set(_changed(before, webhook_record(subscription))) == {"enabled"}:
        action = "enable" if subscription.enabled else "disable"
    _audit(actor, action, subscription, before, reason)
    return subscription


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [key for key in after if before.get(key) != after[key]]


def webhook_set_enabled(
    *, actor: Actor, subscription: WebhookSubscription, enabled: bool, reason: str = ""
) -> WebhookSubscription:
    """Switch deliveries on (failure count reset) or off; nothing if already so."""
    return webhook_update(actor=actor, subscription=subscription, enabled=enabled, reason=reason)


MAX_OVERLAP_HOURS = 7 * 24


@transaction.atomic
def webhook_rotate_secret(
    *,
    actor: Actor,
    subscription: WebhookSubscription,
    overlap_hours: float = 24,
    reason: str = "",
) -> tuple[WebhookSubscription, str]:
    """Issue a new signing secret (returned, shown once). For ``overlap_hours`` deliveries are
    signed with the new and the previous secret, so the receiver can switch in its own time;
    0 retires the previous secret at once (it leaked). A secret rotated during an overlap
    replaces the previous one: only the last two ever sign."""
    reason = core.check_reason(reason)
    if (
        isinstance(overlap_hours, bool)
        or not isinstance(overlap_hours, int | float)
        or not 0 <= overlap_hours <= MAX_OVERLAP_HOURS
    ):
        core.raise_definition({"overlap_hours": f"a number of hours from 0 to {MAX_OVERLAP_HOURS}"})
    subscription = _locked(subscription)
    before = webhook_record(subscription)
    secret = signing_secret_generate()
    if overlap_hours > 0:
        subscription.previous_signing_secret = subscription.signing_secret
        subscription.previous_secret_expires_at = timezone.now() + timedelta(hours=overlap_hours)
    else:
        subscription.previous_signing_secret = ""
        subscription.previous_secret_expires_at = None
    subscription.signing_secret = secret
    subscription.save()
    _audit(actor, "rotate_secret", subscription, before, reason)
    return subscription, secret


@transaction.atomic
def webhook_delete(*, actor: Actor, subscription: WebhookSubscription, reason: str = "") -> None:
    """Remove a subscription and its delivery log (the audit trail keeps its record)."""
    reason = core.check_reason(reason)
    subscription = _locked(subscription)
    _audit(actor, "delete", subscription, webhook_record(subscription), reason)
    subscription.delete()

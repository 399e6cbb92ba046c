"""Trigger URLs for APM alerts: create (URL shown once), list, revoke, and fire one.

Firing needs no other credential: the secret in the path is the credential. Firings are
rate-limited per trigger, and unknown secrets per address (DRF throttle scopes
``trigger_firing`` and ``trigger_unknown``), failing open when the cache is down.
"""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from flags import selectors, services
from flags.api import serializers as s
from flags.api.alerts import ALERT_BODY_OUT, alert_body_of
from flags.api.auth import actor_for
from flags.api.http import reason_of
from flags.api.kills import KILL_ANSWER, KILLS_HINT, confirmed_kill_answer
from flags.api.lookups import flag_or_404, valid_body
from flags.api.permissions import TriggerPermission, model_permissions
from flags.api.selectors import environment_get
from flags.errors import ValidationFailed
from flags.models import KillTrigger
from flags.tokens import token_digest
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView


def _trigger_named_in(request: Request, view: Any) -> KillTrigger | None:
    """The live trigger whose secret is in the URL (looked up once per request)."""
    cached = getattr(request, "_flagsvc_trigger", ())
    if cached == ():
        cached = selectors.live_trigger_by_digest(token_digest(view.kwargs["secret"]))
        request._flagsvc_trigger = cached  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


class _TriggerThrottle(SimpleRateThrottle):
    """A trigger throttle: the rate is read per request (None: no limit); fails open."""

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate else None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or self.get_cache_key(request, view) is None:
            return True  # (a database error looking the trigger up answers as such: 503)
        try:
            return super().allow_request(request, view)
        except Exception:  # the kill must not depend on the cache being up
            return True


class TriggerFiringThrottle(_TriggerThrottle):
    """Firings per trigger (``trigger_firing``); unknown secrets are not counted here."""

    scope = "trigger_firing"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        trigger = _trigger_named_in(request, view)
        if trigger is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": trigger.pk}


class UnknownTriggerThrottle(_TriggerThrottle):
    """Tries of unknown or revoked secrets per client address (``trigger_unknown``)."""

    scope = "trigger_unknown"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if _trigger_named_in(request, view) is not None:
            return None
        address = request.META.get("REMOTE_ADDR", "") or ""
        return self.cache_format % {"scope": self.scope, "ident": address}


def _firings_per_minute() -> int:
    """The documented limit (REST_FRAMEWORK's ``trigger_firing`` rate, per minute)."""
    count, seconds = TriggerFiringThrottle().parse_rate(TriggerFiringThrottle().get_rate())
    return int(count * 60 / seconds) if count and seconds else 0


class TriggerCreateIn(s.InputSerializer):
    name = serializers.CharField(
        max_length=100, help_text="Who fires it, e.g. datadog-checkout-5xx."
    )
    flag = serializers.CharField(max_length=100)
    environment = serializers.CharField(max_length=64)
    action = serializers.ChoiceField(choices=["kill", "restore"], default="kill")
    reason = s.reason_field()


def trigger_out(trigger: KillTrigger) -> dict[str, Any]:
    return {
        "id": trigger.pk,
        "name": trigger.name,
        "flag": trigger.flag.key,
        "environment": trigger.environment.key,
        "action": trigger.action,
        "hint": trigger.hint,
        "created_at": trigger.created_at,
        "created_by": trigger.created_by,
        "revoked": trigger.revoked,
        "revoked_at": trigger.revoked_at,
    }


TRIGGER_OUT = inline_serializer(
    "Trigger",
    {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "flag": serializers.CharField(),
        "environment": serializers.CharField(),
        "action": serializers.ChoiceField(choices=["kill", "restore"]),
        "hint": serializers.CharField(help_text="The secret's last characters."),
        "created_at": serializers.DateTimeField(),
        "created_by": serializers.CharField(),
        "revoked": serializers.BooleanField(),
        "revoked_at": serializers.DateTimeField(allow_null=True),
    },
)


class TriggerListView(ApiView):
    permission_classes = [TriggerPermission]

    @extend_schema(
        operation_id="triggers_list",
        summary="Trigger URLs (never their secrets)",
        responses={
            200: inline_serializer(
                "TriggerList", {"triggers": serializers.ListField(child=TRIGGER_OUT)}
            )
        },
        tags=["kill switch"],
    )
    def get(self, request: Request) -> Response:
        triggers = selectors.trigger_list()
        return Response({"triggers": [trigger_out(t) for t in triggers]})

    @extend_schema(
        operation_id="triggers_create",
        summary="Create a trigger URL for an APM alert (the URL is shown once)",
        request=TriggerCreateIn,
        responses={
            201: inline_serializer(
                "TriggerCreated",
                {
                    "trigger": TRIGGER_OUT,
                    "url": serializers.CharField(help_text="POST here to fire; shown once."),
                },
            )
        },
        tags=["kill switch"],
    )
    def post(self, request: Request) -> Response:
        data = valid_body(TriggerCreateIn, request)
        flag = flag_or_404(data["flag"], hint=KILLS_HINT)
        environment = environment_get(data["environment"])
        if environment is None:
            raise ValidationFailed(
                f"No environment {data['environment']!r}.", {"environment": "unknown"}
            )
        trigger, secret = services.trigger_create(
            actor=actor_for(request),
            name=data["name"],
            flag=flag,
            environment=environment,
            action=data["action"],
            reason=reason_of(request, data),
        )
        url = request.build_absolute_uri(f"/api/v1/triggers/{secret}/")
        return Response(
            {"trigger": trigger_out(trigger), "url": url},
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class TriggerRevokeView(ApiView):
    permission_classes = [model_permissions(KillTrigger, POST="change")]

    @extend_schema(
        operation_id="triggers_revoke",
        summary="Revoke a trigger URL (it answers 404 from now on)",
        request=s.ReasonIn,
        responses={200: TRIGGER_OUT},
        tags=["kill switch"],
    )
    def post(self, request: Request, trigger_id: int) -> Response:
        trigger = selectors.trigger_get(trigger_id)
        if trigger is None:
            raise ApiNotFound(
                f"No trigger with id {trigger_id}. List them with GET /api/v1/triggers/."
            )
        data = valid_body(s.ReasonIn, request)
        trigger = services.trigger_revoke(
            actor=actor_for(request), trigger=trigger, reason=reason_of(request, data)
        )
        return Response(trigger_out(trigger))


def is_dry_run(value: str | None) -> bool:
    """``?dry_run=1`` (or true/yes): test the URL, change nothing."""
    return (value or "").strip().lower() in ("1", "true", "yes")


class TriggerFireView(ApiView):
    """``POST /api/v1/triggers/{secret}/``: the secret is the credential."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [TriggerFiringThrottle, UnknownTriggerThrottle]
    parser_classes: list[Any] = []  # alert tools post bodies of every shape; read raw, never 415

    @extend_schema(
        operation_id="triggers_fire",
        summary="Fire a trigger URL (for APM alerts): kills or restores its flag",
        description="Needs no other credential. Unknown or revoked secrets answer 404. "
        f"Rate-limited to {_firings_per_minute()} firings a minute per trigger (429 with "
        "Retry-After). Every firing is on the audit trail with the trigger's name and the caller's "
        'address; a body with a "note" (or title/message) string adds it to the reason. '
        "The body is optional context: whatever it is (too large, not JSON), the trigger fires. "
        "With ?dry_run=1 nothing changes: the answer says what firing would do, and the test "
        "is on the audit trail as trigger.test.",
        parameters=[
            OpenApiParameter(
                "dry_run",
                bool,
                description="1: test the URL without killing or restoring (audited as a test).",
            )
        ],
        request=None,
        responses={
            200: inline_serializer(
                "TriggerFired",
                {
                    **KILL_ANSWER.fields,
                    "alert_body": ALERT_BODY_OUT,
                    "dry_run": serializers.BooleanField(
                        required=False, help_text="Only with ?dry_run=1: nothing was changed."
                    ),
                    "would_change": serializers.BooleanField(
                        required=False, help_text="Dry run: would firing change the flag?"
                    ),
                },
            ),
            404: OpenApiResponse(description="Unknown or revoked trigger."),
            429: OpenApiResponse(description="Fired too often; see Retry-After."),
        },
        tags=["kill switch"],
        auth=[],
    )
    def post(self, request: Request, secret: str) -> Response:
        started_at = time.time()
        source_ip = request.META.get("REMOTE_ADDR", "") or ""
        trigger = _trigger_named_in(request, self)
        if trigger is None:
            raise ApiNotFound(
                "No such trigger (unknown or revoked). Ask an admin for the current URL."
            )
        alert_body = alert_body_of(request)  # bounded, and never raises: the URL alone fires
        if is_dry_run(request.query_params.get("dry_run")):
            answer = services.trigger_test(
                trigger=trigger,
                source_ip=source_ip,
                request_id=getattr(request, "request_id", ""),
                note=alert_body.note,
            )
            return Response({**answer, "alert_body": alert_body.answer()})
        outcome = services.trigger_fire(
            trigger=trigger,
            source_ip=source_ip,
            request_id=getattr(request, "request_id", ""),
            note=alert_body.note,
        )
        answer = confirmed_kill_answer(outcome, trigger.environment, started_at)
        return Response({**answer, "alert_body": alert_body.answer()})

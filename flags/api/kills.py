"""The incident commander's endpoints: kill and restore a flag or a tag, list active kills, triggers.

Kill keys (and admin tokens or staff sessions) may call them; a kill key bound to
an environment acts only there. Trigger URLs need no other credential: the secret
in the path is the credential.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from flags import propagation, services
from flags.api import selectors
from flags.api import serializers as s
from flags.api.alerts import ALERT_BODY_OUT, alert_body_of
from flags.api.auth import actor_for, principal_of
from flags.api.http import reason_of
from flags.api.permissions import (
    FlagKillPermission,
    FlagRestorePermission,
    TriggerPermission,
    model_permissions,
)
from flags.errors import ValidationFailed
from flags.kill_answers import kill_out
from flags.models import ApiToken, Environment, Flag, FlagState, KillTrigger
from flags.tokens import token_digest
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView

TRIGGER_FIRINGS_PER_MINUTE = 30
UNKNOWN_TRIGGER_TRIES_PER_MINUTE = 60


# --- bodies -------------------------------------------------------------------------------


class KillIn(s.InputSerializer):
    environment = serializers.CharField(
        required=False, max_length=64, help_text="Required unless the kill key is bound to one."
    )
    reason = serializers.CharField(
        max_length=services.MAX_KILL_REASON,
        help_text="Why (required, at most 500 characters; goes on the audit trail).",
    )


class TagKillIn(KillIn):
    tag = serializers.CharField(max_length=64, help_text="Every live flag carrying this tag.")


def confirmed(environment: Environment, version: int, started_at: float) -> dict[str, Any]:
    """Wait (at most about a second) for every live edge process to serve ``version``."""
    return propagation.change_confirm(
        environment.key, environment.lineage, version, started_at=started_at
    ).as_dict()


PROPAGATION = inline_serializer(
    "Propagation",
    {
        "confirmed": serializers.IntegerField(help_text="Edge processes serving this version."),
        "live_processes": serializers.IntegerField(help_text="Edge processes reporting."),
        "complete": serializers.BooleanField(help_text="Every live edge process serves it."),
        "elapsed_ms": serializers.FloatField(
            allow_null=True, help_text="From the request to the last process installing it."
        ),
        "unconfirmed": serializers.ListField(
            child=serializers.CharField(), help_text="host:pid of the processes that do not."
        ),
        "message": serializers.CharField(
            help_text="e.g. 'confirmed by 4 of 4 edge processes in 38 ms'."
        ),
    },
)


KILL_STATE = inline_serializer(
    "KillState",
    {
        "flag": serializers.CharField(),
        "environment": serializers.CharField(),
        "killed": serializers.BooleanField(),
        "kill": s.KillField(allow_null=True),
        "killed_for_seconds": serializers.FloatField(allow_null=True),
        "state_version": serializers.IntegerField(),
        "propagation": PROPAGATION,
    },
)
KILL_ANSWER = inline_serializer(
    "KillAnswer",
    {
        "flag": serializers.CharField(),
        "environment": serializers.CharField(),
        "killed": serializers.BooleanField(),
        "changed": serializers.BooleanField(
            help_text="False when it already was so: nothing written."
        ),
        "kill": s.KillField(allow_null=True),
        "killed_for_seconds": serializers.FloatField(allow_null=True),
        "state_version": serializers.IntegerField(),
        "environment_version": serializers.IntegerField(
            help_text="Compare with the snapshot ETag or flagsvc_snapshot_version to confirm propagation."
        ),
        "propagation": PROPAGATION,
    },
)
TAG_KILL_ANSWER = inline_serializer(
    "TagKillAnswer",
    {
        "tag": serializers.CharField(),
        "environment": serializers.CharField(),
        "incident": serializers.UUIDField(allow_null=True),
        "changed": serializers.ListField(child=serializers.CharField()),
        "unchanged": serializers.ListField(child=serializers.CharField()),
        "environment_version": serializers.IntegerField(),
        "propagation": PROPAGATION,
    },
)


# --- scope ------------------------------------------------------------------------------------


def _target_environment(request: Request, asked: str | None) -> Environment:
    """The environment to act on: the body's, or the kill key's own; never another one."""
    principal = principal_of(request)
    bound = (
        principal.environment_key if principal and principal.kind == ApiToken.Kind.KILL else None
    )
    if bound and asked and asked != bound:
        raise exceptions.PermissionDenied(
            f"This kill key is bound to {bound!r}; it cannot act on {asked!r}."
        )
    key = asked or bound
    if not key:
        raise ValidationFailed(
            'Say which environment: {"environment": "production", "reason": "..."}.',
            {"environment": "required (this key is not bound to one)"},
        )
    environment = selectors.environment_get(key)
    if environment is None:
        known = ", ".join(e.key for e in selectors.environment_list())
        raise ValidationFailed(
            f"No environment {key!r}; known: {known}.", {"environment": f"no environment {key!r}"}
        )
    return environment


def _flag(key: str) -> Flag:
    flag = selectors.flag_by_key(key)
    if flag is None:
        raise ApiNotFound(
            f"No flag {key!r}. Check the key (GET /api/v1/kills/ lists active kills)."
        )
    return flag


def _valid(serializer_class: type[s.InputSerializer], request: Request) -> Any:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- kill / restore one flag ------------------------------------------------------------------


class _FlagKillView(ApiView):
    permission_classes = [FlagKillPermission]
    action = "kill"

    def post(self, request: Request, key: str) -> Response:
        started_at = time.time()
        data = _valid(KillIn, request)
        flag = _flag(key)
        environment = _target_environment(request, data.get("environment"))
        operation = services.flag_kill if self.action == "kill" else services.flag_restore
        outcome = operation(
            actor=actor_for(request),
            flag=flag,
            environment=environment,
            reason=reason_of(request, data),
        )
        state = outcome.state
        state.environment = environment
        body = {
            **kill_out(state),
            "changed": outcome.changed,
            "environment_version": outcome.environment_version,
            "propagation": confirmed(environment, outcome.environment_version, started_at),
        }
        return Response(body, status=status.HTTP_200_OK)


class FlagKillView(_FlagKillView):
    action = "kill"

    @extend_schema(
        operation_id="flags_kill",
        summary="Kill a flag in an environment: every SDK serves its off variant",
        description="An overlay: rules, targets, splits and rollout plans stay as they are. "
        "Killing a killed flag answers 200 with the existing kill and writes nothing.",
        request=KillIn,
        responses={200: KILL_ANSWER},
        tags=["kill switch"],
    )
    def post(self, request: Request, key: str) -> Response:
        return super().post(request, key)


class FlagRestoreView(_FlagKillView):
    permission_classes = [FlagRestorePermission]
    action = "restore"

    @extend_schema(
        operation_id="flags_restore",
        summary="Restore a killed flag: it serves exactly what it served before the kill",
        request=KillIn,
        responses={200: KILL_ANSWER},
        tags=["kill switch"],
    )
    def post(self, request: Request, key: str) -> Response:
        return super().post(request, key)


# --- by tag ---------------------------------------------------------------------------------------


class _TagKillView(ApiView):
    permission_classes = [FlagKillPermission]
    action = "kill"

    def post(self, request: Request) -> Response:
        started_at = time.time()
        data = _valid(TagKillIn, request)
        environment = _target_environment(request, data.get("environment"))
        operation = (
            services.flag_kill_by_tag if self.action == "kill" else services.flag_restore_by_tag
        )
        outcome = operation(
            actor=actor_for(request),
            tag=data["tag"],
            environment=environment,
            reason=reason_of(request, data),
        )
        return Response(
            {
                "tag": data["tag"],
                "environment": environment.key,
                "incident": str(outcome.incident_id) if outcome.incident_id else None,
                "changed": [s.flag.key for s in outcome.changed],
                "unchanged": [s.flag.key for s in outcome.unchanged],
                "environment_version": outcome.environment_version,
                "propagation": confirmed(environment, outcome.environment_version, started_at),
            }
        )


class TagKillView(_TagKillView):
    action = "kill"

    @extend_schema(
        operation_id="kill_by_tag",
        summary="Kill every live flag carrying a tag, in one transaction",
        description="All or none; one audit event per killed flag, all with the same incident id. "
        "Flags already killed are left as they are.",
        request=TagKillIn,
        responses={200: TAG_KILL_ANSWER},
        tags=["kill switch"],
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class TagRestoreView(_TagKillView):
    permission_classes = [FlagRestorePermission]
    action = "restore"

    @extend_schema(
        operation_id="restore_by_tag",
        summary="Restore every killed live flag carrying a tag, in one transaction",
        request=TagKillIn,
        responses={200: TAG_KILL_ANSWER},
        tags=["kill switch"],
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


# --- active kills -------------------------------------------------------------------------------------


class KillListView(ApiView):
    permission_classes = [FlagKillPermission]

    @extend_schema(
        operation_id="kills_list",
        summary="Active kills: flag, environment, who, when, why, for how long",
        parameters=[OpenApiParameter("environment", OpenApiTypes.STR, required=False)],
        responses={
            200: inline_serializer("KillList", {"kills": serializers.ListField(child=KILL_STATE)})
        },
        tags=["kill switch"],
    )
    def get(self, request: Request) -> Response:
        asked = request.query_params.get("environment")
        principal = principal_of(request)
        bound = (
            principal.environment_key
            if principal and principal.kind == ApiToken.Kind.KILL
            else None
        )
        if bound and asked and asked != bound:
            raise exceptions.PermissionDenied(
                f"This kill key is bound to {bound!r}; it cannot list {asked!r}."
            )
        states = (
            FlagState.objects.filter(killed_at__isnull=False, flag__archived_at__isnull=True)
            .select_related("flag", "environment")
            .order_by("-killed_at")
        )
        if asked or bound:
            states = states.filter(environment__key=asked or bound)
        # Whether each kill is live at every edge process: the environment's current
        # version (which includes the kill) against what each process serves.
        live: dict[str, dict[str, Any]] = {}
        for state in states:
            environment = state.environment
            if environment.key not in live:
                live[environment.key] = propagation.environment_status(
                    environment.key, environment.lineage, environment.version
                ).as_dict()
        return Response(
            {
                "kills": [
                    {**kill_out(state), "propagation": live[state.environment.key]}
                    for state in states
                ]
            }
        )


# --- trigger URLs ---------------------------------------------------------------------------------------


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
        triggers = KillTrigger.objects.select_related("flag", "environment").order_by("-created_at")
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
        data = _valid(TriggerCreateIn, request)
        flag = _flag(data["flag"])
        environment = selectors.environment_get(data["environment"])
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
        trigger = (
            KillTrigger.objects.select_related("flag", "environment").filter(pk=trigger_id).first()
        )
        if trigger is None:
            raise ApiNotFound(
                f"No trigger with id {trigger_id}. List them with GET /api/v1/triggers/."
            )
        data = _valid(s.ReasonIn, request)
        trigger = services.trigger_revoke(
            actor=actor_for(request), trigger=trigger, reason=reason_of(request, data)
        )
        return Response(trigger_out(trigger))


def _over_limit(key: str, limit: int) -> bool:
    """Count one hit in a one-minute window; True when over ``limit``. Fails open without a cache."""
    window = int(timezone.now().timestamp() // 60)
    name = f"flagsvc:trigger:{key}:{window}"
    try:
        added = cache.add(name, 1, timeout=90)
        count = 1 if added else cache.incr(name)
    except Exception:  # the kill must not depend on the cache being up
        return False
    return count > limit


class TriggerFireView(ApiView):
    """``POST /api/v1/triggers/{secret}/``: the secret is the credential."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes: list[Any] = []  # alert tools post bodies of every shape; read raw, never 415

    @extend_schema(
        operation_id="triggers_fire",
        summary="Fire a trigger URL (for APM alerts): kills or restores its flag",
        description="Needs no other credential. Unknown or revoked secrets answer 404. "
        f"Rate-limited to {TRIGGER_FIRINGS_PER_MINUTE} firings a minute per trigger (429 with "
        "Retry-After). Every firing is on the audit trail with the trigger's name and the caller's "
        'address; a body with a "note" (or title/message) string adds it to the reason. '
        "The body is optional context: whatever it is (too large, not JSON), the trigger fires.",
        request=None,
        responses={
            200: inline_serializer(
                "TriggerFired", {**KILL_ANSWER.fields, "alert_body": ALERT_BODY_OUT}
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
        trigger = (
            KillTrigger.objects.select_related("flag", "environment")
            .filter(digest=token_digest(secret), revoked_at__isnull=True)
            .first()
        )
        if trigger is None:
            if _over_limit(f"unknown:{source_ip}", UNKNOWN_TRIGGER_TRIES_PER_MINUTE):
                raise exceptions.Throttled(wait=60)
            raise ApiNotFound(
                "No such trigger (unknown or revoked). Ask an admin for the current URL."
            )
        if _over_limit(trigger.digest[:24], TRIGGER_FIRINGS_PER_MINUTE):
            raise exceptions.Throttled(
                wait=60 - int(timezone.now().timestamp()) % 60,
                detail=f"Trigger {trigger.name!r} fired more than {TRIGGER_FIRINGS_PER_MINUTE} times this minute.",
            )
        alert_body = alert_body_of(request)  # bounded, and never raises: the URL alone fires
        outcome = services.trigger_fire(
            trigger=trigger,
            source_ip=source_ip,
            request_id=getattr(request, "request_id", ""),
            note=alert_body.note,
        )
        state = outcome.state
        state.environment = trigger.environment
        return Response(
            {
                **kill_out(state),
                "changed": outcome.changed,
                "environment_version": outcome.environment_version,
                "propagation": confirmed(
                    trigger.environment, outcome.environment_version, started_at
                ),
                "alert_body": alert_body.answer(),
            }
        )

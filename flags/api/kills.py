"""The incident commander's endpoints: kill and restore a flag or a tag, list active kills.

Kill keys (and admin tokens or staff sessions) may call them; a kill key bound to
an environment acts only there. Trigger URLs (``flags.api.triggers``) answer the same.
"""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from flags import propagation, selectors, services
from flags.api import selectors as api_selectors
from flags.api import serializers as s
from flags.api.auth import actor_for, principal_of
from flags.api.http import reason_of
from flags.api.lookups import flag_or_404, valid_body
from flags.api.permissions import FlagKillPermission, FlagRestorePermission
from flags.api.states import KillField
from flags.errors import ValidationFailed
from flags.kill_answers import KillOutcome, kill_answer, kill_out, kills_with_propagation
from flags.models import ApiToken, Environment
from flagsvc.api.views import ApiView

# Where a flag missing from a kill request can be looked for.
KILLS_HINT = "Check the key (GET /api/v1/kills/ lists active kills)."


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


def confirmed_kill_answer(
    outcome: KillOutcome, environment: Environment, started_at: float
) -> dict[str, Any]:
    """A one-flag kill or restore's answer, with how far it has propagated."""
    answer = kill_answer(outcome, environment)
    answer["propagation"] = confirmed(environment, outcome.environment_version, started_at)
    return answer


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
        "kill": KillField(allow_null=True),
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
        "kill": KillField(allow_null=True),
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


def _bound_environment(request: Request, asked: str | None, verb: str) -> str | None:
    """The environment the caller's kill key is bound to (None: unbound, or no kill key);
    a 403 when it asks to ``verb`` another one."""
    principal = principal_of(request)
    bound = (
        principal.environment_key if principal and principal.kind == ApiToken.Kind.KILL else None
    )
    if bound and asked and asked != bound:
        raise exceptions.PermissionDenied(
            f"This kill key is bound to {bound!r}; it cannot {verb} {asked!r}."
        )
    return bound


def _target_environment(request: Request, asked: str | None) -> Environment:
    """The environment to act on: the body's, or the kill key's own; never another one."""
    bound = _bound_environment(request, asked, "act on")
    key = asked or bound
    if not key:
        raise ValidationFailed(
            'Say which environment: {"environment": "production", "reason": "..."}.',
            {"environment": "required (this key is not bound to one)"},
        )
    environment = api_selectors.environment_get(key)
    if environment is None:
        known = ", ".join(e.key for e in api_selectors.environment_list())
        raise ValidationFailed(
            f"No environment {key!r}; known: {known}.", {"environment": f"no environment {key!r}"}
        )
    return environment


# --- kill / restore one flag ------------------------------------------------------------------


class _FlagKillView(ApiView):
    permission_classes = [FlagKillPermission]
    action = "kill"

    def post(self, request: Request, key: str) -> Response:
        started_at = time.time()
        data = valid_body(KillIn, request)
        flag = flag_or_404(key, hint=KILLS_HINT)
        environment = _target_environment(request, data.get("environment"))
        operation = services.flag_kill if self.action == "kill" else services.flag_restore
        outcome = operation(
            actor=actor_for(request),
            flag=flag,
            environment=environment,
            reason=reason_of(request, data),
        )
        return Response(confirmed_kill_answer(outcome, environment, started_at))


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
        data = valid_body(TagKillIn, request)
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
        bound = _bound_environment(request, asked, "list")
        states = selectors.active_kills(environment_key=asked or bound)
        # Whether each kill is live at every edge process (its environment's current version).
        rows = kills_with_propagation(states)
        return Response(
            {"kills": [{**kill_out(state), "propagation": live.as_dict()} for state, live in rows]}
        )

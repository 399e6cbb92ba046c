"""Rollout plan endpoints: read, create or replace a flag's scheduled ramp-up in one environment,
and pause, resume, abort or skip it. Thin views over ``flags.rollouts``; admin token or staff session.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import rollouts
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.guardrails import PlanGuardrailCheckOut
from flags.api.http import reason_of
from flags.api.lookups import (
    REASON_HEADER_PARAMETER,
    environment_or_404,
    flag_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.models import Environment, Flag, RolloutPlan
from flags.rollouts import rollout_plan_document, schedule
from flags.selectors import rollout_plan_current
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView

STEP_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["percentage"],
    "properties": {
        "percentage": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "multipleOf": 0.01,
            "description": "Share of the rolled-out variant, in percent (0.01% granularity).",
        },
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "Absolute time: ISO-8601 with an offset (2026-12-01T09:00:00+01:00), "
            "or a local time with a timezone. Must be in the future, within a year.",
        },
        "after": {
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "description": 'Delay after the previous step was applied: seconds, or "30m", '
            '"1h30m", "2d", "PT30M". The first step without at/after starts now.',
        },
        "timezone": {
            "type": "string",
            "description": "IANA zone for a local `at` (overrides the plan's), e.g. Europe/Berlin.",
        },
    },
    "additionalProperties": False,
    "example": {"percentage": 25, "at": "2026-12-01T09:00:00", "timezone": "Europe/Berlin"},
}


@extend_schema_field(
    {"type": "array", "minItems": 1, "maxItems": schedule.MAX_STEPS, "items": STEP_INPUT_SCHEMA}
)
class RolloutStepsField(s.JsonListField):
    pass


class RolloutPlanWriteIn(s.InputSerializer):
    steps = RolloutStepsField(
        help_text="In order: each a percentage with an absolute time (at) or a delay after the "
        "previous step (after). Percentages only go up unless allow_decrease is true."
    )
    rule = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text="Id of the rule whose split the plan drives; leave out for the default serve.",
    )
    variant = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text='The variant rolled out (boolean flags: "on"; required otherwise).',
    )
    baseline_variant = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text='What everyone else gets (boolean flags: "off"; required otherwise).',
    )
    bucket_by = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=256,
        help_text="Context attribute to bucket by; default: the current split's, else targetingKey.",
    )
    allow_decrease = s.StrictBooleanField(required=False, default=False)
    timezone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="IANA zone for steps' local times, e.g. Europe/Berlin.",
    )
    reason = s.reason_field()


class RolloutSkipIn(s.InputSerializer):
    step = serializers.IntegerField(min_value=1, help_text="The step (1-based) to apply now.")
    reason = s.reason_field()


class RolloutStepOut(serializers.Serializer):
    step = serializers.IntegerField(help_text="1-based position.")
    percentage = serializers.FloatField()
    weight = serializers.IntegerField(help_text="Basis points of the rolled-out variant.")
    at = serializers.DateTimeField(allow_null=True)
    after = serializers.IntegerField(allow_null=True, help_text="Delay in seconds, if relative.")
    timezone = serializers.CharField()
    status = serializers.ChoiceField(choices=["done", "skipped", "next", "later", "cancelled"])
    due_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When a done step fell due, or when a pending one is expected to "
        "(null while paused, or when it depends on a step not applied yet).",
    )
    applied_at = serializers.DateTimeField(allow_null=True)
    skipped_at = serializers.DateTimeField(allow_null=True)


class RolloutPlanOut(serializers.Serializer):
    id = serializers.IntegerField()
    flag = serializers.CharField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=RolloutPlan.Status.values)
    status_reason = serializers.CharField()
    status_changed_at = serializers.DateTimeField(allow_null=True)
    status_changed_by = serializers.CharField()
    rule = serializers.CharField(allow_null=True)
    variant = serializers.CharField()
    baseline_variant = serializers.CharField()
    bucket_by = serializers.CharField()
    allow_decrease = serializers.BooleanField()
    timezone = serializers.CharField()
    last_applied_step = serializers.IntegerField(allow_null=True)
    last_applied_percentage = serializers.FloatField(allow_null=True)
    next_step = serializers.IntegerField(allow_null=True)
    next_due_at = serializers.DateTimeField(allow_null=True)
    blocked_reason = serializers.CharField(
        allow_null=True, help_text="Why the due step waits (a guardrail not known healthy)."
    )
    steps = RolloutStepOut(many=True)
    guardrail_checks = PlanGuardrailCheckOut(many=True, help_text="Latest first.")
    replaces = serializers.IntegerField(allow_null=True, help_text="The plan this one replaced.")
    replaced_by = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    resumed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()


def _plan_of(flag: Flag, environment: Environment) -> RolloutPlan:
    plan = rollout_plan_current(flag, environment)
    if plan is None:
        raise ApiNotFound(
            f"{flag.key} has no rollout plan in {environment.key}. Create one with PUT "
            f"/api/v1/flags/{flag.key}/environments/{environment.key}/rollout-plan/."
        )
    return plan


def _answer(plan: RolloutPlan, status_code: int = 200, **headers: str) -> Response:
    fresh = rollout_plan_current(plan.flag, plan.environment)
    shown = fresh if fresh is not None and fresh.pk == plan.pk else plan
    return Response(
        RolloutPlanOut(rollout_plan_document(shown)).data, status=status_code, headers=headers
    )


CONFLICT = OpenApiResponse(
    description="rollout_plan_conflict (the plan is finished, or the flag is killed), "
    "already_exists or flag_archived; nothing changed."
)


class RolloutPlanView(ApiView):
    # PUT always makes a new plan; DELETE aborts one (plans are kept for the record).
    permission_classes = [model_permissions(RolloutPlan, PUT="add", DELETE="change")]

    @extend_schema(
        operation_id="rollout_plans_get",
        summary="A flag's rollout plan in one environment (the active one, else the latest)",
        description="The plan with a timeline of its steps (done, skipped, next, later).",
        responses=RolloutPlanOut,
    )
    def get(self, request: Request, key: str, environment: str) -> Response:
        plan = _plan_of(flag_or_404(key), environment_or_404(environment))
        return Response(RolloutPlanOut(rollout_plan_document(plan)).data)

    @extend_schema(
        operation_id="rollout_plans_replace",
        summary="Create a rollout plan, or replace the active one",
        description="Celery applies each step when due (actor scheduler, audited, published). "
        "Replacing aborts the active plan; the flag keeps what its last step set. "
        "A plan for a killed flag starts paused. 201 when there was no active plan.",
        parameters=[REASON_HEADER_PARAMETER],
        request=RolloutPlanWriteIn,
        responses={200: RolloutPlanOut, 201: RolloutPlanOut, 409: CONFLICT},
    )
    def put(self, request: Request, key: str, environment: str) -> Response:
        flag, target = flag_or_404(key), environment_or_404(environment)
        data = valid_body(RolloutPlanWriteIn, request)
        plan = rollouts.rollout_plan_replace(
            actor=actor_for(request),
            flag=flag,
            environment=target,
            steps=data["steps"],
            rule=data.get("rule"),
            variant=data.get("variant"),
            baseline_variant=data.get("baseline_variant"),
            bucket_by=data.get("bucket_by"),
            allow_decrease=data.get("allow_decrease", False),
            timezone_name=data.get("timezone") or "",
            reason=reason_of(request, data),
        )
        location = f"/api/v1/flags/{flag.key}/environments/{target.key}/rollout-plan/"
        # ``replaces`` is set only when an active plan was replaced.
        created = plan.replaces_id is None
        return _answer(
            plan,
            status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            Location=location,
        )

    @extend_schema(
        operation_id="rollout_plans_delete",
        summary="Abort the rollout plan (same as POST .../abort/)",
        description="Plans are kept for the record; the flag keeps serving what the last "
        "applied step set.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={200: RolloutPlanOut, 409: CONFLICT},
    )
    def delete(self, request: Request, key: str, environment: str) -> Response:
        return _act(request, key, environment, "abort")


def _act(request: Request, key: str, environment: str, action: str) -> Response:
    plan = _plan_of(flag_or_404(key), environment_or_404(environment))
    actor = actor_for(request)
    if action == "skip":
        data = valid_body(RolloutSkipIn, request)
        plan = rollouts.rollout_plan_skip_to_step(
            actor=actor, plan=plan, step=data["step"], reason=reason_of(request, data)
        )
        return _answer(plan)
    data = valid_body(s.ReasonIn, request)
    service = {
        "pause": rollouts.rollout_plan_pause,
        "resume": rollouts.rollout_plan_resume,
        "abort": rollouts.rollout_plan_abort,
    }[action]
    return _answer(service(actor=actor, plan=plan, reason=reason_of(request, data)))


def _action_view(action: str, summary: str, description: str) -> type[ApiView]:
    request_body = RolloutSkipIn if action == "skip" else s.ReasonIn

    @extend_schema(
        operation_id=f"rollout_plans_{action}",
        summary=summary,
        description=description,
        parameters=[REASON_HEADER_PARAMETER],
        request=request_body,
        responses={200: RolloutPlanOut, 409: CONFLICT},
    )
    def post(self: ApiView, request: Request, key: str, environment: str) -> Response:
        return _act(request, key, environment, action)

    name = f"RolloutPlan{action.capitalize()}View"
    return type(
        name,
        (ApiView,),
        {"permission_classes": [model_permissions(RolloutPlan, POST="change")], "post": post},
    )


RolloutPlanPauseView = _action_view(
    "pause",
    "Pause the rollout plan",
    "No step is applied until someone resumes it; the flag keeps the current split. "
    "Pausing a paused plan changes nothing.",
)
RolloutPlanResumeView = _action_view(
    "resume",
    "Resume a paused rollout plan",
    "The next step's delay counts from now (absolute times stand); the current split is the "
    "new starting point. Refused (409) while the flag is killed: restore it first.",
)
RolloutPlanAbortView = _action_view(
    "abort",
    "Abort the rollout plan for good",
    "The flag keeps serving what the last applied step set.",
)
RolloutPlanSkipView = _action_view(
    "skip",
    "Skip to a step: apply it now",
    "Forward only: pending steps before it are marked skipped. A paused plan stays paused.",
)

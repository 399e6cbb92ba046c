"""Guardrail endpoints: list and create a flag's guardrails in an environment, read, change
(enable/disable with ``{"enabled": false}``), delete, and evaluate now without acting."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import guardrails, selectors
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import reason_of
from flags.api.lookups import (
    CONFLICT,
    REASON_HEADER_PARAMETER,
    changes_in,
    environment_or_404,
    flag_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.models import Environment, Flag, Guardrail
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView

HEALTHS = Guardrail.Health.values


class GuardrailCheckOut(serializers.Serializer):
    guardrail = serializers.CharField(source="guardrail.name")
    checked_at = serializers.DateTimeField()
    health = serializers.ChoiceField(choices=HEALTHS)
    value = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    acted = serializers.CharField(
        help_text="The action taken on this check (pause, step_back, kill, none), or empty."
    )


class PlanGuardrailCheckOut(serializers.Serializer):
    """A guardrail check as a rollout plan's timeline shows it."""

    guardrail = serializers.CharField()
    checked_at = serializers.DateTimeField()
    health = serializers.ChoiceField(choices=HEALTHS)
    value = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    acted = serializers.CharField(allow_null=True)


class GuardrailOut(serializers.Serializer):
    name = serializers.CharField()
    flag = serializers.CharField(source="flag.key")
    environment = serializers.CharField(source="environment.key")
    query = serializers.CharField()
    comparison = serializers.ChoiceField(choices=Guardrail.Comparison.values)
    threshold = serializers.FloatField()
    for_seconds = serializers.IntegerField()
    action = serializers.ChoiceField(choices=Guardrail.Action.values)
    watch_seconds = serializers.IntegerField()
    prometheus_url = serializers.CharField(help_text="Empty: the server's PROMETHEUS_URL.")
    enabled = serializers.BooleanField()
    health = serializers.ChoiceField(choices=HEALTHS)
    last_value = serializers.FloatField(allow_null=True)
    last_message = serializers.CharField()
    last_checked_at = serializers.DateTimeField(allow_null=True)
    breach_started_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()


class GuardrailDetailOut(GuardrailOut):
    checks = serializers.SerializerMethodField()

    def get_checks(self, guardrail: Guardrail) -> list[dict[str, Any]]:
        return GuardrailCheckOut(selectors.guardrail_checks(guardrail), many=True).data  # type: ignore[return-value]


MAX_SECONDS = 7 * 24 * 3600


class _GuardrailFieldsIn(s.InputSerializer):
    query = serializers.CharField(max_length=2000, help_text="PromQL instant query.")
    comparison = serializers.ChoiceField(choices=Guardrail.Comparison.values, required=False)
    threshold = s.StrictFloatField()
    for_seconds = s.StrictIntegerField(min_value=0, max_value=MAX_SECONDS, required=False)
    action = serializers.ChoiceField(choices=Guardrail.Action.values, required=False)
    watch_seconds = s.StrictIntegerField(min_value=0, max_value=MAX_SECONDS, required=False)
    prometheus_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = s.StrictBooleanField(required=False)
    reason = s.reason_field()


class GuardrailCreateIn(_GuardrailFieldsIn):
    name = serializers.RegexField(r"^[a-z0-9][a-z0-9._-]{0,99}$", max_length=100)


class GuardrailUpdateIn(_GuardrailFieldsIn):
    fixed_fields = {"name": "a guardrail's name is fixed; create a new one instead"}
    query = serializers.CharField(max_length=2000, required=False)
    threshold = s.StrictFloatField(required=False)


class EvaluationOut(serializers.Serializer):
    health = serializers.ChoiceField(
        choices=["ok", "pending", "error", "no_data"],
        help_text="pending: the threshold is crossed now (it acts once held for for_seconds).",
    )
    value = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    breaching = serializers.BooleanField()
    would_act = serializers.CharField(allow_null=True, help_text="What a held breach would do.")


def _scope(key: str, environment: str) -> tuple[Flag, Environment]:
    return flag_or_404(key), environment_or_404(environment)


def _guardrail_or_404(flag: Flag, environment: Environment, name: str) -> Guardrail:
    guardrail = selectors.guardrail_get(flag, environment, name)
    if guardrail is None:
        raise ApiNotFound(
            f"No guardrail {name!r} on {flag.key} in {environment.key}. List them with GET "
            f"/api/v1/flags/{flag.key}/environments/{environment.key}/guardrails/."
        )
    return guardrail


class GuardrailListView(ApiView):
    permission_classes = [model_permissions(Guardrail)]

    @extend_schema(
        operation_id="guardrails_list",
        summary="A flag's guardrails in one environment",
        responses=GuardrailOut(many=True),
    )
    def get(self, request: Request, key: str, environment: str) -> Response:
        return Response(
            GuardrailOut(selectors.guardrail_list(*_scope(key, environment)), many=True).data
        )

    @extend_schema(
        operation_id="guardrails_create",
        summary="Watch a flag with a Prometheus query: pause, step back or kill on a breach",
        parameters=[REASON_HEADER_PARAMETER],
        request=GuardrailCreateIn,
        responses={201: GuardrailDetailOut, 409: CONFLICT},
    )
    def post(self, request: Request, key: str, environment: str) -> Response:
        flag, target = _scope(key, environment)
        data = valid_body(GuardrailCreateIn, request)
        guardrail = guardrails.guardrail_create(
            actor=actor_for(request),
            flag=flag,
            environment=target,
            reason=reason_of(request, data),
            **changes_in(data),
        )
        return Response(
            GuardrailDetailOut(guardrail).data,
            status=status.HTTP_201_CREATED,
            headers={
                "Location": f"/api/v1/flags/{flag.key}/environments/{target.key}/guardrails/"
                f"{guardrail.name}/"
            },
        )


class GuardrailDetailView(ApiView):
    permission_classes = [model_permissions(Guardrail)]

    @extend_schema(
        operation_id="guardrails_get",
        summary="A guardrail with its latest checks",
        responses=GuardrailDetailOut,
    )
    def get(self, request: Request, key: str, environment: str, name: str) -> Response:
        return Response(GuardrailDetailOut(_guardrail_or_404(*_scope(key, environment), name)).data)

    @extend_schema(
        operation_id="guardrails_update",
        summary="Change a guardrail, or enable/disable it (enabled: true/false)",
        parameters=[REASON_HEADER_PARAMETER],
        request=GuardrailUpdateIn,
        responses=GuardrailDetailOut,
    )
    def patch(self, request: Request, key: str, environment: str, name: str) -> Response:
        guardrail = _guardrail_or_404(*_scope(key, environment), name)
        data = valid_body(GuardrailUpdateIn, request)
        guardrail = guardrails.guardrail_update(
            actor=actor_for(request),
            guardrail=guardrail,
            reason=reason_of(request, data),
            **changes_in(data),
        )
        return Response(GuardrailDetailOut(guardrail).data)

    @extend_schema(
        operation_id="guardrails_delete",
        summary="Delete a guardrail (the audit trail keeps its record)",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={204: None},
    )
    def delete(self, request: Request, key: str, environment: str, name: str) -> Response:
        guardrail = _guardrail_or_404(*_scope(key, environment), name)
        data = valid_body(s.ReasonIn, request)
        guardrails.guardrail_delete(
            actor=actor_for(request), guardrail=guardrail, reason=reason_of(request, data)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GuardrailEvaluateView(ApiView):
    permission_classes = [model_permissions(Guardrail, POST="view")]

    @extend_schema(
        operation_id="guardrails_evaluate",
        summary="Evaluate a guardrail now: the current value, without acting or recording",
        request=None,
        responses=EvaluationOut,
    )
    def post(self, request: Request, key: str, environment: str, name: str) -> Response:
        guardrail = _guardrail_or_404(*_scope(key, environment), name)
        reading = guardrails.guardrail_read(guardrail)
        return Response(
            EvaluationOut(
                {
                    "health": reading.health,
                    "value": reading.value,
                    "message": reading.message,
                    "breaching": reading.breaching,
                    "would_act": guardrail.action if reading.breaching else None,
                }
            ).data
        )

"""Environments: list, create (optionally copying another), read, rename."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import services
from flags.api import selectors
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import reason_of
from flags.api.lookups import (
    CONFLICT,
    REASON_HEADER_PARAMETER,
    environment_in_body,
    environment_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.models import Environment
from flagsvc.api.views import ApiView


class EnvironmentOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    version = serializers.IntegerField(
        help_text="Bumped by every change to what this environment evaluates to."
    )
    created_at = serializers.DateTimeField()


class EnvironmentCreateIn(s.InputSerializer):
    key = serializers.CharField(max_length=64, help_text="e.g. production; fixed once created")
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    copy_from = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Key of an environment whose flag states and segments the new one starts with.",
    )
    reason = s.reason_field()


class EnvironmentUpdateIn(s.InputSerializer):
    fixed_fields = {"key": "an environment's key is fixed (SDK keys and URLs use it)"}

    name = serializers.CharField(required=False, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    reason = s.reason_field()


class EnvironmentListView(ApiView):
    permission_classes = [model_permissions(Environment)]

    @extend_schema(
        operation_id="environments_list",
        summary="List environments",
        responses=EnvironmentOut(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(EnvironmentOut(selectors.environment_list(), many=True).data)

    @extend_schema(
        operation_id="environments_create",
        summary="Create an environment (optionally copying another's states and segments)",
        parameters=[REASON_HEADER_PARAMETER],
        request=EnvironmentCreateIn,
        responses={201: EnvironmentOut, 409: CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = valid_body(EnvironmentCreateIn, request)
        environment = services.environment_create(
            actor=actor_for(request),
            key=data["key"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            copy_from=environment_in_body(data.get("copy_from"), "copy_from"),
            reason=reason_of(request, data),
        )
        return Response(
            EnvironmentOut(environment).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/environments/{environment.key}/"},
        )


class EnvironmentDetailView(ApiView):
    permission_classes = [model_permissions(Environment)]

    @extend_schema(
        operation_id="environments_get", summary="An environment", responses=EnvironmentOut
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(EnvironmentOut(environment_or_404(key)).data)

    @extend_schema(
        operation_id="environments_update",
        summary="Rename or describe an environment",
        parameters=[REASON_HEADER_PARAMETER],
        request=EnvironmentUpdateIn,
        responses=EnvironmentOut,
    )
    def patch(self, request: Request, key: str) -> Response:
        environment = environment_or_404(key)
        data = valid_body(EnvironmentUpdateIn, request)
        environment = services.environment_update(
            actor=actor_for(request),
            environment=environment,
            name=data.get("name"),
            description=data.get("description"),
            reason=reason_of(request, data),
        )
        return Response(EnvironmentOut(environment).data)

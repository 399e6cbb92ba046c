"""Segments (reusable audiences) of an environment: list, create, read, change, delete."""

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
    changes_in,
    environment_or_404,
    segment_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.models import Segment
from flagsvc.api.views import ApiView


class SegmentOut(serializers.Serializer):
    key = serializers.CharField()
    environment = serializers.CharField(source="environment.key")
    name = serializers.CharField()
    description = serializers.CharField()
    included = s.KeyListField()
    excluded = s.KeyListField()
    rules = s.SegmentRulesField()
    environment_version = serializers.IntegerField(source="environment.version")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SegmentCreateIn(s.InputSerializer):
    key = serializers.CharField(max_length=100)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    included = s.KeyListField(
        required=False, default=s.empty_list, help_text="Targeting keys always in."
    )
    excluded = s.KeyListField(
        required=False, default=s.empty_list, help_text="Targeting keys never in."
    )
    rules = s.SegmentRulesField(required=False, default=s.empty_list)
    reason = s.reason_field()


class SegmentUpdateIn(s.InputSerializer):
    fixed_fields = {"key": "a segment's key is fixed; create a new segment instead"}

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    included = s.KeyListField(required=False)
    excluded = s.KeyListField(required=False)
    rules = s.SegmentRulesField(required=False)
    reason = s.reason_field()


class SegmentListView(ApiView):
    permission_classes = [model_permissions(Segment)]

    @extend_schema(
        operation_id="segments_list",
        summary="An environment's segments",
        responses=SegmentOut(many=True),
    )
    def get(self, request: Request, environment: str) -> Response:
        segments = selectors.segment_list(environment_or_404(environment))
        return Response(SegmentOut(segments, many=True).data)

    @extend_schema(
        operation_id="segments_create",
        summary="Create a segment (a reusable audience) in an environment",
        parameters=[REASON_HEADER_PARAMETER],
        request=SegmentCreateIn,
        responses={201: SegmentOut, 409: CONFLICT},
    )
    def post(self, request: Request, environment: str) -> Response:
        target = environment_or_404(environment)
        data = valid_body(SegmentCreateIn, request)
        segment = services.segment_create(
            actor=actor_for(request),
            environment=target,
            reason=reason_of(request, data),
            **changes_in(data),
        )
        segment = segment_or_404(target, segment.key)
        return Response(
            SegmentOut(segment).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/environments/{target.key}/segments/{segment.key}/"},
        )


class SegmentDetailView(ApiView):
    permission_classes = [model_permissions(Segment)]

    @extend_schema(operation_id="segments_get", summary="A segment", responses=SegmentOut)
    def get(self, request: Request, environment: str, key: str) -> Response:
        return Response(SegmentOut(segment_or_404(environment_or_404(environment), key)).data)

    @extend_schema(
        operation_id="segments_update",
        summary="Change a segment (every flag using it follows)",
        parameters=[REASON_HEADER_PARAMETER],
        request=SegmentUpdateIn,
        responses=SegmentOut,
    )
    def patch(self, request: Request, environment: str, key: str) -> Response:
        target = environment_or_404(environment)
        segment = segment_or_404(target, key)
        data = valid_body(SegmentUpdateIn, request)
        services.segment_update(
            actor=actor_for(request),
            segment=segment,
            reason=reason_of(request, data),
            **changes_in(data),
        )
        return Response(SegmentOut(segment_or_404(target, key)).data)

    @extend_schema(
        operation_id="segments_delete",
        summary="Delete a segment that no flag's rules use",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={204: None},
    )
    def delete(self, request: Request, environment: str, key: str) -> Response:
        segment = segment_or_404(environment_or_404(environment), key)
        data = valid_body(s.ReasonIn, request)
        services.segment_delete(
            actor=actor_for(request), segment=segment, reason=reason_of(request, data)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

"""A flag's state in one environment: read (ETag), replace or change (If-Match)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import services
from flags.api import selectors
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import expected_version_of, reason_of
from flags.api.lookups import (
    REASON_HEADER_PARAMETER,
    changes_in,
    environment_or_404,
    flag_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.api.schema import ref
from flags.models import FlagState
from flags.selectors import state_summary
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView


@extend_schema_field({"allOf": [ref("Kill")], "nullable": True})
class KillField(serializers.JSONField):
    pass


class FlagStateOut(serializers.Serializer):
    """A flag's state in one environment; the kill overlay is read-only here."""

    flag = serializers.CharField(source="flag.key")
    environment = serializers.CharField(source="environment.key")
    enabled = serializers.BooleanField()
    targets = s.TargetsField()
    rules = s.RulesField()
    default_serve = s.ServeField()
    prerequisites = s.PrerequisitesField()
    kill = KillField(
        source="kill_overlay",
        allow_null=True,
        help_text="Set by a kill, cleared by restore; null when not killed. Read-only here.",
    )
    summary = serializers.SerializerMethodField(help_text="e.g. off, on, 25%, KILLED")
    version = serializers.IntegerField(help_text="This state's version; send it back in If-Match.")
    environment_version = serializers.IntegerField(source="environment.version")
    updated_at = serializers.DateTimeField()

    def get_summary(self, state: FlagState) -> str:
        return state_summary(state.flag, state)


class FlagStateWriteIn(s.InputSerializer):
    """PUT replaces all five state fields (missing lists become empty); PATCH changes some."""

    fixed_fields = {
        "kill": "kill and restore have their own endpoints; the overlay is read-only here",
        "environment_version": "read-only",
    }

    enabled = s.StrictBooleanField()
    targets = s.TargetsField(required=False, default=s.empty_list)
    rules = s.RulesField(required=False, default=s.empty_list)
    default_serve = s.ServeField()
    prerequisites = s.PrerequisitesField(required=False, default=s.empty_list)
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The version you read (alternative to the If-Match header).",
    )
    reason = s.reason_field()


IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The state\'s ETag as read, e.g. "7": the write happens only if the state is '
    "still at that version (else 409 version_conflict, nothing changed). Optional: without "
    "it (or a body version) the write wins whatever the version.",
)
STATE_WRITE_RESPONSES = {
    200: FlagStateOut,
    409: OpenApiResponse(
        description="version_conflict (the state changed since you read it) or flag_archived; "
        "nothing changed."
    ),
}


def _state_response(state: FlagState, status_code: int = 200) -> Response:
    return Response(
        FlagStateOut(state).data, status=status_code, headers={"ETag": f'"{state.version}"'}
    )


class FlagStateView(ApiView):
    permission_classes = [model_permissions(FlagState)]

    @extend_schema(
        operation_id="flag_states_get",
        summary="A flag's state in one environment",
        description='The ETag header is the state\'s version ("7"); send it back in If-Match '
        "to make a write conditional. If-None-Match with the current ETag answers 304.",
        parameters=[
            OpenApiParameter(
                "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False
            )
        ],
        responses={200: FlagStateOut, 304: OpenApiResponse(description="Not modified.")},
    )
    def get(self, request: Request, key: str, environment: str) -> Response:
        state = self._state(key, environment)
        etag = f'"{state.version}"'
        offered = request.headers.get("If-None-Match", "").split(",")
        if etag in [tag.strip().removeprefix("W/") for tag in offered]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return _state_response(state)

    @extend_schema(
        operation_id="flag_states_replace",
        summary="Replace a flag's state in one environment",
        description="Sets all five fields: enabled and default_serve are required; targets, "
        "rules and prerequisites become empty when left out. The kill overlay is untouched.",
        parameters=[IF_MATCH_PARAMETER, REASON_HEADER_PARAMETER],
        request=FlagStateWriteIn,
        responses=STATE_WRITE_RESPONSES,
    )
    def put(self, request: Request, key: str, environment: str) -> Response:
        return self._write(request, key, environment, partial=False)

    @extend_schema(
        operation_id="flag_states_update",
        summary="Change some fields of a flag's state in one environment",
        parameters=[IF_MATCH_PARAMETER, REASON_HEADER_PARAMETER],
        request=FlagStateWriteIn,
        responses=STATE_WRITE_RESPONSES,
    )
    def patch(self, request: Request, key: str, environment: str) -> Response:
        return self._write(request, key, environment, partial=True)

    def _state(self, key: str, environment_key: str) -> FlagState:
        flag, environment = flag_or_404(key), environment_or_404(environment_key)
        state = selectors.flag_state_get(flag, environment)
        if state is None:  # every flag has a state in every environment; be safe anyway
            raise ApiNotFound(f"Flag {key!r} has no state in {environment_key!r}.")
        return state

    def _write(
        self, request: Request, key: str, environment_key: str, *, partial: bool
    ) -> Response:
        state = self._state(key, environment_key)
        data = valid_body(FlagStateWriteIn, request, partial=partial)
        state = services.flag_state_update(
            actor=actor_for(request),
            flag=state.flag,
            environment=state.environment,
            reason=reason_of(request, data),
            expected_version=expected_version_of(request, data),
            **changes_in(data, "version"),
        )
        return _state_response(state)

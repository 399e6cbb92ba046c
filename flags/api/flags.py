"""Flags: list (filtered, paginated), create, read, change, archive and unarchive."""

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
from flags.api.http import boolean_parameter, reason_of
from flags.api.lookups import (
    CONFLICT,
    REASON_HEADER_PARAMETER,
    changes_in,
    flag_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.api.states import FlagStateOut
from flags.models import Flag, FlagState
from flags.selectors import state_summary
from flagsvc.api.errors import InvalidParameter
from flagsvc.api.views import ApiListView, ApiView, KeyCursorPagination


def _flag_filters(request: Request) -> selectors.FlagFilters:
    params = request.query_params
    state_environment, state = None, None
    raw_state = params.get("state")
    if raw_state:
        environment_key, _, state = raw_state.partition(":")
        if state not in selectors.STATE_FILTERS:
            raise InvalidParameter(
                "state",
                f"{raw_state!r} is not ENVIRONMENT:STATE with STATE one of "
                f"{', '.join(selectors.STATE_FILTERS)}, e.g. production:killed",
            )
        state_environment = selectors.environment_get(environment_key)
        if state_environment is None:
            raise InvalidParameter("state", f"no environment {environment_key!r}")
    return selectors.FlagFilters(
        tag=params.get("tag") or None,
        owner=params.get("owner") or None,
        archived=boolean_parameter(request, "archived", default=False),
        search=(params.get("q") or "").strip() or None,
        state_environment=state_environment,
        state=state,
    )


FLAG_LIST_PARAMETERS = [
    OpenApiParameter("tag", OpenApiTypes.STR, description="Only flags with this tag."),
    OpenApiParameter("owner", OpenApiTypes.STR, description="Only flags of this owner (any case)."),
    OpenApiParameter(
        "archived",
        OpenApiTypes.STR,
        enum=["false", "true", "any"],
        description="false (default): live flags; true: archived ones; any: both.",
    ),
    OpenApiParameter("q", OpenApiTypes.STR, description="Search key, name and description."),
    OpenApiParameter(
        "state",
        OpenApiTypes.STR,
        description="ENVIRONMENT:STATE, STATE one of on (enabled, not killed), off (disabled, "
        "not killed), killed, rollout (enabled, not killed, default serve is a percentage "
        "split). E.g. production:killed.",
    ),
]


class FlagStateSummaryOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    killed = serializers.BooleanField()
    summary = serializers.SerializerMethodField(help_text="e.g. off, on, 25%, KILLED")
    version = serializers.IntegerField()

    def get_summary(self, state: FlagState) -> str:
        return state_summary(state.flag, state)


class StatesByEnvironmentField(serializers.DictField):
    """A flag's states keyed by environment key, in the environments' order (prefetched)."""

    def get_attribute(self, instance: Flag) -> dict[str, FlagState]:
        states = list(instance.states.all())
        for state in states:
            state.flag = instance  # no query per state for its flag
        states.sort(key=lambda s: (s.environment.sort_order, s.environment_id))
        return {state.environment.key: state for state in states}


class FlagOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    type = serializers.ChoiceField(choices=Flag.Type.values)
    variants = s.VariantsField()
    off_variant = serializers.CharField()
    tags = serializers.SerializerMethodField()
    owner = serializers.CharField()
    client_visible = serializers.BooleanField()
    archived = serializers.BooleanField()
    archived_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    environments = StatesByEnvironmentField(
        child=FlagStateSummaryOut(),
        help_text="By environment key: enabled, killed, a summary and the state's version.",
    )

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_tags(self, flag: Flag) -> list[str]:
        return sorted(t.name for t in flag.tags.all())


class FlagDetailOut(FlagOut):
    environments = StatesByEnvironmentField(
        child=FlagStateOut(),
        help_text="The flag's full state in every environment, by environment key.",
    )


class FlagCreateIn(s.InputSerializer):
    key = serializers.CharField(max_length=100, help_text="^[a-z0-9][a-z0-9._-]{0,99}$")
    type = s.choice_field(list(Flag.Type.values), required=False, default=Flag.Type.BOOLEAN)
    variants = s.VariantsField(required=False, help_text="Required unless the flag is boolean.")
    off_variant = serializers.CharField(required=False, max_length=64)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200)
    client_visible = s.StrictBooleanField(required=False)
    reason = s.reason_field()


class FlagUpdateIn(s.InputSerializer):
    fixed_fields = {
        "key": "a flag's key is fixed; create a new flag instead",
        "type": "a flag's type is fixed; create a new flag instead",
    }

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200)
    client_visible = s.StrictBooleanField(required=False)
    variants = s.VariantsField(required=False)
    off_variant = serializers.CharField(required=False, max_length=64)
    reason = s.reason_field()


class FlagListView(ApiListView):
    permission_classes = [model_permissions(Flag)]
    pagination_class = KeyCursorPagination
    serializer_class = FlagOut

    @extend_schema(
        operation_id="flags_list",
        summary="List flags, with a summary of their state in every environment",
        parameters=FLAG_LIST_PARAMETERS,
        responses=FlagOut(many=True),
    )
    def get(self, request: Request) -> Response:
        flags = self.paginate_queryset(selectors.flag_list(_flag_filters(request)))
        return self.get_paginated_response(FlagOut(flags, many=True).data)

    @extend_schema(
        operation_id="flags_create",
        summary="Create a flag (off in every environment)",
        parameters=[REASON_HEADER_PARAMETER],
        request=FlagCreateIn,
        responses={201: FlagDetailOut, 409: CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = valid_body(FlagCreateIn, request)
        flag = services.flag_create(
            actor=actor_for(request), reason=reason_of(request, data), **changes_in(data)
        )
        return Response(
            FlagDetailOut(flag_or_404(flag.key, with_states=True)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/flags/{flag.key}/"},
        )


ARCHIVED_CONFLICT = OpenApiResponse(description="The flag is archived (flag_archived).")


class FlagDetailView(ApiView):
    permission_classes = [model_permissions(Flag)]

    @extend_schema(
        operation_id="flags_get",
        summary="A flag with its full state in every environment",
        responses=FlagDetailOut,
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(FlagDetailOut(flag_or_404(key, with_states=True)).data)

    @extend_schema(
        operation_id="flags_update",
        summary="Change a flag's name, description, tags, owner, visibility or variants",
        description="Key and type are fixed. Variant changes are checked against the flag's "
        "states and other flags' prerequisites.",
        parameters=[REASON_HEADER_PARAMETER],
        request=FlagUpdateIn,
        responses={200: FlagDetailOut, 409: ARCHIVED_CONFLICT},
    )
    def patch(self, request: Request, key: str) -> Response:
        flag = flag_or_404(key)
        data = valid_body(FlagUpdateIn, request)
        services.flag_update(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data), **changes_in(data)
        )
        return Response(FlagDetailOut(flag_or_404(key, with_states=True)).data)

    @extend_schema(
        operation_id="flags_delete",
        summary="Archive a flag (flags are never deleted; same as POST .../archive/)",
        description="The audit trail refers to flags by key, so DELETE archives: the flag "
        "leaves every snapshot and can be brought back with POST .../unarchive/. "
        "Give the reason in the X-Reason header (or a JSON body).",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={200: FlagDetailOut},
    )
    def delete(self, request: Request, key: str) -> Response:
        return _archive(request, key)


def _archive(request: Request, key: str) -> Response:
    flag = flag_or_404(key)
    data = valid_body(s.ReasonIn, request)
    services.flag_archive(actor=actor_for(request), flag=flag, reason=reason_of(request, data))
    return Response(FlagDetailOut(flag_or_404(key, with_states=True)).data)


class FlagArchiveView(ApiView):
    permission_classes = [model_permissions(Flag, POST="delete")]

    @extend_schema(
        operation_id="flags_archive",
        summary="Archive a flag: it leaves every snapshot (SDKs serve their defaults)",
        description="Refused while another live flag has it as a prerequisite. Archiving an "
        "archived flag changes nothing.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses=FlagDetailOut,
    )
    def post(self, request: Request, key: str) -> Response:
        return _archive(request, key)


class FlagUnarchiveView(ApiView):
    permission_classes = [model_permissions(Flag)]

    @extend_schema(
        operation_id="flags_unarchive",
        summary="Bring an archived flag back with the states it had",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses=FlagDetailOut,
    )
    def post(self, request: Request, key: str) -> Response:
        flag = flag_or_404(key)
        data = valid_body(s.ReasonIn, request)
        services.flag_unarchive(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data)
        )
        return Response(FlagDetailOut(flag_or_404(key, with_states=True)).data)

"""Flags: list (filtered, paginated), create, read, change, archive and unarchive."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
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
from flags.models import Flag
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


class FlagListView(ApiListView):
    permission_classes = [model_permissions(Flag)]
    pagination_class = KeyCursorPagination
    serializer_class = s.FlagOut

    @extend_schema(
        operation_id="flags_list",
        summary="List flags, with a summary of their state in every environment",
        parameters=FLAG_LIST_PARAMETERS,
        responses=s.FlagOut(many=True),
    )
    def get(self, request: Request) -> Response:
        flags = self.paginate_queryset(selectors.flag_list(_flag_filters(request)))
        return self.get_paginated_response(s.FlagOut(flags, many=True).data)

    @extend_schema(
        operation_id="flags_create",
        summary="Create a flag (off in every environment)",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.FlagCreateIn,
        responses={201: s.FlagDetailOut, 409: CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = valid_body(s.FlagCreateIn, request)
        flag = services.flag_create(
            actor=actor_for(request), reason=reason_of(request, data), **changes_in(data)
        )
        return Response(
            s.FlagDetailOut(flag_or_404(flag.key, with_states=True)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/flags/{flag.key}/"},
        )


ARCHIVED_CONFLICT = OpenApiResponse(description="The flag is archived (flag_archived).")


class FlagDetailView(ApiView):
    permission_classes = [model_permissions(Flag)]

    @extend_schema(
        operation_id="flags_get",
        summary="A flag with its full state in every environment",
        responses=s.FlagDetailOut,
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(s.FlagDetailOut(flag_or_404(key, with_states=True)).data)

    @extend_schema(
        operation_id="flags_update",
        summary="Change a flag's name, description, tags, owner, visibility or variants",
        description="Key and type are fixed. Variant changes are checked against the flag's "
        "states and other flags' prerequisites.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.FlagUpdateIn,
        responses={200: s.FlagDetailOut, 409: ARCHIVED_CONFLICT},
    )
    def patch(self, request: Request, key: str) -> Response:
        flag = flag_or_404(key)
        data = valid_body(s.FlagUpdateIn, request)
        services.flag_update(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data), **changes_in(data)
        )
        return Response(s.FlagDetailOut(flag_or_404(key, with_states=True)).data)

    @extend_schema(
        operation_id="flags_delete",
        summary="Archive a flag (flags are never deleted; same as POST .../archive/)",
        description="The audit trail refers to flags by key, so DELETE archives: the flag "
        "leaves every snapshot and can be brought back with POST .../unarchive/. "
        "Give the reason in the X-Reason header (or a JSON body).",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={200: s.FlagDetailOut},
    )
    def delete(self, request: Request, key: str) -> Response:
        return _archive(request, key)


def _archive(request: Request, key: str) -> Response:
    flag = flag_or_404(key)
    data = valid_body(s.ReasonIn, request)
    services.flag_archive(actor=actor_for(request), flag=flag, reason=reason_of(request, data))
    return Response(s.FlagDetailOut(flag_or_404(key, with_states=True)).data)


class FlagArchiveView(ApiView):
    permission_classes = [model_permissions(Flag, POST="delete")]

    @extend_schema(
        operation_id="flags_archive",
        summary="Archive a flag: it leaves every snapshot (SDKs serve their defaults)",
        description="Refused while another live flag has it as a prerequisite. Archiving an "
        "archived flag changes nothing.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses=s.FlagDetailOut,
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
        responses=s.FlagDetailOut,
    )
    def post(self, request: Request, key: str) -> Response:
        flag = flag_or_404(key)
        data = valid_body(s.ReasonIn, request)
        services.flag_unarchive(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data)
        )
        return Response(s.FlagDetailOut(flag_or_404(key, with_states=True)).data)

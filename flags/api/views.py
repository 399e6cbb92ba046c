"""Management API endpoints: thin views over flags.services (writes) and the API selectors (reads).

Every endpoint needs an admin token or a staff session (``flags.api.permissions``);
every write passes the caller as the audit actor and the request's reason.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import services
from flags.api import selectors
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import (
    boolean_parameter,
    expected_version_of,
    reason_of,
)
from flags.api.permissions import TokenPermission, model_permissions
from flags.errors import ValidationFailed
from flags.models import ApiToken, Environment, Flag, FlagState, Segment
from flagsvc.api.errors import ApiNotFound, InvalidParameter
from flagsvc.api.views import ApiListView, ApiView, KeyCursorPagination

# --- lookups ------------------------------------------------------------------------------


def _environment(key: str) -> Environment:
    environment = selectors.environment_get(key)
    if environment is None:
        raise ApiNotFound(f"No environment {key!r}. List them with GET /api/v1/environments/.")
    return environment


def _flag(key: str, *, with_states: bool = True) -> Flag:
    flag = selectors.flag_get(key) if with_states else selectors.flag_by_key(key)
    if flag is None:
        raise ApiNotFound(f"No flag {key!r}. List them with GET /api/v1/flags/?archived=any.")
    return flag


def _segment(environment: Environment, key: str) -> Segment:
    segment = selectors.segment_get(environment, key)
    if segment is None:
        raise ApiNotFound(
            f"No segment {key!r} in {environment.key}. List them with "
            f"GET /api/v1/environments/{environment.key}/segments/."
        )
    return segment


def _token(token_id: int) -> ApiToken:
    token = selectors.token_get(token_id)
    if token is None:
        raise ApiNotFound(f"No token with id {token_id}. List them with GET /api/v1/tokens/.")
    return token


def _environment_field(key: str | None, field: str) -> Environment | None:
    """An environment named in a request body: a bad key is a 400 on that field, not a 404."""
    if key is None or key == "":
        return None
    environment = selectors.environment_get(key)
    if environment is None:
        known = ", ".join(e.key for e in selectors.environment_list())
        raise ValidationFailed(
            f"{field}: no environment {key!r}; known: {known}.",
            {field: f"no environment {key!r}"},
        )
    return environment


def _valid(serializer_class: type[s.InputSerializer], request: Request, **kwargs: Any) -> Any:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _changes(data: dict[str, Any], *exclude: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("reason", *exclude)}


REASON_HEADER_PARAMETER = OpenApiParameter(
    "X-Reason",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Why (goes on the audit trail), if the body has no reason.",
)
CONFLICT = OpenApiResponse(description="Already exists; nothing changed.")

# --- environments -------------------------------------------------------------------------


class EnvironmentListView(ApiView):
    permission_classes = [model_permissions(Environment)]

    @extend_schema(
        operation_id="environments_list",
        summary="List environments",
        responses=s.EnvironmentOut(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(s.EnvironmentOut(selectors.environment_list(), many=True).data)

    @extend_schema(
        operation_id="environments_create",
        summary="Create an environment (optionally copying another's states and segments)",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.EnvironmentCreateIn,
        responses={201: s.EnvironmentOut, 409: CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.EnvironmentCreateIn, request)
        environment = services.environment_create(
            actor=actor_for(request),
            key=data["key"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            copy_from=_environment_field(data.get("copy_from"), "copy_from"),
            reason=reason_of(request, data),
        )
        return Response(
            s.EnvironmentOut(environment).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/environments/{environment.key}/"},
        )


class EnvironmentDetailView(ApiView):
    permission_classes = [model_permissions(Environment)]

    @extend_schema(
        operation_id="environments_get", summary="An environment", responses=s.EnvironmentOut
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(s.EnvironmentOut(_environment(key)).data)

    @extend_schema(
        operation_id="environments_update",
        summary="Rename or describe an environment",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.EnvironmentUpdateIn,
        responses=s.EnvironmentOut,
    )
    def patch(self, request: Request, key: str) -> Response:
        environment = _environment(key)
        data = _valid(s.EnvironmentUpdateIn, request)
        environment = services.environment_update(
            actor=actor_for(request),
            environment=environment,
            name=data.get("name"),
            description=data.get("description"),
            reason=reason_of(request, data),
        )
        return Response(s.EnvironmentOut(environment).data)


# --- flags ---------------------------------------------------------------------------------


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
        data = _valid(s.FlagCreateIn, request)
        flag = services.flag_create(
            actor=actor_for(request), reason=reason_of(request, data), **_changes(data)
        )
        return Response(
            s.FlagDetailOut(_flag(flag.key)).data,
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
        return Response(s.FlagDetailOut(_flag(key)).data)

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
        flag = _flag(key, with_states=False)
        data = _valid(s.FlagUpdateIn, request)
        services.flag_update(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data), **_changes(data)
        )
        return Response(s.FlagDetailOut(_flag(key)).data)

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
    flag = _flag(key, with_states=False)
    data = _valid(s.ReasonIn, request)
    services.flag_archive(actor=actor_for(request), flag=flag, reason=reason_of(request, data))
    return Response(s.FlagDetailOut(_flag(key)).data)


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
        flag = _flag(key, with_states=False)
        data = _valid(s.ReasonIn, request)
        services.flag_unarchive(
            actor=actor_for(request), flag=flag, reason=reason_of(request, data)
        )
        return Response(s.FlagDetailOut(_flag(key)).data)


# --- flag states ---------------------------------------------------------------------------

IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The state\'s ETag as read, e.g. "7": the write happens only if the state is '
    "still at that version (else 409 version_conflict, nothing changed). Optional: without "
    "it (or a body version) the write wins whatever the version.",
)
STATE_WRITE_RESPONSES = {
    200: s.FlagStateOut,
    409: OpenApiResponse(
        description="version_conflict (the state changed since you read it) or flag_archived; "
        "nothing changed."
    ),
}


def _state_response(state: FlagState, status_code: int = 200) -> Response:
    return Response(
        s.FlagStateOut(state).data, status=status_code, headers={"ETag": f'"{state.version}"'}
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
        responses={200: s.FlagStateOut, 304: OpenApiResponse(description="Not modified.")},
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
        request=s.FlagStateWriteIn,
        responses=STATE_WRITE_RESPONSES,
    )
    def put(self, request: Request, key: str, environment: str) -> Response:
        return self._write(request, key, environment, partial=False)

    @extend_schema(
        operation_id="flag_states_update",
        summary="Change some fields of a flag's state in one environment",
        parameters=[IF_MATCH_PARAMETER, REASON_HEADER_PARAMETER],
        request=s.FlagStateWriteIn,
        responses=STATE_WRITE_RESPONSES,
    )
    def patch(self, request: Request, key: str, environment: str) -> Response:
        return self._write(request, key, environment, partial=True)

    def _state(self, key: str, environment_key: str) -> FlagState:
        flag, environment = _flag(key, with_states=False), _environment(environment_key)
        state = selectors.flag_state_get(flag, environment)
        if state is None:  # every flag has a state in every environment; be safe anyway
            raise ApiNotFound(f"Flag {key!r} has no state in {environment_key!r}.")
        return state

    def _write(
        self, request: Request, key: str, environment_key: str, *, partial: bool
    ) -> Response:
        state = self._state(key, environment_key)
        data = _valid(s.FlagStateWriteIn, request, partial=partial)
        state = services.flag_state_update(
            actor=actor_for(request),
            flag=state.flag,
            environment=state.environment,
            reason=reason_of(request, data),
            expected_version=expected_version_of(request, data),
            **_changes(data, "version"),
        )
        return _state_response(state)


# --- segments ------------------------------------------------------------------------------


class SegmentListView(ApiView):
    permission_classes = [model_permissions(Segment)]

    @extend_schema(
        operation_id="segments_list",
        summary="An environment's segments",
        responses=s.SegmentOut(many=True),
    )
    def get(self, request: Request, environment: str) -> Response:
        segments = selectors.segment_list(_environment(environment))
        return Response(s.SegmentOut(segments, many=True).data)

    @extend_schema(
        operation_id="segments_create",
        summary="Create a segment (a reusable audience) in an environment",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.SegmentCreateIn,
        responses={201: s.SegmentOut, 409: CONFLICT},
    )
    def post(self, request: Request, environment: str) -> Response:
        target = _environment(environment)
        data = _valid(s.SegmentCreateIn, request)
        segment = services.segment_create(
            actor=actor_for(request),
            environment=target,
            reason=reason_of(request, data),
            **_changes(data),
        )
        segment = _segment(target, segment.key)
        return Response(
            s.SegmentOut(segment).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/environments/{target.key}/segments/{segment.key}/"},
        )


class SegmentDetailView(ApiView):
    permission_classes = [model_permissions(Segment)]

    @extend_schema(operation_id="segments_get", summary="A segment", responses=s.SegmentOut)
    def get(self, request: Request, environment: str, key: str) -> Response:
        return Response(s.SegmentOut(_segment(_environment(environment), key)).data)

    @extend_schema(
        operation_id="segments_update",
        summary="Change a segment (every flag using it follows)",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.SegmentUpdateIn,
        responses=s.SegmentOut,
    )
    def patch(self, request: Request, environment: str, key: str) -> Response:
        target = _environment(environment)
        segment = _segment(target, key)
        data = _valid(s.SegmentUpdateIn, request)
        services.segment_update(
            actor=actor_for(request),
            segment=segment,
            reason=reason_of(request, data),
            **_changes(data),
        )
        return Response(s.SegmentOut(_segment(target, key)).data)

    @extend_schema(
        operation_id="segments_delete",
        summary="Delete a segment that no flag's rules use",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={204: None},
    )
    def delete(self, request: Request, environment: str, key: str) -> Response:
        segment = _segment(_environment(environment), key)
        data = _valid(s.ReasonIn, request)
        services.segment_delete(
            actor=actor_for(request), segment=segment, reason=reason_of(request, data)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tokens --------------------------------------------------------------------------------


class TokenListView(ApiView):
    permission_classes = [TokenPermission]

    @extend_schema(
        operation_id="tokens_list",
        summary="List tokens (never their values)",
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(ApiToken.Kind.values)),
            OpenApiParameter(
                "revoked",
                OpenApiTypes.STR,
                enum=["false", "true", "any"],
                description="any (default), false: live tokens only, true: revoked only.",
            ),
        ],
        responses=s.TokenOut(many=True),
    )
    def get(self, request: Request) -> Response:
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ApiToken.Kind.values:
            raise InvalidParameter(
                "kind", f"{kind!r} is not one of {', '.join(ApiToken.Kind.values)}"
            )
        tokens = selectors.token_list(
            kind=kind, revoked=boolean_parameter(request, "revoked", None)
        )
        return Response(s.TokenOut(tokens, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        summary="Issue a token; its value is in this answer only",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.TokenCreateIn,
        responses={201: s.TokenIssuedOut},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.TokenCreateIn, request)
        token, raw = services.token_issue(
            actor=actor_for(request),
            kind=data["kind"],
            name=data["name"],
            environment=_environment_field(data.get("environment"), "environment"),
            reason=reason_of(request, data),
        )
        body = {**s.TokenOut(token).data, "token": raw}
        # The raw value must not linger in any cache between here and the caller.
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TokenDetailView(ApiView):
    permission_classes = [TokenPermission]

    @extend_schema(
        operation_id="tokens_get", summary="A token (never its value)", responses=s.TokenOut
    )
    def get(self, request: Request, token_id: int) -> Response:
        return Response(s.TokenOut(_token(token_id)).data)


class TokenRevokeView(ApiView):
    permission_classes = [model_permissions(ApiToken, POST="change")]

    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke a token: it stops working everywhere",
        description="Revoking a revoked token changes nothing.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses=s.TokenOut,
    )
    def post(self, request: Request, token_id: int) -> Response:
        token = _token(token_id)
        data = _valid(s.ReasonIn, request)
        token = services.token_revoke(
            actor=actor_for(request), token=token, reason=reason_of(request, data)
        )
        return Response(s.TokenOut(token).data)

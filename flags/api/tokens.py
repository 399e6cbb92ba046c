"""API tokens: list and read (never their values), issue (value shown once), revoke."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import services
from flags.api import selectors
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import boolean_parameter, reason_of
from flags.api.lookups import (
    REASON_HEADER_PARAMETER,
    environment_in_body,
    token_or_404,
    valid_body,
)
from flags.api.permissions import TokenPermission, model_permissions
from flags.models import ApiToken
from flagsvc.api.errors import InvalidParameter
from flagsvc.api.views import ApiView


class TokenOut(serializers.Serializer):
    """A token as listed: never its raw value or digest."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ApiToken.Kind.values)
    environment = serializers.CharField(source="environment.key", allow_null=True, default=None)
    hint = serializers.CharField(help_text="The raw token's last characters.")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    last_used_at = serializers.DateTimeField(
        allow_null=True, help_text="Recorded at most once a minute per process."
    )
    revoked = serializers.BooleanField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField()


class TokenIssuedOut(TokenOut):
    token = serializers.CharField(
        help_text="The raw token. Shown this once: store it now, it cannot be read again."
    )


class TokenCreateIn(s.InputSerializer):
    name = serializers.CharField(max_length=100, help_text="e.g. checkout-service")
    kind = s.choice_field(list(ApiToken.Kind.values))
    environment = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Environment key: required for server and client keys, optional for kill "
        "keys, not allowed for admin tokens.",
    )
    reason = s.reason_field()


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
        responses=TokenOut(many=True),
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
        return Response(TokenOut(tokens, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        summary="Issue a token; its value is in this answer only",
        parameters=[REASON_HEADER_PARAMETER],
        request=TokenCreateIn,
        responses={201: TokenIssuedOut},
    )
    def post(self, request: Request) -> Response:
        data = valid_body(TokenCreateIn, request)
        token, raw = services.token_issue(
            actor=actor_for(request),
            kind=data["kind"],
            name=data["name"],
            environment=environment_in_body(data.get("environment"), "environment"),
            reason=reason_of(request, data),
        )
        body = {**TokenOut(token).data, "token": raw}
        # The raw value must not linger in any cache between here and the caller.
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TokenDetailView(ApiView):
    permission_classes = [TokenPermission]

    @extend_schema(
        operation_id="tokens_get", summary="A token (never its value)", responses=TokenOut
    )
    def get(self, request: Request, token_id: int) -> Response:
        return Response(TokenOut(token_or_404(token_id)).data)


class TokenRevokeView(ApiView):
    permission_classes = [model_permissions(ApiToken, POST="change")]

    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke a token: it stops working everywhere",
        description="Revoking a revoked token changes nothing.",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses=TokenOut,
    )
    def post(self, request: Request, token_id: int) -> Response:
        token = token_or_404(token_id)
        data = valid_body(s.ReasonIn, request)
        token = services.token_revoke(
            actor=actor_for(request), token=token, reason=reason_of(request, data)
        )
        return Response(TokenOut(token).data)

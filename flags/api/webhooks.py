"""Webhook endpoints: an environment's subscriptions (the signing secret shown once, at
creation and at each rotation), enable/disable, delete, and each subscription's delivery log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import selectors, webhooks
from flags.api import serializers as s
from flags.api.auth import actor_for
from flags.api.http import reason_of
from flags.api.lookups import (
    REASON_HEADER_PARAMETER,
    changes_in,
    environment_or_404,
    valid_body,
)
from flags.api.permissions import model_permissions
from flags.models import Environment, WebhookDelivery, WebhookSubscription
from flagsvc.api.errors import ApiNotFound
from flagsvc.api.views import ApiView

KIND_CHOICES = list(webhooks.KINDS)


class WebhookOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    environment = serializers.CharField(source="environment.key")
    url = serializers.CharField()
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=KIND_CHOICES))
    format = serializers.ChoiceField(choices=WebhookSubscription.Format.values)
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    secret_hint = serializers.CharField(help_text="The signing secret's last 4 characters.")
    previous_secret_until = serializers.SerializerMethodField(
        help_text="After a rotation: until when deliveries are also signed with the previous "
        "secret (null: only the current one signs)."
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_previous_secret_until(self, subscription: WebhookSubscription) -> str | None:
        until = subscription.previous_secret_expires_at
        if not subscription.previous_signing_secret or until is None:
            return None
        return serializers.DateTimeField().to_representation(until)


class WebhookCreatedOut(WebhookOut):
    signing_secret = serializers.CharField(
        help_text="Shown only now: verify X-Flagsvc-Signature with it (see the README)."
    )


class WebhookRotateIn(s.InputSerializer):
    overlap_hours = s.StrictFloatField(
        min_value=0,
        max_value=webhooks.MAX_OVERLAP_HOURS,
        required=False,
        default=24,
        help_text="How long deliveries are also signed with the previous secret, so the "
        "receiver can switch without refusing any; 0 retires it at once (it leaked).",
    )
    reason = s.reason_field()


class WebhookCreateIn(s.InputSerializer):
    name = serializers.CharField(max_length=100)
    url = serializers.URLField(max_length=500)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=KIND_CHOICES),
        required=False,
        default=list,
        max_length=len(KIND_CHOICES),
        help_text="Kinds of change sent; empty or left out: every kind.",
    )
    format = serializers.ChoiceField(
        choices=WebhookSubscription.Format.values, required=False, default="json"
    )
    authorization = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text='Authorization header sent along (e.g. "Bearer <Grafana token>").',
    )
    reason = s.reason_field()


class WebhookUpdateIn(s.InputSerializer):
    """What a PATCH may change; what it leaves out stays (the secret: rotate-secret/)."""

    name = serializers.CharField(max_length=100, required=False)
    url = serializers.URLField(max_length=500, required=False)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=KIND_CHOICES),
        required=False,
        max_length=len(KIND_CHOICES),
        help_text="Kinds of change sent; empty: every kind.",
    )
    format = serializers.ChoiceField(choices=WebhookSubscription.Format.values, required=False)
    authorization = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = s.StrictBooleanField(
        required=False, help_text="true also resets the count of failures in a row."
    )
    reason = s.reason_field()


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    event_sequence = serializers.IntegerField()
    action = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    latency_ms = serializers.FloatField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


def _webhook_or_404(environment: Environment, webhook_id: int) -> WebhookSubscription:
    subscription = selectors.webhook_get(environment, webhook_id)
    if subscription is None:
        raise ApiNotFound(
            f"No webhook {webhook_id} in {environment.key}. List them with GET "
            f"/api/v1/environments/{environment.key}/webhooks/."
        )
    return subscription


class WebhookListView(ApiView):
    permission_classes = [model_permissions(WebhookSubscription)]

    @extend_schema(
        operation_id="webhooks_list",
        summary="An environment's webhook subscriptions",
        responses=WebhookOut(many=True),
    )
    def get(self, request: Request, environment: str) -> Response:
        return Response(
            WebhookOut(selectors.webhook_list(environment_or_404(environment)), many=True).data
        )

    @extend_schema(
        operation_id="webhooks_create",
        summary="Send an environment's changes to a URL (signed JSON, Slack or Grafana)",
        parameters=[REASON_HEADER_PARAMETER],
        request=WebhookCreateIn,
        responses={201: WebhookCreatedOut},
    )
    def post(self, request: Request, environment: str) -> Response:
        target = environment_or_404(environment)
        data = valid_body(WebhookCreateIn, request)
        subscription, secret = webhooks.webhook_create(
            actor=actor_for(request),
            environment=target,
            name=data["name"],
            url=data["url"],
            kinds=data["kinds"],
            format=data["format"],
            authorization=data["authorization"],
            reason=reason_of(request, data),
        )
        subscription.signing_secret = secret
        return Response(
            WebhookCreatedOut(subscription).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/environments/{target.key}/webhooks/{subscription.pk}/"},
        )


class WebhookDetailView(ApiView):
    permission_classes = [model_permissions(WebhookSubscription)]

    @extend_schema(
        operation_id="webhooks_get", summary="A webhook subscription", responses=WebhookOut
    )
    def get(self, request: Request, environment: str, webhook_id: int) -> Response:
        return Response(
            WebhookOut(_webhook_or_404(environment_or_404(environment), webhook_id)).data
        )

    @extend_schema(
        operation_id="webhooks_update",
        summary="Change a webhook subscription (name, URL, kinds, format, authorization), "
        "enable it (failure count reset) or disable it",
        parameters=[REASON_HEADER_PARAMETER],
        request=WebhookUpdateIn,
        responses=WebhookOut,
    )
    def patch(self, request: Request, environment: str, webhook_id: int) -> Response:
        subscription = _webhook_or_404(environment_or_404(environment), webhook_id)
        data = valid_body(WebhookUpdateIn, request)
        subscription = webhooks.webhook_update(
            actor=actor_for(request),
            subscription=subscription,
            reason=reason_of(request, data),
            **changes_in(data),
        )
        return Response(WebhookOut(subscription).data)

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Delete a webhook subscription and its delivery log",
        parameters=[REASON_HEADER_PARAMETER],
        request=s.ReasonIn,
        responses={204: None},
    )
    def delete(self, request: Request, environment: str, webhook_id: int) -> Response:
        subscription = _webhook_or_404(environment_or_404(environment), webhook_id)
        data = valid_body(s.ReasonIn, request)
        webhooks.webhook_delete(
            actor=actor_for(request), subscription=subscription, reason=reason_of(request, data)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(ApiView):
    permission_classes = [model_permissions(WebhookSubscription, POST="change")]

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Issue a new signing secret (shown only now); the previous one keeps signing "
        "for overlap_hours",
        parameters=[REASON_HEADER_PARAMETER],
        request=WebhookRotateIn,
        responses=WebhookCreatedOut,
    )
    def post(self, request: Request, environment: str, webhook_id: int) -> Response:
        subscription = _webhook_or_404(environment_or_404(environment), webhook_id)
        data = valid_body(WebhookRotateIn, request)
        subscription, secret = webhooks.webhook_rotate_secret(
            actor=actor_for(request),
            subscription=subscription,
            overlap_hours=data["overlap_hours"],
            reason=reason_of(request, data),
        )
        subscription.signing_secret = secret
        return Response(WebhookCreatedOut(subscription).data)


class WebhookDeliveriesView(ApiView):
    permission_classes = [model_permissions(WebhookSubscription)]

    @extend_schema(
        operation_id="webhooks_deliveries",
        summary="A webhook's delivery log, newest first (status, attempts, latency)",
        responses=DeliveryOut(many=True),
    )
    def get(self, request: Request, environment: str, webhook_id: int) -> Response:
        subscription = _webhook_or_404(environment_or_404(environment), webhook_id)
        return Response(DeliveryOut(selectors.webhook_deliveries(subscription), many=True).data)

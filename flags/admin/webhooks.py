"""Webhooks in the Django admin: subscribe (the signing secret shown once), enable or disable,
and the delivery log (status, attempts, latency) of every subscription."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.recorder import Actor
from flags import webhooks
from flags.admin.base import ServiceErrorsAsMessages, admin_page
from flags.admin.forms import ShowsServiceRefusal
from flags.errors import ServiceError
from flags.models import WebhookDelivery, WebhookSubscription


class HttpsURLField(forms.URLField):
    """A URL typed without a scheme is taken as https (Django 6's default, chosen now)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class WebhookForm(ShowsServiceRefusal, forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=[(kind, f"{kind}: {text}") for kind, text in webhooks.KINDS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every kind.",
    )
    authorization = forms.CharField(
        required=False,
        max_length=500,
        strip=False,
        help_text='An Authorization header sent along (e.g. "Bearer <Grafana token>").',
    )
    reason = forms.CharField(required=False, max_length=2000, help_text="Goes on the audit trail.")

    class Meta:
        model = WebhookSubscription
        fields: tuple[str, ...] = ("name", "environment", "url", "kinds", "format", "authorization")
        field_classes = {"url": HttpsURLField}


class WebhookChangeForm(WebhookForm):
    """Editing a subscription: the Authorization header is never shown back."""

    authorization = forms.CharField(
        required=False,
        max_length=500,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current header (if any).",
    )
    clear_authorization = forms.BooleanField(
        required=False, label="Remove the Authorization header"
    )

    class Meta(WebhookForm.Meta):
        fields = ("name", "url", "kinds", "format")


class RotateForm(forms.Form):
    overlap_hours = forms.FloatField(
        min_value=0,
        max_value=webhooks.MAX_OVERLAP_HOURS,
        initial=24,
        label="Previous secret keeps signing for (hours)",
        help_text="Deliveries carry both signatures meanwhile, so the receiver can switch "
        "without refusing any. 0: retire it now (it leaked).",
    )
    reason = forms.CharField(
        required=False, max_length=2000, help_text="Goes on the audit trail.", strip=True
    )


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ServiceErrorsAsMessages):
    form = WebhookForm
    list_display = (
        "name",
        "environment",
        "url",
        "format",
        "enabled",
        "consecutive_failures",
        "log",
    )
    list_filter = ("environment", "format", "enabled")
    search_fields = ("name", "url")
    actions = ("enable", "disable")

    READ_ONLY = (
        "environment",
        "enabled",
        "disabled_reason",
        "consecutive_failures",
        "secret",
        "created_by",
        "log",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return (*WebhookForm.Meta.fields, "reason")
        editable = ("name", "url", "kinds", "format", "authorization", "clear_authorization")
        return (*editable, "reason", *self.READ_ONLY)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None and not self.has_change_permission(request, obj):
            return self.get_fields(request, obj)
        return self.READ_ONLY if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is not None:
            kwargs["form"] = WebhookChangeForm
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="signing secret")
    def secret(self, subscription: WebhookSubscription) -> str:
        rotate = reverse("admin:flags_webhooksubscription_rotate", args=[subscription.pk])
        until = subscription.previous_secret_expires_at
        overlap = (
            format_html(
                " · the previous secret also signs until {} UTC",
                f"{until.astimezone(UTC):%Y-%m-%d %H:%M}",
            )
            if subscription.previous_signing_secret and until and until > timezone.now()
            else ""
        )
        if not subscription.signing_secret:
            return format_html(
                'cannot be opened with this server\'s SECRET_KEY: <a href="{}">rotate it</a>',
                rotate,
            )
        return format_html(
            '…{}{} · <a href="{}">Rotate the secret</a>', subscription.secret_hint, overlap, rotate
        )

    def get_urls(self) -> list[Any]:
        rotate = path(
            "<int:webhook_id>/rotate-secret/",
            self.admin_site.admin_view(self.rotate_view),
            name="flags_webhooksubscription_rotate",
        )
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest, webhook_id: int) -> HttpResponse:
        """Ask how long the previous secret keeps signing, then rotate and show the new one once."""
        subscription = get_object_or_404(WebhookSubscription, pk=webhook_id)
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        form = RotateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                subscription, secret = webhooks.webhook_rotate_secret(
                    actor=Actor.from_request(request),
                    subscription=subscription,
                    overlap_hours=form.cleaned_data["overlap_hours"],
                    reason=form.cleaned_data["reason"],
                )
            except ServiceError as error:
                form.add_error(None, error.message)
            else:
                return admin_page(
                    self,
                    request,
                    "admin/flags/webhooksubscription/created.html",
                    f"New signing secret for {subscription.name}",
                    subscription=subscription,
                    secret=secret,
                    rotated=True,
                )
        return admin_page(
            self,
            request,
            "admin/flags/webhooksubscription/rotate.html",
            f"Rotate the signing secret of {subscription.name}",
            subscription=subscription,
            form=form,
        )

    @admin.display(description="delivery log")
    def log(self, subscription: WebhookSubscription) -> str:
        url = (
            reverse("admin:flags_webhookdelivery_changelist")
            + f"?subscription__id__exact={subscription.pk}"
        )
        return format_html('<a href="{}">deliveries</a>', url)

    def save_model(
        self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            authorization = data.get("authorization") or None
            if data.get("clear_authorization"):
                authorization = ""
            webhooks.webhook_update(
                actor=Actor.from_request(request),
                subscription=obj,
                name=data["name"],
                url=data["url"],
                kinds=list(data["kinds"]),
                format=data["format"],
                reason=data.get("reason", ""),
                **({} if authorization is None else {"authorization": authorization}),
            )
            return
        created, secret = webhooks.webhook_create(
            actor=Actor.from_request(request),
            environment=data["environment"],
            name=data["name"],
            url=data["url"],
            kinds=list(data["kinds"]),
            format=data["format"],
            authorization=data["authorization"],
            reason=data.get("reason", ""),
        )
        obj.pk, obj._state.adding = created.pk, False
        request._flagsvc_webhook_secret = secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebhookSubscription, post_url_continue: Any = None
    ) -> HttpResponse:
        secret = getattr(request, "_flagsvc_webhook_secret", "")
        return admin_page(
            self,
            request,
            "admin/flags/webhooksubscription/created.html",
            f"Webhook {obj.name} created",
            subscription=obj,
            secret=secret,
        )

    def delete_model(self, request: HttpRequest, obj: WebhookSubscription) -> None:
        webhooks.webhook_delete(actor=Actor.from_request(request), subscription=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]
    ) -> None:
        for subscription in queryset:
            self.delete_model(request, subscription)

    def _switch(
        self, request: HttpRequest, queryset: QuerySet[WebhookSubscription], enabled: bool
    ) -> None:
        actor = Actor.from_request(request)
        for subscription in queryset:
            webhooks.webhook_set_enabled(actor=actor, subscription=subscription, enabled=enabled)
        self.message_user(
            request,
            f"{'Enabled' if enabled else 'Disabled'} {queryset.count()} webhook(s).",
            messages.SUCCESS,
        )

    @admin.action(
        description="Enable selected webhooks (failure count reset)", permissions=["change"]
    )
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Disable selected webhooks", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        self._switch(request, queryset, False)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only."""

    list_display = (
        "created_at",
        "subscription",
        "action",
        "status",
        "attempts",
        "last_status_code",
        "latency_ms",
        "last_error",
        "next_attempt_at",
    )
    list_filter = ("status", "kind", "subscription")
    list_select_related = ("subscription",)
    search_fields = ("action",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

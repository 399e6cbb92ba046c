"""Issued secrets in the admin: API tokens and kill-trigger URLs, shown once, then only revoked.

Both are the same idea (a secret shown once, stored as a digest, revocable, audited),
so one ``IssuedSecretAdmin`` does the work; each subclass says which service issues
and revokes, and which page shows the secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from audit.recorder import Actor
from flags import selectors, services
from flags.admin.base import (
    ACTION_PERMISSIONS,
    ISSUE_ADMIN_TOKEN,
    ServiceErrorsAsMessages,
    admin_page,
)
from flags.admin.forms import ApiTokenForm, KillTriggerForm
from flags.models import ApiToken, KillTrigger

REVOKED_FROM_THE_LIST = "revoked from the admin list"


class IssuedSecretAdmin(ServiceErrorsAsMessages):
    """Created through a service and shown once on their own page, then only revoked;
    never edited, never deleted (the audit trail names them)."""

    create_fields: tuple[str, ...] = ()
    detail_fields: tuple[str, ...] = ()
    revoke_permission = ""
    # The page that shows the secret, and what each list action says.
    shown_once_template = ""
    revoked_message = "Revoked {obj}."
    already_revoked_message: ClassVar[str | None] = None
    # Where save_model leaves the secret for response_add (never stored anywhere).
    _SECRET_ATTRIBUTE = "_issued_secret"

    # -- what a subclass provides

    def issue(self, request: HttpRequest, data: dict[str, Any]) -> tuple[Any, str]:
        """Issue one (audited) from the form's data: the record and the secret to show once."""
        raise NotImplementedError

    def revoke(self, actor: Actor, obj: Any) -> None:
        raise NotImplementedError

    def shown_once_context(self, request: HttpRequest, obj: Any, secret: str) -> dict[str, Any]:
        raise NotImplementedError

    def shown_once_title(self, obj: Any) -> str:
        raise NotImplementedError

    # -- shared

    @admin.display(description="Revoked", boolean=True, ordering="revoked_at")
    def is_revoked(self, obj: Any) -> bool:
        return bool(obj.revoked)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.detail_fields if obj else self.create_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.detail_fields if obj else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.revoke_permission)

    def save_model(self, request: HttpRequest, obj: Any, form: forms.Form, change: bool) -> None:
        issued, secret = self.issue(request, form.cleaned_data)
        obj.pk = obj.id = issued.pk
        obj.hint = issued.hint
        obj._state.adding = False
        setattr(request, self._SECRET_ATTRIBUTE, secret)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, self._SECRET_ATTRIBUTE, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = admin_page(
            self,
            request,
            self.shown_once_template,
            self.shown_once_title(obj),
            **self.shown_once_context(request, obj, secret),
        )
        response["Cache-Control"] = "no-store"  # the page shows a secret its only time
        return response

    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = Actor.from_request(request)
        for obj in queryset:
            if obj.revoked:
                if self.already_revoked_message:
                    messages.info(request, self.already_revoked_message.format(obj=obj))
                continue
            self.revoke(actor, obj)
            messages.success(request, self.revoked_message.format(obj=obj))


TOKEN_DETAIL_FIELDS = (
    "name",
    "kind",
    "environment",
    "hint",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
    "revoked_by",
)


@admin.register(ApiToken)
class ApiTokenAdmin(IssuedSecretAdmin):
    """Issue tokens (the value is shown once, on its own page) and revoke them; never edit one."""

    form = ApiTokenForm
    list_display = (
        "name",
        "kind",
        "environment",
        "hint",
        "created_at",
        "created_by",
        "last_used_at",
        "is_revoked",
    )
    list_filter = ("kind", "environment", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "hint", "created_by")
    actions = ("revoke_tokens",)
    create_fields = ("name", "kind", "environment", "reason")
    detail_fields = TOKEN_DETAIL_FIELDS
    revoke_permission = "flags.change_apitoken"
    shown_once_template = "admin/flags/apitoken/issued.html"
    revoked_message = "Revoked {obj}: it stops working everywhere."
    already_revoked_message = "{obj} was already revoked."

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        allowed = request.user.has_perm(ISSUE_ADMIN_TOKEN)
        return type(form.__name__, (form,), {"may_issue_admin_tokens": allowed})

    def issue(self, request: HttpRequest, data: dict[str, Any]) -> tuple[Any, str]:
        return services.token_issue(
            actor=Actor.from_request(request),
            kind=data["kind"],
            name=data["name"],
            environment=data.get("environment"),
            reason=data.get("reason", ""),
        )

    def revoke(self, actor: Actor, obj: ApiToken) -> None:
        services.token_revoke(actor=actor, token=obj, reason=REVOKED_FROM_THE_LIST)

    def shown_once_title(self, obj: ApiToken) -> str:
        return f"Token {obj.name!r} issued"

    def shown_once_context(
        self, request: HttpRequest, obj: ApiToken, secret: str
    ) -> dict[str, Any]:
        return {"token": selectors.api_token_by_id(obj.pk), "raw": secret}

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        self.revoke_selected(request, queryset)


@admin.register(KillTrigger)
class KillTriggerAdmin(IssuedSecretAdmin):
    """Trigger URLs for APM alerts: created (URL shown once) and revoked, never edited."""

    form = KillTriggerForm
    list_display = (
        "name",
        "flag",
        "environment",
        "action",
        "hint",
        "created_at",
        "created_by",
        "is_revoked",
    )
    list_filter = ("action", "environment", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "flag__key", "hint")
    actions = ("revoke_triggers",)
    create_fields = ("name", "flag", "environment", "action", "reason")
    detail_fields = (
        "name",
        "flag",
        "environment",
        "action",
        "hint",
        "created_at",
        "created_by",
        "revoked_at",
        "revoked_by",
    )
    revoke_permission = "flags.change_killtrigger"
    shown_once_template = "admin/flags/killtrigger/created.html"
    revoked_message = "Revoked trigger {obj.name}: its URL now answers 404."

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        may_fire = frozenset(
            action
            for action in KillTrigger.Action.values
            if request.user.has_perm(ACTION_PERMISSIONS[action])
        )
        return type(form.__name__, (form,), {"may_fire": may_fire})

    def issue(self, request: HttpRequest, data: dict[str, Any]) -> tuple[Any, str]:
        trigger, secret = services.trigger_create(
            actor=Actor.from_request(request),
            name=data["name"],
            flag=data["flag"],
            environment=data["environment"],
            action=data["action"],
            reason=data.get("reason", ""),
        )
        return trigger, request.build_absolute_uri(f"/api/v1/triggers/{secret}/")

    def revoke(self, actor: Actor, obj: KillTrigger) -> None:
        services.trigger_revoke(actor=actor, trigger=obj, reason=REVOKED_FROM_THE_LIST)

    def shown_once_title(self, obj: KillTrigger) -> str:
        return f"Trigger {obj.name!r} created"

    def shown_once_context(
        self, request: HttpRequest, obj: KillTrigger, secret: str
    ) -> dict[str, Any]:
        return {"trigger": selectors.trigger_get(obj.pk), "url": secret}

    @admin.action(description="Revoke selected triggers", permissions=["revoke"])
    def revoke_triggers(self, request: HttpRequest, queryset: QuerySet[KillTrigger]) -> None:
        self.revoke_selected(request, queryset)

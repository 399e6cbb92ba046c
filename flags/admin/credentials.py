"""Issued secrets in the admin: API tokens and kill-trigger URLs, shown once, then only revoked.

Both are the same idea (a secret shown once, stored as a digest, revocable, audited),
so one ``IssuedSecretAdmin`` does the work; each subclass describes its kind of secret
(``IssuedSecret``: the services that issue and revoke it, the page that shows it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from flags.admin.display import when_text
from flags.admin.forms import ApiTokenForm, KillTriggerForm
from flags.models import ApiToken, KillTrigger

REVOKED_FROM_THE_LIST = "revoked from the admin list"
# What every issued secret shows: the secret's last characters and who issued it when.
ISSUED = ("hint", "created", "created_by")
REVOKED = ("revoked", "revoked_by")
REVOKED_FILTER = ("revoked_at", admin.EmptyFieldListFilter)


@dataclass(frozen=True)
class IssuedSecret:
    """How one kind of issued secret is issued, shown once and revoked."""

    # The services (by name, in ``flags.services``), the form fields the issuing one takes,
    # and the keyword the revoking one takes the record by.
    issue_service: str
    issue_fields: tuple[str, ...]
    revoke_service: str
    record_keyword: str
    # The page showing the secret once: template, title ({obj}), the names the template
    # knows the record and the secret by, and the ``flags.selectors`` function reading
    # the record back by id. With ``url_path`` the secret is shown as a URL.
    template: str
    title: str
    context_names: tuple[str, str]
    stored_selector: str
    url_path: str | None = None
    # What the list's revoke action says (of a revoked one: nothing, when None).
    revoked_message: str = "Revoked {obj}."
    already_revoked_message: str | None = None


class IssuedSecretAdmin(ServiceErrorsAsMessages):
    """Created through a service and shown once on their own page, then only revoked;
    never edited, never deleted (the audit trail names them). Subclasses only configure."""

    create_fields: tuple[str, ...] = ()
    detail_fields: tuple[str, ...] = ()
    revoke_permission = ""
    secret: ClassVar[IssuedSecret]

    @admin.display(description="Revoked", boolean=True, ordering="revoked_at")
    def is_revoked(self, obj: Any) -> bool:
        return bool(obj.revoked)

    # Times as everywhere in the admin: UTC with the zone, and how long ago.
    @admin.display(description="Created (UTC)", ordering="created_at")
    def created(self, obj: Any) -> str:
        return when_text(obj.created_at)

    @admin.display(description="Revoked at (UTC)", ordering="revoked_at")
    def revoked(self, obj: Any) -> str:
        return when_text(obj.revoked_at)

    @admin.display(description="Last used (UTC)", ordering="last_used_at")
    def last_used(self, obj: Any) -> str:
        return when_text(obj.last_used_at)

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
        data = form.cleaned_data
        kind = self.secret
        issued, secret = getattr(services, kind.issue_service)(
            actor=Actor.from_request(request),
            reason=data.get("reason", ""),
            **{field: data.get(field) for field in kind.issue_fields},
        )
        obj.pk = obj.id = issued.pk
        obj.hint = issued.hint
        obj._state.adding = False
        if kind.url_path is not None:
            secret = request.build_absolute_uri(kind.url_path.format(secret=secret))
        # Only for the page that follows (response_add); never stored anywhere.
        request._issued_secret = secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, "_issued_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        kind = self.secret
        record_name, secret_name = kind.context_names
        stored = getattr(selectors, kind.stored_selector)(obj.pk)
        response = admin_page(
            self,
            request,
            kind.template,
            kind.title.format(obj=obj),
            **{record_name: stored, secret_name: secret},
        )
        response["Cache-Control"] = "no-store"  # the page shows a secret its only time
        return response

    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = Actor.from_request(request)
        kind = self.secret
        revoke = getattr(services, kind.revoke_service)
        for obj in queryset:
            if obj.revoked:
                if kind.already_revoked_message:
                    messages.info(request, kind.already_revoked_message.format(obj=obj))
                continue
            revoke(actor=actor, reason=REVOKED_FROM_THE_LIST, **{kind.record_keyword: obj})
            messages.success(request, kind.revoked_message.format(obj=obj))


def revoke_action(description: str) -> Callable[..., None]:
    """The list action revoking the selected secrets (for users with the revoke permission)."""

    @admin.action(description=description, permissions=["revoke"])
    def revoke(model_admin: IssuedSecretAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        model_admin.revoke_selected(request, queryset)

    return revoke


@admin.register(ApiToken)
class ApiTokenAdmin(IssuedSecretAdmin):
    """Issue tokens (the value is shown once, on its own page) and revoke them; never edit one."""

    form = ApiTokenForm
    list_display = ("name", "kind", "environment", *ISSUED, "last_used", "is_revoked")
    list_filter = ("kind", "environment", REVOKED_FILTER)
    search_fields = ("name", "hint", "created_by")
    actions = ("revoke_tokens",)
    create_fields = ("name", "kind", "environment", "reason")
    detail_fields = ("name", "kind", "environment", *ISSUED, "last_used", *REVOKED)
    revoke_permission = "flags.change_apitoken"
    secret = IssuedSecret(
        issue_service="token_issue",
        issue_fields=("kind", "name", "environment"),
        revoke_service="token_revoke",
        record_keyword="token",
        template="admin/flags/apitoken/issued.html",
        title="Token {obj.name!r} issued",
        context_names=("token", "raw"),
        stored_selector="api_token_by_id",
        revoked_message="Revoked {obj}: it stops working everywhere.",
        already_revoked_message="{obj} was already revoked.",
    )

    def form_attributes(self, request: HttpRequest) -> dict[str, Any]:
        allowed = request.user.has_perm(ISSUE_ADMIN_TOKEN)
        return {**super().form_attributes(request), "may_issue_admin_tokens": allowed}

    revoke_tokens = revoke_action("Revoke selected tokens")


@admin.register(KillTrigger)
class KillTriggerAdmin(IssuedSecretAdmin):
    """Trigger URLs for APM alerts: created (URL shown once) and revoked, never edited."""

    form = KillTriggerForm
    list_display = ("name", "flag", "environment", "action", *ISSUED, "is_revoked")
    list_filter = ("action", "environment", REVOKED_FILTER)
    search_fields = ("name", "flag__key", "hint")
    actions = ("revoke_triggers",)
    create_fields = ("name", "flag", "environment", "action", "reason")
    detail_fields = ("name", "flag", "environment", "action", "reason", *ISSUED, *REVOKED)
    revoke_permission = "flags.change_killtrigger"
    # Its secret is shown as the URL to fire, and a revoked one is passed over in silence.
    secret = IssuedSecret(
        issue_service="trigger_create",
        issue_fields=("name", "flag", "environment", "action"),
        revoke_service="trigger_revoke",
        record_keyword="trigger",
        template="admin/flags/killtrigger/created.html",
        title="Trigger {obj.name!r} created",
        context_names=("trigger", "url"),
        stored_selector="trigger_get",
        url_path="/api/v1/triggers/{secret}/",
        revoked_message="Revoked trigger {obj.name}: its URL now answers 404.",
    )

    def form_attributes(self, request: HttpRequest) -> dict[str, Any]:
        may_fire = frozenset(
            action
            for action in KillTrigger.Action.values
            if request.user.has_perm(ACTION_PERMISSIONS[action])
        )
        return {**super().form_attributes(request), "may_fire": may_fire}

    revoke_triggers = revoke_action("Revoke selected triggers")

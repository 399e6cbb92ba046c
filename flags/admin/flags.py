"""The flag admin: the list with a column per environment, the flag page with its states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.recorder import Actor
from flags import selectors, services
from flags.admin.base import (
    ACTION_PERMISSIONS,
    ServiceErrorsAsMessages,
    refusal_of,
    refuse_row,
)
from flags.admin.display import state_badge, when_text
from flags.admin.filters import ArchivedFilter, EnvironmentStateFilter, KilledFilter, TagFilter
from flags.admin.forms import FlagForm, FlagStateForm
from flags.admin.kills import EnvironmentActions
from flags.admin.overview import overview_urls
from flags.admin.rollouts import rollout_admin_urls
from flags.errors import ServiceError, ValidationFailed
from flags.models import Environment, Flag, FlagState


class FlagStateInline(admin.StackedInline):
    model = FlagState
    form = FlagStateForm
    extra = 0
    can_delete = False
    template = "admin/flags/flag/state_inline.html"
    fields = (
        "enabled",
        "targets",
        "rules",
        "default_serve",
        "prerequisites",
        "expected_version",
    )
    verbose_name = "state in environment"
    verbose_name_plural = "states per environment"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        refusal = refusal_of(request)
        if refusal is not None and refusal.row_id is not None:
            attributes = {"service_refusal": refusal.error, "refused_state_id": refusal.row_id}
            kwargs["form"] = type(self.form.__name__, (self.form,), attributes)
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagState]:
        return (
            super()
            .get_queryset(request)
            .select_related("environment", "flag")
            .order_by("environment__sort_order", "environment_id")
        )


@admin.register(Flag)
class FlagAdmin(EnvironmentActions, ServiceErrorsAsMessages):
    form = FlagForm
    change_form_template = "admin/flags/flag/change_form.html"
    change_list_template = "admin/flags/flag/change_list.html"
    search_fields = ("key", "name", "description", "owner", "tags__name")
    list_filter = (ArchivedFilter, TagFilter, EnvironmentStateFilter, KilledFilter, "type")
    list_per_page = 100
    actions = ("enable_action", "disable_action", "kill_action", "restore_action", "archive_action")
    inlines = (FlagStateInline,)

    class Media:
        css = {"all": ("flags/admin/flags.css",)}
        js = ("flags/admin/flags.js", "flags/admin/state_editor.js")

    # -- list

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return selectors.with_tags_and_states(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        columns: list[Any] = ["key_and_name"]
        may_toggle = request.user.has_perm(ACTION_PERMISSIONS["enable"])
        columns += [
            self._environment_column(e, may_toggle) for e in selectors.environments_in_order()
        ]
        return columns

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> tuple[str, ...]:
        return ("key_and_name",)

    @admin.display(description="Flag · owner · tags", ordering="key")
    def key_and_name(self, flag: Flag) -> SafeString:
        owner_and_tags = " · ".join(
            part for part in (flag.owner, ", ".join(t.name for t in flag.tags.all())) if part
        )
        return format_html(
            '<strong class="flag-key">{}</strong><span class="flag-name" title="{}">{}</span>'
            '<span class="flag-owner" title="{}">{}</span>',
            flag.key,
            flag.description or flag.name,
            flag.name if flag.type == Flag.Type.BOOLEAN else f"{flag.name} ({flag.type})",
            owner_and_tags,
            owner_and_tags,
        )

    @staticmethod
    def _environment_column(
        environment: Environment, may_toggle: bool
    ) -> Callable[[Flag], SafeString]:
        def column(flag: Flag) -> SafeString:
            state = next((s for s in flag.states.all() if s.environment_id == environment.id), None)
            if state is None:
                return format_html("{}", "—")
            html = state_badge(flag, state)
            if state.killed:
                detail = (
                    f"by {state.killed_by} · {when_text(state.killed_at)} · {state.kill_reason}"
                )
                html += format_html(
                    '<span class="flag-killed kill-detail" title="{}">{}</span>', detail, detail
                )
            elif may_toggle and not flag.archived:
                action = "disable" if state.enabled else "enable"
                html += format_html(
                    '<button type="button" class="state-toggle" data-url="{}" data-action="{}" '
                    'data-flag="{}" data-environment="{}" data-environment-name="{}">{}</button>',
                    reverse("admin:flags_flag_environment_action", args=[flag.pk, action]),
                    action,
                    flag.key,
                    environment.key,
                    environment.name,
                    "Turn off…" if state.enabled else "Turn on…",
                )
            return format_html('<div class="env-cell">{}</div>', html)

        column.short_description = environment.name  # type: ignore[attr-defined]
        column.__name__ = f"env_{environment.key}"
        return column

    @admin.display(description="Tags")
    def tag_list(self, flag: Flag) -> str:
        return ", ".join(t.name for t in flag.tags.all())

    # -- edit

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        return ("key", "type", "archived") if obj else ()

    @admin.display(description="Archived (UTC)")
    def archived(self, flag: Flag) -> str:
        return when_text(flag.archived_at) if flag.archived_at else "—"

    def get_fieldsets(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        main = [
            "key",
            "name",
            "description",
            "type",
            "variants",
            "off_variant",
            "tag_names",
            "owner",
            "client_visible",
        ]
        if obj:
            main.append("archived")
        return [(None, {"fields": main}), ("Audit", {"fields": ["reason"]})]

    def get_inlines(
        self, request: HttpRequest, obj: Flag | None
    ) -> tuple[type[admin.options.InlineModelAdmin], ...]:
        return (FlagStateInline,) if obj else ()

    def save_model(self, request: HttpRequest, obj: Flag, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        actor = Actor.from_request(request)
        if not change:
            flag = services.flag_create(
                actor=actor,
                key=data["key"],
                type=data["type"],
                variants=data["variants"],
                off_variant=data["off_variant"],
                name=data.get("name", ""),
                description=data.get("description", ""),
                tags=data["tag_names"],
                owner=data.get("owner", ""),
                client_visible=data.get("client_visible", False),
                reason=data.get("reason", ""),
            )
            obj.pk = obj.id = flag.pk
            obj._state.adding = False
            return
        fields = ("name", "description", "variants", "off_variant", "owner", "client_visible")
        changes: dict[str, Any] = {f: data[f] for f in fields if f in form.changed_data}
        if "tag_names" in form.changed_data:
            changes["tags"] = data["tag_names"]
        if changes:
            # The flag as stored: ``obj`` already carries the form's values.
            services.flag_update(
                actor=actor,
                flag=selectors.stored_flag(obj.pk),
                reason=data.get("reason", ""),
                **changes,
            )

    def save_related(
        self, request: HttpRequest, form: forms.Form, formsets: Any, change: bool
    ) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(
        self, request: HttpRequest, form: forms.Form, formset: Any, change: bool
    ) -> None:
        actor = Actor.from_request(request)
        reason = form.cleaned_data.get("reason", "")
        # The admin's change message reads these, as if formset.save() had run.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for state_form in formset.forms:
            changed = [f for f in state_form.changed_data if f in services.STATE_FIELDS]
            if not changed:
                continue
            state = state_form.instance
            formset.changed_objects.append((state, changed))
            try:
                services.flag_state_update(
                    actor=actor,
                    flag=state.flag,
                    environment=state.environment,
                    reason=reason,
                    expected_version=state_form.cleaned_data.get("expected_version"),
                    **{f: state_form.cleaned_data[f] for f in changed},
                )
            except ValidationFailed:
                refuse_row(request, state.pk)  # shown again on this environment's form
                raise

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # flags are archived, never deleted: the audit trail refers to them

    # -- pages of its own: environment actions (flags.admin.kills) and rollout plans

    def get_urls(self) -> list[Any]:
        custom = [
            *self.environment_action_urls(),
            *rollout_admin_urls(self),
            *overview_urls(self),
        ]
        return custom + super().get_urls()

    def has_archive_permission(self, request: HttpRequest) -> bool:
        # Archiving is how flags are deleted (the API's DELETE): flags.delete_flag.
        return request.user.has_perm("flags.delete_flag")

    @admin.action(description="Archive selected flags", permissions=["archive"])
    def archive_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        actor = Actor.from_request(request)
        for flag in queryset:
            try:
                services.flag_archive(actor=actor, flag=flag, reason="archived from the admin list")
            except ServiceError as error:
                messages.error(request, f"{flag.key}: {error.message}")
            else:
                messages.success(request, f"Archived {flag.key}.")

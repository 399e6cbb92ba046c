"""Django admin for engineers: flags with their per-environment states, kills, segments.

Every save and action calls the services (audited, actor = the staff user); forms
validate through the engine's validator first so errors show on the field.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.recorder import Actor
from flags import propagation, selectors, services, validation
from flags.admin_rollouts import rollout_admin_urls
from flags.errors import ServiceError
from flags.models import ApiToken, Environment, Flag, FlagState, KillTrigger, Segment
from flags.selectors import state_summary

JSON_WIDGET = forms.Textarea(
    attrs={"rows": 6, "cols": 80, "class": "vLargeTextField", "spellcheck": "false"}
)


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented."""

    widget = JSON_WIDGET

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def _field_of(path: str, fields: Sequence[str]) -> str | None:
    """Map a validator path like ``rules[0].serve.variant`` to the form field ``rules``."""
    head = path.split("[", 1)[0].split(".", 1)[0]
    return head if head in fields else None


def _add_errors(form: forms.BaseForm, errors: dict[str, str]) -> None:
    for path, message in errors.items():
        field = _field_of(path, list(form.fields))
        form.add_error(field, f"{path}: {message}" if field != path else message)


class ServiceErrorsAsMessages(admin.ModelAdmin):
    """A service refusal during save rolls the whole admin save back; say why and go back."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:
            messages.error(request, f"Nothing was saved: {error.message}")
            return HttpResponseRedirect(request.get_full_path())


# --- flags -----------------------------------------------------------------------------


class FlagForm(forms.ModelForm):
    variants = PrettyJSONField(
        required=False,
        help_text='Variant names and values, e.g. {"control": "blue", "treatment": "green"}. '
        'Boolean flags always have {"on": true, "off": false}.',
    )
    tag_names = forms.CharField(
        required=False, label="Tags", help_text="Comma-separated, e.g. payments, kill-switch"
    )
    reason = forms.CharField(
        required=False, max_length=services.MAX_REASON, help_text="Why (goes on the audit trail)."
    )

    class Meta:
        model = Flag
        fields = (
            "key",
            "name",
            "description",
            "type",
            "variants",
            "off_variant",
            "owner",
            "client_visible",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tag_names"].initial = ", ".join(t.name for t in self.instance.tags.all())
        else:
            self.fields["variants"].initial = {"on": True, "off": False}
            self.fields["off_variant"].initial = "off"

    def clean_tag_names(self) -> list[str]:
        raw = self.cleaned_data.get("tag_names") or ""
        return sorted({t.strip().lower() for t in raw.split(",") if t.strip()})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        flag_type = data.get("type") or self.instance.type
        variants = data.get("variants") or (
            {"on": True, "off": False} if flag_type == "boolean" else None
        )
        if variants is None:
            self.add_error("variants", "Give the variants of a non-boolean flag.")
            return data
        data["variants"] = variants
        _add_errors(self, validation.check_variants(flag_type, variants, data.get("off_variant")))
        return data


class FlagStateForm(forms.ModelForm):
    targets = PrettyJSONField(required=False, help_text='[{"variant": "on", "values": ["user-1"]}]')
    rules = PrettyJSONField(
        required=False,
        help_text='[{"id": "de", "conditions": [{"attribute": "country", "operator": "equals", '
        '"value": "DE"}], "serve": {"variant": "on"}}]',
    )
    default_serve = PrettyJSONField(
        help_text='{"variant": "on"} or {"split": [{"variant": "on", "weight": 2500}, '
        '{"variant": "off", "weight": 7500}]} (relative weights: [1, 1] is 50/50)'
    )
    prerequisites = PrettyJSONField(
        required=False, help_text='[{"flag": "payments-api", "variant": "on"}]'
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = FlagState
        fields = ("enabled", "targets", "rules", "default_serve", "prerequisites")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["expected_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        state = self.instance
        for name in ("targets", "rules", "prerequisites"):
            if data.get(name) in (None, ""):
                data[name] = []
        if not state.pk or self.errors:
            return data
        expected = data.get("expected_version")
        if expected is not None and expected != FlagState.objects.get(pk=state.pk).version:
            raise forms.ValidationError(
                "Someone changed this environment's state since you opened the page. "
                "Reload it and apply your change again."
            )
        environment = state.environment
        graph = selectors.prerequisite_graph(environment, exclude_flag_id=state.flag_id)
        errors = validation.check_state(
            flag_key=state.flag.key,
            variants=state.flag.variants,
            state={f: data.get(f) for f in services.STATE_FIELDS},
            flags=graph,
            segment_keys=selectors.segment_keys(environment),
        )
        _add_errors(self, errors)
        return data


class FlagStateInline(admin.StackedInline):
    model = FlagState
    form = FlagStateForm
    extra = 0
    can_delete = False
    fields = (
        "environment_label",
        "kill_status",
        "enabled",
        "targets",
        "rules",
        "default_serve",
        "prerequisites",
        "expected_version",
    )
    readonly_fields = ("environment_label", "kill_status")
    verbose_name = "state in environment"
    verbose_name_plural = "states per environment"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagState]:
        return (
            super()
            .get_queryset(request)
            .select_related("environment", "flag")
            .order_by("environment__sort_order", "environment_id")
        )

    @admin.display(description="Environment")
    def environment_label(self, state: FlagState) -> str:
        return f"{state.environment.name} ({state.environment.key}) — v{state.version}"

    @admin.display(description="Kill switch")
    def kill_status(self, state: FlagState) -> SafeString:
        if state.killed:
            return format_html(
                '<strong style="color:#ba2121">KILLED</strong> by {} at {}: {}',
                state.killed_by,
                state.killed_at,
                state.kill_reason,
            )
        return format_html('<span style="color:#447e9b">{}</span>', "live")


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from flags.models import Tag

        return [(t.name, t.name) for t in Tag.objects.all()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        return queryset.filter(tags__name=self.value()) if self.value() else queryset


class EnvironmentStateFilter(admin.SimpleListFilter):
    title = "state in environment"
    parameter_name = "env_state"
    STATES = ("on", "off", "rollout", "killed")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (f"{e.key}:{s}", f"{e.key}: {s}")
            for e in Environment.objects.all()
            for s in self.STATES
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        value = self.value() or ""
        if ":" not in value:
            return queryset
        env_key, wanted = value.rsplit(":", 1)
        states = FlagState.objects.filter(environment__key=env_key)
        if wanted == "killed":
            states = states.filter(killed_at__isnull=False)
        elif wanted == "off":
            states = states.filter(killed_at__isnull=True, enabled=False)
        elif wanted == "on":
            states = states.filter(killed_at__isnull=True, enabled=True)
        elif wanted == "rollout":
            ids = [
                s.pk
                for s in states.filter(killed_at__isnull=True, enabled=True)
                if "split" in (s.default_serve or {})
                or any("split" in (r.get("serve") or {}) for r in s.rules or ())
            ]
            states = FlagState.objects.filter(pk__in=ids)
        return queryset.filter(states__in=states).distinct()


class KilledFilter(admin.SimpleListFilter):
    title = "killed"
    parameter_name = "killed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Killed somewhere"), ("no", "Not killed anywhere")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        killed = FlagState.objects.filter(killed_at__isnull=False).values("flag_id")
        if self.value() == "yes":
            return queryset.filter(id__in=killed)
        if self.value() == "no":
            return queryset.exclude(id__in=killed)
        return queryset


class ArchivedFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Live"), ("yes", "Archived"), ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "All" and choice.get("query_string", "").find("archived") == -1:
                continue  # the built-in "All" means live here; "all" is offered explicitly
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(archived_at__isnull=True)


class EnvironmentActionForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), to_field_name="key")
    reason = forms.CharField(
        max_length=services.MAX_KILL_REASON, widget=forms.Textarea(attrs={"rows": 3})
    )
    confirm = forms.BooleanField(label="Yes, do it now")


# The permission each environment action needs, as on the API (flags/api/permissions.py).
ACTION_PERMISSIONS = {
    "kill": "flags.kill_flag",
    "restore": "flags.restore_flag",
    "enable": "flags.change_flagstate",
    "disable": "flags.change_flagstate",
}
ISSUE_ADMIN_TOKEN = "flags.issue_admin_token"


def lacks_permission(request: HttpRequest, permission: str) -> str | None:
    """A message naming ``permission`` when the user lacks it, else None."""
    if request.user.has_perm(permission):
        return None
    return (
        f"You lack the permission {permission}; ask an administrator to grant it "
        "(admin → Users → permissions)."
    )


ACTION_LABELS = {
    "kill": (
        "Kill",
        "serve the off variant to everyone in the environment, now. Rules stay as they are.",
    ),
    "restore": ("Restore", "lift the kill: the flag serves what its rules served before the kill."),
    "enable": (
        "Enable",
        "turn the flag on in the environment (its rules and default serve apply).",
    ),
    "disable": ("Disable", "turn the flag off in the environment (off variant for everyone)."),
}


def _run_action(
    request: HttpRequest, action: str, flags: Sequence[Flag], environment: Environment, reason: str
) -> tuple[int, int]:
    actor = Actor.from_request(request)
    changed = unchanged = 0
    for flag in flags:
        if action == "kill":
            outcome = services.flag_kill(
                actor=actor, flag=flag, environment=environment, reason=reason
            )
            did = outcome.changed
        elif action == "restore":
            outcome = services.flag_restore(
                actor=actor, flag=flag, environment=environment, reason=reason
            )
            did = outcome.changed
        else:
            before = FlagState.objects.get(flag=flag, environment=environment).version
            state = services.flag_state_update(
                actor=actor,
                flag=flag,
                environment=environment,
                reason=reason,
                enabled=(action == "enable"),
            )
            did = state.version != before
        changed += did
        unchanged += not did
    return changed, unchanged


@admin.register(Flag)
class FlagAdmin(ServiceErrorsAsMessages):
    form = FlagForm
    change_form_template = "admin/flags/flag/change_form.html"
    change_list_template = "admin/flags/flag/change_list.html"
    search_fields = ("key", "name", "description", "owner", "tags__name")
    list_filter = (ArchivedFilter, TagFilter, EnvironmentStateFilter, KilledFilter, "type")
    list_per_page = 100
    actions = ("enable_action", "disable_action", "kill_action", "restore_action", "archive_action")
    inlines = (FlagStateInline,)

    # -- list

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                "tags",
                Prefetch("states", queryset=FlagState.objects.select_related("environment")),
            )
        )

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        columns: list[Any] = ["key", "type", "tag_list", "owner"]
        columns += [self._environment_column(e) for e in Environment.objects.all()]
        return columns

    @staticmethod
    def _environment_column(environment: Environment) -> Callable[[Flag], SafeString]:
        def column(flag: Flag) -> SafeString:
            state = next((s for s in flag.states.all() if s.environment_id == environment.id), None)
            if state is None:
                return format_html("{}", "—")
            label = state_summary(flag, state)
            if state.killed:
                return format_html(
                    '<span class="flag-killed" title="{}" style="background:#ba2121;color:#fff;'
                    'padding:2px 6px;border-radius:3px;font-weight:bold">KILLED</span>'
                    '<div style="color:#ba2121;font-size:11px">by {} · {} UTC<br>{}</div>',
                    state.kill_reason,
                    state.killed_by,
                    f"{state.killed_at:%Y-%m-%d %H:%M}",
                    state.kill_reason[:80],
                )
            color = "#666" if not state.enabled else "#2e7d32"
            return format_html('<span style="color:{}">{}</span>', color, label)

        column.short_description = environment.name  # type: ignore[attr-defined]
        column.__name__ = f"env_{environment.key}"
        return column

    @admin.display(description="Tags")
    def tag_list(self, flag: Flag) -> str:
        return ", ".join(t.name for t in flag.tags.all())

    # -- edit

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        return ("key", "type", "archived_at") if obj else ()

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
            main.append("archived_at")
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
            services.flag_update(
                actor=actor,
                flag=Flag.objects.get(pk=obj.pk),
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
            services.flag_state_update(
                actor=actor,
                flag=state.flag,
                environment=state.environment,
                reason=reason,
                expected_version=state_form.cleaned_data.get("expected_version"),
                **{f: state_form.cleaned_data[f] for f in changed},
            )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # flags are archived, never deleted: the audit trail refers to them

    # -- kill / restore / enable / disable, from the list and from the flag page

    def get_urls(self) -> list[Any]:
        custom = [
            re_path(
                r"^(?P<flag_id>\d+)/(?P<action>kill|restore|enable|disable)/$",
                self.admin_site.admin_view(self.environment_action_view),
                name="flags_flag_environment_action",
            ),
            re_path(
                r"^active-kills/$",
                self.admin_site.admin_view(self.active_kills_view),
                name="flags_flag_active_kills",
            ),
            *rollout_admin_urls(self),
        ]
        return custom + super().get_urls()

    def active_kills_view(self, request: HttpRequest) -> HttpResponse:
        """Every flag killed anywhere: who, when, why, for how long, with a restore button."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        kills = (
            FlagState.objects.filter(killed_at__isnull=False, flag__archived_at__isnull=True)
            .select_related("flag", "environment")
            .order_by("-killed_at")
        )
        # Is each kill live at every edge process? (its environment's current version)
        statuses: dict[str, propagation.Confirmation] = {}
        rows = []
        for state in kills:
            environment = state.environment
            if environment.key not in statuses:
                statuses[environment.key] = propagation.environment_status(
                    environment.key, environment.lineage, environment.version
                )
            rows.append((state, statuses[environment.key]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Active kills",
            "kills": rows,
        }
        return TemplateResponse(request, "admin/flags/flag/active_kills.html", context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        active = FlagState.objects.filter(
            killed_at__isnull=False, flag__archived_at__isnull=True
        ).count()
        return super().changelist_view(
            request, {**(extra_context or {}), "active_kill_count": active}
        )

    def environment_action_view(
        self, request: HttpRequest, flag_id: str, action: str
    ) -> HttpResponse:
        flag = get_object_or_404(Flag, pk=flag_id)
        return self._environment_action(request, action, [flag], single=True)

    def _environment_action(
        self, request: HttpRequest, action: str, flags: Sequence[Flag], *, single: bool = False
    ) -> HttpResponse:
        refusal = lacks_permission(request, ACTION_PERMISSIONS[action])
        if refusal:
            messages.error(request, f"Nothing was changed: {refusal}")
            if single:
                return HttpResponseRedirect(reverse("admin:flags_flag_change", args=[flags[0].pk]))
            return HttpResponseRedirect(reverse("admin:flags_flag_changelist"))
        form = EnvironmentActionForm(
            request.POST if "confirm" in request.POST else None,
            initial={"environment": request.GET.get("environment")},
        )
        if form.is_valid():
            environment = form.cleaned_data["environment"]
            started_at = time.time()
            try:
                changed, unchanged = _run_action(
                    request, action, flags, environment, form.cleaned_data["reason"]
                )
            except ServiceError as error:
                messages.error(request, f"Nothing was changed: {error.message}")
            else:
                verb = ACTION_LABELS[action][0].lower()
                text = f"{verb}: {changed} flag(s) changed in {environment.key}"
                if unchanged:
                    text += f", {unchanged} already so (nothing written)"
                version = Environment.objects.get(pk=environment.pk).version
                text += f". {environment.key} is now at version {version}"
                report = messages.success
                if action in ("kill", "restore"):
                    confirmation = propagation.change_confirm(
                        environment.key, environment.lineage, version, started_at=started_at
                    )
                    text += f": {confirmation.text()}"
                    report = messages.success if confirmation.complete else messages.warning
                report(request, text + ".")
            if single:
                return HttpResponseRedirect(reverse("admin:flags_flag_change", args=[flags[0].pk]))
            return HttpResponseRedirect(reverse("admin:flags_flag_changelist"))
        title, explanation = ACTION_LABELS[action]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{title} {flags[0].key if len(flags) == 1 else f'{len(flags)} flags'}",
            "action": action,
            "action_label": title,
            "explanation": explanation,
            "flags": flags,
            "form": form,
            "single": single,
            "danger": action in ("kill", "disable"),
        }
        return TemplateResponse(request, "admin/flags/flag/environment_action.html", context)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Flag], action: str) -> HttpResponse:
        return self._environment_action(
            request, action, list(queryset.filter(archived_at__isnull=True))
        )

    # Which actions a user is offered (``permissions=[...]`` below); the views check again.
    def has_kill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["kill"])

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["restore"])

    def has_change_state_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["enable"])

    def has_archive_permission(self, request: HttpRequest) -> bool:
        # Archiving is how flags are deleted (the API's DELETE): flags.delete_flag.
        return request.user.has_perm("flags.delete_flag")

    @admin.action(description="Enable in an environment…", permissions=["change_state"])
    def enable_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "enable")

    @admin.action(description="Disable in an environment…", permissions=["change_state"])
    def disable_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "disable")

    @admin.action(description="KILL in an environment…", permissions=["kill"])
    def kill_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "kill")

    @admin.action(description="Restore (lift kill) in an environment…", permissions=["restore"])
    def restore_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "restore")

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


# --- environments and segments -----------------------------------------------------------


class EnvironmentForm(forms.ModelForm):
    copy_from = forms.ModelChoiceField(
        queryset=Environment.objects.all(),
        required=False,
        help_text="Start with the flag states and segments of this environment (new environments only).",
    )

    class Meta:
        model = Environment
        fields = ("key", "name", "description")


@admin.register(Environment)
class EnvironmentAdmin(ServiceErrorsAsMessages):
    form = EnvironmentForm
    list_display = ("key", "name", "version", "flag_count", "killed_count")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Environment]:
        from django.db.models import Count, Q

        return (
            super()
            .get_queryset(request)
            .annotate(
                n_flags=Count("flag_states", filter=Q(flag_states__flag__archived_at__isnull=True)),
                n_killed=Count("flag_states", filter=Q(flag_states__killed_at__isnull=False)),
            )
        )

    @admin.display(description="Flags")
    def flag_count(self, environment: Any) -> int:
        return int(environment.n_flags)

    @admin.display(description="Killed")
    def killed_count(self, environment: Any) -> int:
        return int(environment.n_killed)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Environment | None = None
    ) -> tuple[str, ...]:
        return ("key", "version") if obj else ("version",)

    def get_fields(self, request: HttpRequest, obj: Environment | None = None) -> tuple[str, ...]:
        return (
            ("key", "name", "description", "version")
            if obj
            else ("key", "name", "description", "copy_from")
        )

    def save_model(
        self, request: HttpRequest, obj: Environment, form: forms.Form, change: bool
    ) -> None:
        actor = Actor.from_request(request)
        data = form.cleaned_data
        if change:
            services.environment_update(
                actor=actor, environment=obj, name=data["name"], description=data["description"]
            )
            return
        environment = services.environment_create(
            actor=actor,
            key=data["key"],
            name=data["name"],
            description=data["description"],
            copy_from=data.get("copy_from"),
        )
        obj.pk = obj.id = environment.pk
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SegmentForm(forms.ModelForm):
    included = PrettyJSONField(
        required=False, help_text='Targeting keys always in: ["user-1", "user-2"]'
    )
    excluded = PrettyJSONField(
        required=False, help_text="Targeting keys never in (wins over included and rules)."
    )
    rules = PrettyJSONField(
        required=False,
        help_text='Any rule matching puts a context in: [{"conditions": [{"attribute": "email", '
        '"operator": "ends_with", "value": "@acme.com"}]}]',
    )

    class Meta:
        model = Segment
        fields = ("environment", "key", "name", "description", "included", "excluded", "rules")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("included", "excluded", "rules"):
            if data.get(name) in (None, ""):
                data[name] = []
        if not self.errors:
            _add_errors(
                self,
                validation.check_segment({k: data[k] for k in ("included", "excluded", "rules")}),
            )
        return data


@admin.register(Segment)
class SegmentAdmin(ServiceErrorsAsMessages):
    form = SegmentForm
    list_display = ("key", "environment", "name", "updated_at")
    list_filter = ("environment",)
    search_fields = ("key", "name", "description")
    actions = ("delete_segments",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Segment | None = None
    ) -> tuple[str, ...]:
        return ("environment", "key") if obj else ()

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Segment, form: forms.Form, change: bool
    ) -> None:
        actor = Actor.from_request(request)
        data = form.cleaned_data
        fields = ("name", "description", "included", "excluded", "rules")
        if change:
            services.segment_update(
                actor=actor,
                segment=Segment.objects.get(pk=obj.pk),
                **{f: data[f] for f in fields if f in form.changed_data},
            )
            return
        segment = services.segment_create(
            actor=actor,
            environment=data["environment"],
            key=data["key"],
            **{f: data[f] for f in fields},
        )
        obj.pk = obj.id = segment.pk
        obj._state.adding = False

    @admin.action(description="Delete selected segments (if no flag uses them)")
    def delete_segments(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        actor = Actor.from_request(request)
        for segment in queryset:
            try:
                services.segment_delete(actor=actor, segment=segment)
            except ServiceError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"Deleted segment {segment.key}.")


# --- API tokens --------------------------------------------------------------------------

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


class IssuedOnceAdmin(ServiceErrorsAsMessages):
    """Credentials (API tokens, trigger URLs): created through a service and shown once on
    their own page, then only revoked; never edited, never deleted (the audit trail names them).
    """

    create_fields: tuple[str, ...] = ()
    detail_fields: tuple[str, ...] = ()
    revoke_permission = ""

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

    def shown_once(
        self, request: HttpRequest, template: str, title: str, **context: Any
    ) -> HttpResponse:
        """The page that shows a secret its only time; never cached."""
        page = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            **context,
        }
        response = TemplateResponse(request, template, page)
        response["Cache-Control"] = "no-store"
        return response


class ApiTokenForm(forms.ModelForm):
    reason = forms.CharField(
        required=False, max_length=services.MAX_REASON, help_text="Why (goes on the audit trail)."
    )

    class Meta:
        model = ApiToken
        fields = ("name", "kind", "environment")

    # Set per request by ApiTokenAdmin.get_form: may this user mint admin tokens?
    may_issue_admin_tokens = False

    def clean_kind(self) -> str:
        kind = str(self.cleaned_data["kind"])
        if kind == ApiToken.Kind.ADMIN and not self.may_issue_admin_tokens:
            raise forms.ValidationError(
                f"An admin token has full access; issuing one needs the permission "
                f"{ISSUE_ADMIN_TOKEN} (or a superuser). Choose another kind, or ask an "
                "administrator.",
                code="permission",
            )
        return kind


@admin.register(ApiToken)
class ApiTokenAdmin(IssuedOnceAdmin):
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

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        allowed = request.user.has_perm(ISSUE_ADMIN_TOKEN)
        return type(form.__name__, (form,), {"may_issue_admin_tokens": allowed})

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: forms.Form, change: bool
    ) -> None:
        data = form.cleaned_data
        token, raw = services.token_issue(
            actor=Actor.from_request(request),
            kind=data["kind"],
            name=data["name"],
            environment=data.get("environment"),
            reason=data.get("reason", ""),
        )
        obj.pk = obj.id = token.pk
        obj.hint = token.hint
        obj._state.adding = False
        # Only for the page that follows (response_add); never stored anywhere.
        request._issued_token = raw  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw = getattr(request, "_issued_token", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        return self.shown_once(
            request,
            "admin/flags/apitoken/issued.html",
            f"Token {obj.name!r} issued",
            token=ApiToken.objects.select_related("environment").get(pk=obj.pk),
            raw=raw,
        )

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        actor = Actor.from_request(request)
        for token in queryset:
            if token.revoked:
                messages.info(request, f"{token} was already revoked.")
                continue
            services.token_revoke(actor=actor, token=token, reason="revoked from the admin list")
            messages.success(request, f"Revoked {token}: it stops working everywhere.")


# --- kill triggers -------------------------------------------------------------------------


class KillTriggerForm(forms.ModelForm):
    reason = forms.CharField(
        required=False, max_length=services.MAX_REASON, help_text="Why (goes on the audit trail)."
    )

    class Meta:
        model = KillTrigger
        fields = ("name", "flag", "environment", "action")

    # Set per request by KillTriggerAdmin.get_form: the user's kill/restore permissions.
    may_fire: frozenset[str] = frozenset()

    def clean_action(self) -> str:
        action = str(self.cleaned_data["action"])
        if action not in self.may_fire:
            raise forms.ValidationError(
                f"A trigger URL {action}s its flag for whoever holds it; creating one needs "
                f"the permission {ACTION_PERMISSIONS[action]}.",
                code="permission",
            )
        return action


@admin.register(KillTrigger)
class KillTriggerAdmin(IssuedOnceAdmin):
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

    def save_model(
        self, request: HttpRequest, obj: KillTrigger, form: forms.Form, change: bool
    ) -> None:
        data = form.cleaned_data
        trigger, secret = services.trigger_create(
            actor=Actor.from_request(request),
            name=data["name"],
            flag=data["flag"],
            environment=data["environment"],
            action=data["action"],
            reason=data.get("reason", ""),
        )
        obj.pk = obj.id = trigger.pk
        obj._state.adding = False
        request._trigger_url = request.build_absolute_uri(f"/api/v1/triggers/{secret}/")  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: KillTrigger, post_url_continue: str | None = None
    ) -> HttpResponse:
        url = getattr(request, "_trigger_url", None)
        if url is None:
            return super().response_add(request, obj, post_url_continue)
        return self.shown_once(
            request,
            "admin/flags/killtrigger/created.html",
            f"Trigger {obj.name!r} created",
            trigger=KillTrigger.objects.select_related("flag", "environment").get(pk=obj.pk),
            url=url,
        )

    @admin.action(description="Revoke selected triggers", permissions=["revoke"])
    def revoke_triggers(self, request: HttpRequest, queryset: QuerySet[KillTrigger]) -> None:
        actor = Actor.from_request(request)
        for trigger in queryset:
            if not trigger.revoked:
                services.trigger_revoke(
                    actor=actor, trigger=trigger, reason="revoked from the admin list"
                )
                messages.success(
                    request, f"Revoked trigger {trigger.name}: its URL now answers 404."
                )

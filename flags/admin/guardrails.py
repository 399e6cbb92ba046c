"""Guardrails in the Django admin: create and change (through ``flags.guardrails``), evaluate
now without acting, enable and disable, and each guardrail's latest checks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from audit.recorder import Actor
from flags import guardrails, selectors
from flags.admin.base import ServiceErrorsAsMessages
from flags.errors import ServiceError
from flags.guardrails.writes import GUARDRAIL_FIELDS
from flags.models import Guardrail


class GuardrailForm(forms.ModelForm):
    reason = forms.CharField(required=False, max_length=2000, help_text="Goes on the audit trail.")

    class Meta:
        model = Guardrail
        fields = (
            "flag",
            "environment",
            "name",
            "query",
            "comparison",
            "threshold",
            "for_seconds",
            "action",
            "watch_seconds",
            "prometheus_url",
            "enabled",
        )
        widgets = {"query": forms.Textarea(attrs={"rows": 3, "cols": 80})}


@admin.register(Guardrail)
class GuardrailAdmin(ServiceErrorsAsMessages):
    form = GuardrailForm
    list_display = (
        "name",
        "flag",
        "environment",
        "comparison_label",
        "action",
        "enabled",
        "health",
        "last_value",
        "last_checked_at",
    )
    list_filter = ("environment", "action", "enabled", "health")
    search_fields = ("name", "flag__key", "query")
    actions = ("evaluate_now", "enable", "disable")

    @admin.display(description="breach when")
    def comparison_label(self, guardrail: Guardrail) -> str:
        symbol = Guardrail.Comparison(guardrail.comparison).label
        held = f" for {guardrail.for_seconds}s" if guardrail.for_seconds else ""
        return f"value {symbol} {guardrail.threshold:g}{held}"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("flag", "environment", "name", "health", "last_message", "recent_checks")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields: tuple[str, ...] = (*GuardrailForm.Meta.fields, "reason")
        if obj is None:
            return fields
        return (*fields, "health", "last_message", "recent_checks")

    @admin.display(description="latest checks")
    def recent_checks(self, guardrail: Guardrail) -> str:
        checks = selectors.guardrail_checks(guardrail)
        if not checks:
            return "not checked yet (it is checked while its flag has a running plan, or was changed lately)"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{check.checked_at:%Y-%m-%d %H:%M:%S}",
                    check.health,
                    "" if check.value is None else f"{check.value:g}",
                    check.message,
                    check.acted,
                )
                for check in checks
            ),
        )
        return format_html(
            "<table><tr><th>checked</th><th>health</th><th>value</th><th>message</th>"
            "<th>acted</th></tr>{}</table>",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Guardrail, form: Any, change: bool) -> None:
        actor = Actor.from_request(request)
        reason = form.cleaned_data.get("reason", "")
        values = {field: form.cleaned_data[field] for field in GUARDRAIL_FIELDS}
        if not change:
            created = guardrails.guardrail_create(
                actor=actor,
                flag=form.cleaned_data["flag"],
                environment=form.cleaned_data["environment"],
                name=form.cleaned_data["name"],
                enabled=form.cleaned_data["enabled"],
                reason=reason,
                **values,
            )
            obj.pk, obj._state.adding = created.pk, False
            return
        changed = {field: values[field] for field in GUARDRAIL_FIELDS if field in form.changed_data}
        if "enabled" in form.changed_data:
            changed["enabled"] = form.cleaned_data["enabled"]
        guardrails.guardrail_update(actor=actor, guardrail=obj, reason=reason, **changed)

    def delete_model(self, request: HttpRequest, obj: Guardrail) -> None:
        guardrails.guardrail_delete(actor=Actor.from_request(request), guardrail=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Guardrail]) -> None:
        for guardrail in queryset:
            self.delete_model(request, guardrail)

    @admin.action(description="Evaluate now (shows the value, acts on nothing)")
    def evaluate_now(self, request: HttpRequest, queryset: QuerySet[Guardrail]) -> None:
        for guardrail in queryset.select_related("flag", "environment"):
            reading = guardrails.guardrail_read(guardrail)
            level = messages.WARNING if reading.health != "ok" else messages.SUCCESS
            would = (
                f"; held for {guardrail.for_seconds}s it would {guardrail.action}"
                if reading.breaching
                else ""
            )
            self.message_user(
                request,
                f"{guardrail.name} ({guardrail.flag.key}@{guardrail.environment.key}): "
                f"{reading.health}: {reading.message}{would}",
                level,
            )

    def _switch(self, request: HttpRequest, queryset: QuerySet[Guardrail], enabled: bool) -> None:
        actor = Actor.from_request(request)
        for guardrail in queryset:
            try:
                guardrails.guardrail_update(actor=actor, guardrail=guardrail, enabled=enabled)
            except ServiceError as error:
                self.message_user(request, f"{guardrail.name}: {error.message}", messages.ERROR)
        self.message_user(
            request, f"{'Enabled' if enabled else 'Disabled'} {queryset.count()} guardrail(s)."
        )

    @admin.action(description="Enable selected guardrails", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Guardrail]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Disable selected guardrails", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Guardrail]) -> None:
        self._switch(request, queryset, False)

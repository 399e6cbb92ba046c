"""The environment admin: create (optionally copying another), rename; never delete."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.recorder import Actor
from flags import selectors, services
from flags.admin.base import ServiceErrorsAsMessages
from flags.admin.forms import EnvironmentForm
from flags.models import Environment


@admin.register(Environment)
class EnvironmentAdmin(ServiceErrorsAsMessages):
    form = EnvironmentForm
    list_display = ("key", "name", "version", "flag_count", "killed_count")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Environment]:
        return selectors.with_flag_counts(super().get_queryset(request))

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

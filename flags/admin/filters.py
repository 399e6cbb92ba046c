"""The flag list's filters: archived, tag, state in an environment, killed anywhere."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from flags import selectors
from flags.models import Flag


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in selectors.tag_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        return queryset.filter(tags__name=self.value()) if self.value() else queryset


class EnvironmentStateFilter(admin.SimpleListFilter):
    title = "state in environment"
    parameter_name = "env_state"
    STATES = ("on", "off", "rollout", "killed")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (f"{e.key}:{s}", f"{e.key}: {s}")
            for e in selectors.environments_in_order()
            for s in self.STATES
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        value = self.value() or ""
        if ":" not in value:
            return queryset
        environment_key, wanted = value.rsplit(":", 1)
        states = selectors.states_serving(environment_key, wanted)
        return queryset.filter(states__in=states).distinct()


class KilledFilter(admin.SimpleListFilter):
    title = "killed"
    parameter_name = "killed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Killed somewhere"), ("no", "Not killed anywhere")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        killed = selectors.flag_ids_killed_somewhere()
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

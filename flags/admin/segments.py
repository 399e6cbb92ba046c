"""The segment admin: reusable audiences per environment; deleted only when no flag uses them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.recorder import Actor
from flags import selectors, services
from flags.admin.base import ServiceErrorsAsMessages
from flags.admin.display import when_text
from flags.admin.forms import SegmentForm
from flags.errors import ServiceError
from flags.models import Segment


@admin.register(Segment)
class SegmentAdmin(ServiceErrorsAsMessages):
    form = SegmentForm
    list_display = ("key", "environment", "name", "updated")
    list_filter = ("environment",)
    search_fields = ("key", "name", "description")
    actions = ("delete_segments",)

    @admin.display(description="Updated (UTC)", ordering="updated_at")
    def updated(self, segment: Segment) -> str:
        return when_text(segment.updated_at)

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
                segment=selectors.stored_segment(obj.pk),
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

"""Read-only audit trail in the admin: filter by flag, environment, actor, action and date."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "sequence",
        "occurred_at",
        "actor",
        "action",
        "flag_key",
        "environment_key",
        "reason",
    )
    list_filter = (
        "action",
        ("environment_key", admin.AllValuesFieldListFilter),
        ("flag_key", admin.AllValuesFieldListFilter),
        ("actor", admin.AllValuesFieldListFilter),
        "actor_kind",
        "occurred_at",
    )
    search_fields = ("flag_key", "target_key", "actor", "reason", "=incident_id", "=request_id")
    date_hierarchy = "occurred_at"
    list_per_page = 100
    fields = (
        "sequence",
        "occurred_at",
        "actor",
        "actor_kind",
        "action",
        "target_type",
        "target_key",
        "flag_key",
        "environment_key",
        "reason",
        "incident_id",
        "request_id",
        "source_ip",
        "before_pretty",
        "after_pretty",
        "prev_hash",
        "hash",
        "key_id",
        "key_proof",
    )
    readonly_fields = fields

    @admin.display(description="Before")
    def before_pretty(self, event: AuditEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(event.before, indent=2, ensure_ascii=False))

    @admin.display(description="After")
    def after_pretty(self, event: AuditEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(event.after, indent=2, ensure_ascii=False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""The audit list as people read it: when (UTC, how long ago), who, what, environment and why,
all visible at 1366 px.

The audit app's own admin (``audit.admin``) knows nothing of flags; this one extends it with
the admin's shared way of writing times and re-registers it, so the audit app stays as it is.
"""

from __future__ import annotations

from datetime import UTC

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

import audit.admin
from audit.models import AuditEvent
from flags.admin.display import when_text


class AuditEventForPeople(audit.admin.AuditEventAdmin):
    COLUMNS = ("when", "actor", "action", "flag", "environment", "short_reason")

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        return self.COLUMNS

    list_display_links = ("when",)

    class Media:
        css = {"all": ("flags/admin/flags.css",)}

    @admin.display(description="When (UTC)", ordering="occurred_at")
    def when(self, event: AuditEvent) -> SafeString:
        exact = f"{event.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · #{event.sequence}"
        return format_html(
            '<time datetime="{}" title="{}" style="white-space:nowrap">{}</time>',
            event.occurred_at.isoformat(),
            exact,
            when_text(event.occurred_at),
        )

    @admin.display(description="Flag", ordering="flag_key")
    def flag(self, event: AuditEvent) -> str:
        return event.flag_key or "—"

    @admin.display(description="Env.", ordering="environment_key")
    def environment(self, event: AuditEvent) -> str:
        return event.environment_key or "—"

    @admin.display(description="Reason", ordering="reason")
    def short_reason(self, event: AuditEvent) -> SafeString:
        return format_html(
            '<span class="audit-reason" title="{}">{}</span>', event.reason, event.reason or "—"
        )


if admin.site.is_registered(AuditEvent):
    admin.site.unregister(AuditEvent)
admin.site.register(AuditEvent, AuditEventForPeople)

"""Template filters of the flag admin: times in UTC with the zone and how long ago; state badges."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.admin.display import ago, state_badge, utc_time
from flags.models import Flag, FlagState

register = template.Library()


@register.filter
def when(value: datetime | str | None) -> SafeString | str:
    """``2026-11-29 14:50 UTC · 3 min ago``, the exact time (seconds) on hover."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    at = value.astimezone(UTC) if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    return format_html(
        '<time datetime="{}" title="{}">{} · {}</time>',
        at.isoformat(),
        f"{at:%Y-%m-%d %H:%M:%S} UTC",
        utc_time(at),
        ago(at),
    )


@register.simple_tag
def badge(flag: Flag, state: FlagState) -> SafeString:
    """The labelled badge of a flag's state in one environment (readable without colour)."""
    return state_badge(flag, state)

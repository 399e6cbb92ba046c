"""Template filters of the flag admin: times in UTC with the zone and how long ago; state badges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags import selectors
from flags.admin.display import ago, state_badge, utc_time
from flags.admin.overview import next_step, overview
from flags.models import Flag, FlagState
from flags.rollouts import rollout_plan_document

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


@register.inclusion_tag("admin/flags/flag/environment_header.html")
def environment_header(state: FlagState) -> dict[str, Any]:
    """The top of an environment's section on the flag page: state, kill/restore, next step."""
    plan = selectors.rollout_plan_current(state.flag, state.environment)
    document = rollout_plan_document(plan) if plan is not None and plan.active else None
    return {
        "flag": state.flag,
        "state": state,
        "environment": state.environment,
        "plan": document,
        "next": next_step(document) if document else None,
    }


@register.inclusion_tag("admin/flags/at_a_glance.html", takes_context=True)
def flags_at_a_glance(context: dict[str, Any]) -> dict[str, Any]:
    """The admin home page's summary (for users who may view flags), linking the overview."""
    request = context.get("request")
    if request is None or not request.user.has_perm("flags.view_flag"):
        return {"hidden": True}
    return overview()

"""``{% rollout_timelines flag %}``: the rollout plan timelines on the flag's admin page; ``|moment``."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template

from flags.admin.display import ago
from flags.admin.rollouts import rollout_timelines as timelines
from flags.models import Flag

register = template.Library()


@register.inclusion_tag("admin/flags/flag/rollout_timelines.html", takes_context=True)
def rollout_timelines(context: dict[str, Any], flag: Flag) -> dict[str, Any]:
    return {"flag": flag, "rows": timelines(flag), "request": context.get("request")}


@register.filter
def moment(value: str | None, zone: str = "") -> str:
    """An ISO time from a plan document as ``2026-12-01 08:00:00 UTC · in 3 h (09:00 Europe/Berlin)``."""
    if not value:
        return ""
    at = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    text = f"{at:%Y-%m-%d %H:%M:%S} UTC · {ago(at)}"
    if zone:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            text += f" ({at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone})"
    return text

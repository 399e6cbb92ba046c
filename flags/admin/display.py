"""How the admin shows states and times to people: labelled badges, UTC times with the zone.

Every time in the admin is UTC, written with its zone, and how long ago
(``2026-11-29 14:50 UTC · 3 min ago``); a state is a badge whose text says
what it serves (ON, OFF, 25%, SPLIT 80/10/10, KILLED), so colour only repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flags.models import Flag, FlagState


def utc_time(at: datetime, *, now: datetime | None = None) -> str:
    """``14:50 UTC`` today, else ``2026-11-29 14:50 UTC``."""
    at = at.astimezone(UTC)
    today = (now or timezone.now()).astimezone(UTC).date()
    return f"{at:%H:%M} UTC" if at.date() == today else f"{at:%Y-%m-%d %H:%M} UTC"


def ago(at: datetime, *, now: datetime | None = None) -> str:
    """``just now``, ``3 min ago``, ``5 h ago``, ``12 days ago`` (or ``in 3 min``)."""
    seconds = int(((now or timezone.now()) - at).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a moment"
    for size, unit in ((86400 * 365, "y"), (86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = round(seconds / size) if size == 60 else seconds // size
            label = f"{count} {unit}" + ("s" if unit == "day" and count != 1 else "")
            return f"in {label}" if future else f"{label} ago"
    return "just now"


def when_text(at: datetime | None) -> str:
    """Plain text of a time as the admin writes it everywhere."""
    if at is None:
        return "—"
    return f"{utc_time(at)} · {ago(at)}"


@dataclass(frozen=True)
class Badge:
    """What a state's badge says: the label, its kind (the CSS class), and the details."""

    label: str
    kind: str  # on, off, partial, killed
    detail: str = ""


def _shares(weights: list[float]) -> list[str]:
    total = sum(weights) or 1
    return [f"{round(w * 100 / total, 2):g}" for w in weights]


def badge_of(flag: Flag, state: FlagState) -> Badge:
    """The badge of ``state``: KILLED, OFF, ON (with the variant of a multivariate flag),
    25% (a boolean split: the share served on), SPLIT 80/10/10 (other splits)."""
    extras = []
    if state.targets:
        count = sum(len(t.get("values", [])) for t in state.targets)
        extras.append(f"{count} targeted")
    if state.rules:
        extras.append(f"{len(state.rules)} rule{'s' if len(state.rules) != 1 else ''}")
    if state.prerequisites:
        extras.append("prerequisites")
    if state.killed:
        return Badge("KILLED", "killed", "")
    if not state.enabled:
        return Badge("OFF", "off", f"serves {flag.off_variant}" if flag.type != "boolean" else "")
    serve = state.default_serve or {}
    if "split" in serve:
        split = serve["split"]
        names = [s["variant"] for s in split]
        shares = _shares([s["weight"] for s in split])
        if flag.type == Flag.Type.BOOLEAN:
            on = dict(zip(names, shares, strict=True)).get("on", "0")
            return Badge(f"{on}%", "partial", " · ".join(["on for " + on + "%", *extras]))
        detail = "/".join(names)
        return Badge("SPLIT " + "/".join(shares), "partial", " · ".join([detail, *extras]))
    variant = str(serve.get("variant", "?"))
    if flag.type == Flag.Type.BOOLEAN:
        if variant == "on":
            return Badge("ON", "on", " · ".join(extras))
        # Enabled, but everyone not matched by a rule or target gets "off".
        kind = "partial" if extras else "off"
        return Badge("ON", kind, " · ".join([f"default {variant}", *extras]))
    return Badge(f"ON: {variant}", "on", " · ".join(extras))


def state_badge(flag: Flag, state: FlagState) -> SafeString:
    """The badge as HTML (with a one-line detail under it, if any)."""
    badge = badge_of(flag, state)
    symbol = {"on": "●", "off": "○", "partial": "◐", "killed": "✖"}[badge.kind]
    html = format_html(
        '<span class="state-badge state-{}" data-state="{}">{} {}</span>',
        badge.kind,
        badge.label,
        symbol,
        badge.label,
    )
    if badge.detail:
        html += format_html(
            '<span class="state-detail" title="{}">{}</span>', badge.detail, badge.detail
        )
    return html

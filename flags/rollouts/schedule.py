"""Rollout plan steps: reading what people write, and when each step falls due.

Pure like the engine: plain data in, plain data out, no Django, no clock of its
own (every function takes ``now``), so the scheduling rules are tested with a
controlled clock.

A step is a percentage (0.01% granularity, stored as basis points) and either an
absolute time (``at``, ISO-8601 with an offset, or a local time plus an IANA
``timezone``) or a delay after the previous step (``after``: seconds, ``"30m"``,
``"1h30m"``, ``"2d"`` or ISO-8601 ``"PT30M"``).

When steps fall due (the missed-steps policy):
- an absolute step is due at its time;
- a delayed step is due ``after`` its previous step was *actually applied* (the
  first step: after the plan started), or after the plan was last resumed if
  that is later, so every stage gets its full soak time even when the scheduler
  was late, down, or the plan was paused;
- steps that fell due while nothing ran (beat down, plan paused) are applied in
  order, each on its own, none skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SPLIT_TOTAL = 10_000
MAX_STEPS = 50
MAX_AHEAD = timedelta(days=366)
MAX_DELAY_SECONDS = 366 * 24 * 3600
STEP_KEYS = ("percentage", "at", "after", "timezone")

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass(frozen=True)
class StepSpec:
    """One validated step: ``weight`` basis points of the rollout variant, due at ``at`` or ``after`` seconds."""

    weight: int
    at: datetime | None = None
    after_seconds: int | None = None
    timezone: str = ""


@dataclass(frozen=True)
class StepProgress:
    """A step as the scheduler sees it: its timing and what has happened to it."""

    at: datetime | None
    after_seconds: int | None
    applied_at: datetime | None = None
    skipped_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.applied_at is not None or self.skipped_at is not None


def percentage_label(weight: int) -> str:
    """2500 -> '25%', 50 -> '0.5%', 1 -> '0.01%'."""
    whole, cents = divmod(weight, 100)
    return (f"{whole}.{cents:02d}".rstrip("0") if cents else str(whole)) + "%"


def weight_percentage(weight: int) -> float:
    """Basis points as the JSON number people wrote: 2500 -> 25.0, 1 -> 0.01."""
    return weight / 100


def parse_percentage(value: Any) -> tuple[int | None, str]:
    """(basis points, '') or (None, what is wrong)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "must be a number from 0 to 100 (e.g. 5 or 0.5)"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite number from 0 to 100"
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return None, "must be a number from 0 to 100"
    if not 0 <= exact <= 100:
        return None, f"{value} is outside 0-100"
    basis_points = exact * 100
    if basis_points != basis_points.to_integral_value():
        return None, f"{value} has more than two decimals; the granularity is 0.01%"
    return int(basis_points), ""


def parse_duration(value: Any) -> tuple[int | None, str]:
    """(seconds, '') or (None, what is wrong). Numbers are seconds; strings like 30m, 1h30m, 2d, PT30M."""
    problem = 'must be seconds (e.g. 1800) or a duration like "30m", "1h30m", "2d" or "PT30M"'
    if isinstance(value, bool):
        return None, problem
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0 or value != int(value):
            return None, "must be a whole, non-negative number of seconds"
        seconds = int(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        match = _DURATION.match(text.lower()) or _ISO_DURATION.match(text.upper())
        if match is None or not any(match.groups()):
            return None, problem
        if any(len(group or "") > 9 for group in match.groups()):
            # int() would refuse 4,300+ digits with a ValueError; 366 days fit in 8.
            return None, "is longer than 366 days"
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    else:
        return None, problem
    if seconds > MAX_DELAY_SECONDS:
        return None, "is longer than 366 days"
    return seconds, ""


def zone_of(name: Any) -> tuple[ZoneInfo | None, str]:
    """(the IANA zone, '') or (None, what is wrong)."""
    if not isinstance(name, str) or not name or len(name) > 64:
        return None, 'must be an IANA time zone name like "Europe/Berlin" or "UTC"'
    try:
        return ZoneInfo(name), ""
    except (ZoneInfoNotFoundError, ValueError):
        return None, f'{name!r} is not an IANA time zone name (e.g. "Europe/Berlin", "UTC")'


def parse_moment(value: Any, zone_name: str) -> tuple[datetime | None, str]:
    """An absolute time as an aware UTC datetime, or (None, what is wrong).

    ISO-8601 with an offset (``2026-12-01T09:00:00+01:00`` or ``...Z``), or a local
    time without one read in ``zone_name``. A local time that does not exist (the
    hour the clocks skip) is refused; one that happens twice is the first.
    """
    example = '"2026-12-01T09:00:00+01:00", or a local time with "timezone": "Europe/Berlin"'
    if not isinstance(value, str) or not value.strip():
        return None, f"must be an ISO-8601 time such as {example}"
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None, f"{value!r} is not an ISO-8601 time such as {example}"
    zone = None
    if zone_name:
        zone, problem = zone_of(zone_name)
        if zone is None:
            return None, problem
    if parsed.tzinfo is None:
        if zone is None:
            return None, (
                f"{value!r} has no offset: add one (e.g. +01:00 or Z) or give a "
                '"timezone" (on the step or the plan)'
            )
        local = parsed.replace(tzinfo=zone)
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != parsed:
            return None, f"{value} does not exist in {zone_name} (the clocks skip that hour)"
        return local.astimezone(UTC), ""
    if zone is not None:
        expected = parsed.replace(tzinfo=None).replace(tzinfo=zone).utcoffset()
        if expected != parsed.utcoffset():
            return None, (
                f"{value} has offset {_offset(parsed.utcoffset())} but {zone_name} is at "
                f"{_offset(expected)} then; drop one of them"
            )
    return parsed.astimezone(UTC), ""


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_steps(
    raw_steps: Any,
    *,
    plan_timezone: str,
    allow_decrease: bool,
    now: datetime,
) -> tuple[list[StepSpec], dict[str, str]]:
    """The validated steps and, per field path (``steps[2].percentage``), what is wrong."""
    errors: dict[str, str] = {}
    if not isinstance(raw_steps, list) or not raw_steps:
        return [], {"steps": 'must be a non-empty list of {"percentage": N, "at" or "after": ...}'}
    if len(raw_steps) > MAX_STEPS:
        return [], {"steps": f"has {len(raw_steps)} steps; the limit is {MAX_STEPS}"}
    steps: list[StepSpec] = []
    previous_weight: int | None = None
    earliest = now  # the earliest moment the previous step can be applied
    for index, raw in enumerate(raw_steps):
        field = f"steps[{index}]"
        if not isinstance(raw, Mapping):
            errors[field] = 'must be an object {"percentage": N, "at" or "after": ...}'
            continue
        unknown = sorted(set(raw) - set(STEP_KEYS))
        if unknown:
            errors[field] = f"unknown keys {unknown}; allowed: {', '.join(STEP_KEYS)}"
            continue
        weight, problem = parse_percentage(raw.get("percentage"))
        if weight is None:
            errors[f"{field}.percentage"] = problem
        elif previous_weight is not None and weight < previous_weight and not allow_decrease:
            errors[f"{field}.percentage"] = (
                f"{percentage_label(weight)} is below the previous step's "
                f"{percentage_label(previous_weight)}; steps only go up unless the plan sets "
                '"allow_decrease": true'
            )
        zone_name = raw.get("timezone", plan_timezone) or ""
        if "timezone" in raw:
            _, problem = zone_of(raw["timezone"])
            if problem:
                errors[f"{field}.timezone"] = problem
                continue
        has_at, has_after = raw.get("at") is not None, raw.get("after") is not None
        at: datetime | None = None
        after: int | None = None
        if has_at and has_after:
            errors[field] = 'give either "at" (a time) or "after" (a delay), not both'
            continue
        if has_at:
            at, problem = parse_moment(raw["at"], zone_name)
            if at is None:
                errors[f"{field}.at"] = problem
                continue
            if at <= now:
                errors[f"{field}.at"] = f"{raw['at']} is not in the future"
                continue
            if at > now + MAX_AHEAD:
                errors[f"{field}.at"] = f"{raw['at']} is more than a year ahead"
                continue
            if at < earliest:
                errors[f"{field}.at"] = (
                    f"{raw['at']} comes before steps[{index - 1}] can be applied "
                    f"({_iso(earliest)} at the earliest); order the steps by time"
                )
                continue
            earliest = at
        elif has_after:
            after, problem = parse_duration(raw["after"])
            if after is None:
                errors[f"{field}.after"] = problem
                continue
            earliest += timedelta(seconds=after)
        elif index == 0:
            after = 0  # the first step without a time starts the ramp now
        else:
            errors[field] = (
                'give "at" (a time) or "after" (a delay after the previous step, e.g. "30m")'
            )
            continue
        if weight is not None:
            steps.append(
                StepSpec(
                    weight=weight,
                    at=at,
                    after_seconds=after,
                    timezone=zone_name if at is not None else "",
                )
            )
            previous_weight = weight
    return steps, errors


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def due_at(
    steps: Sequence[StepProgress],
    index: int,
    *,
    started_at: datetime,
    resumed_at: datetime | None,
) -> datetime | None:
    """When step ``index`` falls due, or None while the step before it is not applied yet."""
    step = steps[index]
    if step.at is not None:
        return step.at
    base: datetime | None = started_at
    for previous in reversed(steps[:index]):
        if previous.applied_at is not None:
            base = previous.applied_at
            break
        if previous.skipped_at is None:
            return None  # the previous step has not happened yet
    # Skipped steps are passed over: the delay counts from the last applied one.
    assert base is not None
    if resumed_at is not None and resumed_at > base:
        base = resumed_at
    return base + timedelta(seconds=step.after_seconds or 0)


def next_step(steps: Sequence[StepProgress]) -> int | None:
    """The index of the first step neither applied nor skipped, or None when all are done."""
    return next((i for i, step in enumerate(steps) if not step.done), None)


def projected_due_times(
    steps: Sequence[StepProgress], *, next_due: datetime | None
) -> list[datetime | None]:
    """For a timeline: when each pending step will fall due if nothing is late (None: unknown).

    ``next_due`` is the plan's next due time (None while it is paused or finished).
    """
    projected: list[datetime | None] = []
    previous: datetime | None = None
    first_pending = next_step(steps)
    for index, step in enumerate(steps):
        if step.done:
            projected.append(None)
            previous = step.applied_at or previous
            continue
        if index == first_pending:
            moment = next_due
        elif step.at is not None:
            moment = step.at
        elif previous is not None:
            moment = previous + timedelta(seconds=step.after_seconds or 0)
        else:
            moment = None
        if moment is None and step.at is not None:
            moment = step.at
        projected.append(moment)
        if moment is not None and previous is not None and moment < previous:
            moment = previous  # an overdue absolute step is applied right after the one before
        previous = moment
    return projected

"""Rollout plan steps as people write them, and when each falls due (pure, controlled clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flags.rollouts import schedule
from flags.rollouts.schedule import StepProgress

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def parse(steps: object, *, allow_decrease: bool = False, timezone: str = "") -> tuple:
    return schedule.parse_steps(
        steps, plan_timezone=timezone, allow_decrease=allow_decrease, now=NOW
    )


@pytest.mark.parametrize(
    ("value", "weight"),
    [(0, 0), (1, 100), (0.01, 1), (5.5, 550), (33.33, 3333), (100, 10000), (99.99, 9999)],
)
def test_percentage__two_decimals_at_most__stored_as_basis_points(
    value: float, weight: int
) -> None:
    assert schedule.parse_percentage(value) == (weight, "")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (33.333, "more than two decimals"),
        (0.001, "more than two decimals"),
        (-1, "outside 0-100"),
        (100.01, "outside 0-100"),
        ("5", "must be a number"),
        (True, "must be a number"),
        (None, "must be a number"),
        (float("nan"), "finite"),
    ],
)
def test_percentage__refused_with_what_to_fix(value: object, problem: str) -> None:
    weight, message = schedule.parse_percentage(value)
    assert weight is None and problem in message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0),
        (1800, 1800),
        ("30s", 30),
        ("30m", 1800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("PT30M", 1800),
        ("P1DT2H", 93600),
        (" 5m ", 300),
    ],
)
def test_duration__seconds_or_readable_or_iso(value: object, seconds: int) -> None:
    assert schedule.parse_duration(value) == (seconds, "")


@pytest.mark.parametrize("value", ["", "soon", "5 minutes", "-5m", -1, 1.5, True, "P", "400d"])
def test_duration__nonsense__refused(value: object) -> None:
    seconds, problem = schedule.parse_duration(value)
    assert seconds is None and problem


def test_moment__offset_or_z__read_as_utc() -> None:
    assert schedule.parse_moment("2026-12-01T09:00:00+01:00", "") == (
        datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        "",
    )
    assert schedule.parse_moment("2026-12-01T09:00:00Z", "")[0] == datetime(
        2026, 12, 1, 9, 0, tzinfo=UTC
    )


def test_moment__local_time_with_iana_zone__follows_daylight_saving() -> None:
    winter, _ = schedule.parse_moment("2026-12-01T09:00:00", "Europe/Berlin")
    summer, _ = schedule.parse_moment("2027-07-01T09:00:00", "Europe/Berlin")
    assert winter == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert summer == datetime(2027, 7, 1, 7, 0, tzinfo=UTC)


def test_moment__local_time_the_clocks_skip__refused() -> None:
    moment, problem = schedule.parse_moment("2027-03-28T02:30:00", "Europe/Berlin")
    assert moment is None and "does not exist in Europe/Berlin" in problem


def test_moment__no_offset_and_no_zone__says_to_add_one() -> None:
    moment, problem = schedule.parse_moment("2026-12-01T09:00:00", "")
    assert moment is None and "has no offset" in problem and "timezone" in problem


def test_moment__offset_contradicting_the_zone__refused() -> None:
    moment, problem = schedule.parse_moment("2026-12-01T09:00:00+02:00", "Europe/Berlin")
    assert moment is None and "Europe/Berlin is at +01:00" in problem


def test_moment__unknown_zone__refused() -> None:
    moment, problem = schedule.parse_moment("2026-12-01T09:00:00", "Mars/Olympus")
    assert moment is None and "IANA" in problem


def test_steps__the_issue_example__parse() -> None:
    steps, errors = parse(
        [
            {"percentage": 1},
            {"percentage": 5, "after": "30m"},
            {"percentage": 25, "at": "2026-12-01T09:00:00", "timezone": "Europe/Berlin"},
            {"percentage": 100, "at": "2026-12-07T09:00:00+01:00"},
        ]
    )
    assert errors == {}
    assert [s.weight for s in steps] == [100, 500, 2500, 10000]
    assert steps[0].after_seconds == 0 and steps[1].after_seconds == 1800
    assert steps[2].at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert steps[2].timezone == "Europe/Berlin"


def test_steps__plan_timezone_applies_to_local_times() -> None:
    steps, errors = parse(
        [{"percentage": 10, "at": "2026-12-01T09:00"}], timezone="America/New_York"
    )
    assert errors == {} and steps[0].at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_steps__decreasing__refused_unless_allowed() -> None:
    raw = [{"percentage": 50}, {"percentage": 10, "after": 60}]
    _, errors = parse(raw)
    assert "below the previous step's 50%" in errors["steps[1].percentage"]
    steps, errors = parse(raw, allow_decrease=True)
    assert errors == {} and [s.weight for s in steps] == [5000, 1000]


def test_steps__every_problem_named_by_its_path() -> None:
    _, errors = parse(
        [
            {"percentage": 1},
            {"percentage": 2.345, "after": "30m"},
            {"percentage": 5, "at": "2026-11-29T09:00:00Z"},
            {"percentage": 6},
            {"percentage": 7, "at": "2026-12-01T09:00:00Z", "after": 60},
            {"percentage": 8, "when": "later"},
            "ten",
        ]
    )
    assert set(errors) == {
        "steps[1].percentage",
        "steps[2].at",
        "steps[3]",
        "steps[4]",
        "steps[5]",
        "steps[6]",
    }
    assert "not in the future" in errors["steps[2].at"]
    assert "either" in errors["steps[4]"]
    assert "unknown keys ['when']" in errors["steps[5]"]


def test_steps__absolute_time_before_an_earlier_step__refused() -> None:
    _, errors = parse(
        [
            {"percentage": 1, "at": "2026-12-02T09:00:00Z"},
            {"percentage": 5, "at": "2026-12-01T09:00:00Z"},
        ]
    )
    assert "order the steps by time" in errors["steps[1].at"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "non-empty list"),
        ("1,5,25", "non-empty list"),
        ([{"percentage": 1, "after": 1}] * 51, "the limit is 50"),
        ([{"percentage": 1, "at": "2028-01-01T00:00:00Z"}], "more than a year ahead"),
    ],
)
def test_steps__bad_lists__refused(raw: object, problem: str) -> None:
    _, errors = parse(raw)
    assert any(problem in message for message in errors.values()), errors


# --- when steps fall due -------------------------------------------------------------------


def test_due__first_delayed_step__counts_from_the_start() -> None:
    steps = [StepProgress(None, 0), StepProgress(None, 1800)]
    assert schedule.due_at(steps, 0, started_at=NOW, resumed_at=None) == NOW


def test_due__delay__counts_from_when_the_previous_step_was_actually_applied() -> None:
    late = NOW + timedelta(minutes=7)
    steps = [StepProgress(None, 0, applied_at=late), StepProgress(None, 1800)]
    assert schedule.due_at(steps, 1, started_at=NOW, resumed_at=None) == late + timedelta(
        minutes=30
    )


def test_due__delayed_step_after_a_pending_one__is_unknown() -> None:
    steps = [StepProgress(None, 0), StepProgress(None, 1800)]
    assert schedule.due_at(steps, 1, started_at=NOW, resumed_at=None) is None


def test_due__after_a_resume__the_delay_counts_from_the_resume() -> None:
    resumed = NOW + timedelta(hours=5)
    steps = [StepProgress(None, 0, applied_at=NOW), StepProgress(None, 1800)]
    assert schedule.due_at(steps, 1, started_at=NOW, resumed_at=resumed) == resumed + timedelta(
        minutes=30
    )


def test_due__absolute_step__is_due_at_its_time_whatever_came_before() -> None:
    at = NOW + timedelta(days=1)
    steps = [StepProgress(None, 0), StepProgress(at, None)]
    assert schedule.due_at(steps, 1, started_at=NOW, resumed_at=NOW + timedelta(days=3)) == at


def test_due__skipped_steps__are_passed_over_to_the_last_applied_one() -> None:
    steps = [
        StepProgress(None, 0, applied_at=NOW),
        StepProgress(None, 60, skipped_at=NOW + timedelta(minutes=1)),
        StepProgress(None, 600),
    ]
    assert schedule.due_at(steps, 2, started_at=NOW, resumed_at=None) == NOW + timedelta(minutes=10)


def test_projection__timeline_chains_delays_from_the_next_due_time() -> None:
    next_due = NOW + timedelta(minutes=30)
    at = NOW + timedelta(days=1)
    steps = [
        StepProgress(None, 0, applied_at=NOW),
        StepProgress(None, 1800),
        StepProgress(None, 3600),
        StepProgress(at, None),
        StepProgress(None, 60),
    ]
    assert schedule.projected_due_times(steps, next_due=next_due) == [
        None,
        next_due,
        next_due + timedelta(hours=1),
        at,
        at + timedelta(minutes=1),
    ]


def test_percentage_label__reads_like_people_write_it() -> None:
    assert [schedule.percentage_label(w) for w in (1, 50, 100, 2500, 3333, 10000)] == [
        "0.01%",
        "0.5%",
        "1%",
        "25%",
        "33.33%",
        "100%",
    ]

"""Service minutes arithmetic: periods, proration by school days, what counts, shortfalls and make-up owed."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.domain.service_minutes import (
    SessionFact,
    history,
    last_completed,
    period_bounds,
    required_minutes,
    school_days,
    tally,
)

D = dt.date


def test_week_runs_monday_to_sunday_and_month_is_the_calendar_month():
    assert period_bounds(D(2026, 12, 3), "week") == (D(2026, 11, 30), D(2026, 12, 6))
    assert period_bounds(D(2026, 12, 6), "week") == (D(2026, 11, 30), D(2026, 12, 6))
    assert period_bounds(D(2026, 2, 14), "month") == (D(2026, 2, 1), D(2026, 2, 28))
    assert period_bounds(D(2028, 2, 14), "month") == (D(2028, 2, 1), D(2028, 2, 29))
    with pytest.raises(ValueError):
        period_bounds(D(2026, 1, 1), "fortnight")


def test_last_completed_period_is_the_one_before_today():
    assert last_completed(D(2026, 12, 3), "week") == (D(2026, 11, 23), D(2026, 11, 29))
    assert last_completed(D(2026, 1, 10), "month") == (D(2025, 12, 1), D(2025, 12, 31))


def test_school_days_count_monday_to_friday():
    assert school_days(D(2026, 11, 30), D(2026, 12, 6)) == 5
    assert school_days(D(2026, 12, 5), D(2026, 12, 6)) == 0
    assert school_days(D(2026, 12, 1), D(2026, 12, 31)) == 23
    assert school_days(D(2026, 12, 6), D(2026, 12, 1)) == 0


def test_partly_covered_periods_require_their_share_by_school_days():
    week = (D(2026, 11, 30), D(2026, 12, 6))
    assert required_minutes(60, *week, D(2026, 1, 1), None) == 60
    assert required_minutes(60, *week, D(2026, 12, 2), None) == 36  # Wed-Fri: 3 of 5 days
    assert required_minutes(60, *week, D(2026, 1, 1), D(2026, 11, 30)) == 12  # Monday only
    assert required_minutes(60, *week, D(2026, 12, 5), None) == 0  # starts on the weekend
    assert required_minutes(60, *week, D(2027, 1, 1), None) == 0


def test_only_delivered_minutes_count_and_provider_absences_owe_a_make_up():
    week = (D(2026, 11, 23), D(2026, 11, 29))
    sessions = [SessionFact(D(2026, 11, 23), 30, "delivered"), SessionFact(D(2026, 11, 25), 30, "student_absent"),
                SessionFact(D(2026, 11, 27), 30, "provider_absent"), SessionFact(D(2026, 11, 30), 30, "delivered")]
    p = tally(90, "week", *week, D(2026, 1, 1), None, sessions, today=D(2026, 12, 3))
    assert (p.required, p.delivered, p.student_absent, p.provider_absent) == (90, 30, 30, 30)
    assert p.short and p.missing == 60 and p.make_up_owed == 30


def test_make_up_owed_is_limited_to_what_the_period_is_short():
    week = (D(2026, 11, 23), D(2026, 11, 29))
    sessions = [SessionFact(D(2026, 11, 23), 50, "delivered"), SessionFact(D(2026, 11, 27), 30, "provider_absent")]
    p = tally(60, "week", *week, D(2026, 1, 1), None, sessions, today=D(2026, 12, 3))
    assert p.missing == 10 and p.make_up_owed == 10
    met = tally(60, "week", *week, D(2026, 1, 1), None, sessions + [SessionFact(D(2026, 11, 24), 10, "delivered")],
                today=D(2026, 12, 3))
    assert not met.short and met.make_up_owed == 0


def test_the_current_period_is_never_short():
    p = tally(60, "week", D(2026, 11, 30), D(2026, 12, 6), D(2026, 1, 1), None, [], today=D(2026, 12, 3))
    assert not p.complete and not p.short and p.missing == 60


def test_history_is_newest_first_and_stops_at_the_service_start():
    sessions = [SessionFact(D(2026, 11, 3), 120, "delivered"), SessionFact(D(2026, 10, 20), 200, "delivered")]
    months = history(240, "month", D(2026, 10, 15), None, sessions, today=D(2026, 12, 3), count=6)
    assert [p.start for p in months] == [D(2026, 12, 1), D(2026, 11, 1), D(2026, 10, 1)]
    assert months[1].short and months[1].missing == 120
    assert months[2].required == 131  # 12 of October's 22 school days from the 15th: 240 * 12 / 22 = 130.9
    assert months[2].delivered == 200 and not months[2].short


def test_history_of_an_ended_service_ends_at_its_last_period():
    weeks = history(30, "week", D(2026, 11, 2), D(2026, 11, 13), [], today=D(2026, 12, 3))
    assert [p.start for p in weeks] == [D(2026, 11, 9), D(2026, 11, 2)]
    assert all(p.complete and p.short for p in weeks)

"""Compliance deadlines with fixed dates: leap years, month ends, school days around closures and weekends,
waived reevaluations, 504 reviews, the upcoming window and overdue items."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.domain.deadlines import (
    Closure,
    DeadlineKind,
    DeadlinePolicy,
    DeadlineStatus,
    PlanInputs,
    ReportingPeriod,
    SchoolCalendar,
    add_months,
    add_years,
    all_deadlines,
    annual_review_due,
    check_inputs,
    initial_evaluation_due,
    merge_calendar,
    next_open,
    plan_deadlines,
    reevaluation_due,
    review_504_due,
    status_for,
)

D = dt.date
POLICY = DeadlinePolicy()


def iep(**kw: object) -> PlanInputs:
    base: dict[str, object] = {"plan_id": 1, "student_id": 10, "student_name": "Avery Quinlan", "plan_type": "IEP"}
    return PlanInputs(**{**base, **kw})  # type: ignore[arg-type]


def by_kind(deadlines, kind):  # type: ignore[no-untyped-def]
    return [d for d in deadlines if d.kind is kind]


# --- date arithmetic -------------------------------------------------------------------------------------------

def test_annual_review_from_leap_day_falls_on_28_february():
    assert annual_review_due(D(2024, 2, 29)) == D(2025, 2, 28)


def test_annual_review_from_leap_day_to_a_leap_year_keeps_29_february():
    assert add_years(D(2024, 2, 29), 4) == D(2028, 2, 29)


def test_reevaluation_is_three_years_after_the_last_evaluation_and_leap_day_clamps():
    assert reevaluation_due(D(2025, 10, 14)) == D(2028, 10, 14)
    assert reevaluation_due(D(2024, 2, 29)) == D(2027, 2, 28)


@pytest.mark.parametrize(("start", "months", "expected"), [
    (D(2025, 8, 31), 6, D(2026, 2, 28)),     # month end clamps to a short February
    (D(2027, 8, 31), 6, D(2028, 2, 29)),     # ... and to a leap February
    (D(2026, 1, 31), 1, D(2026, 2, 28)),
    (D(2026, 3, 31), 1, D(2026, 4, 30)),
    (D(2026, 11, 15), 12, D(2027, 11, 15)),
    (D(2026, 12, 31), 14, D(2028, 2, 29)),   # across a year end
])
def test_add_months_clamps_to_the_last_day_of_the_month(start, months, expected):
    assert add_months(start, months) == expected


def test_504_review_uses_the_configured_months():
    assert review_504_due(D(2026, 1, 31), 12) == D(2027, 1, 31)
    assert review_504_due(D(2026, 1, 31), 6) == D(2026, 7, 31)


# --- initial evaluation: calendar and school days --------------------------------------------------------------

def test_initial_evaluation_counts_60_calendar_days_by_default():
    assert initial_evaluation_due(D(2026, 9, 1), POLICY, SchoolCalendar()) == D(2026, 10, 31)


def test_initial_evaluation_in_school_days_skips_weekends():
    policy = DeadlinePolicy(initial_evaluation_days=5, initial_evaluation_school_days=True)
    # Consent on Friday 4 Sep 2026: Mon 7 .. Fri 11 are the five school days.
    assert initial_evaluation_due(D(2026, 9, 4), policy, SchoolCalendar()) == D(2026, 9, 11)


def test_school_days_skip_a_closure_that_spans_a_weekend():
    # Thanksgiving break Wed 25 Nov - Tue 1 Dec 2026 covers a weekend; consent on Mon 23 Nov.
    cal = SchoolCalendar(closures=(Closure("Thanksgiving break", D(2026, 11, 25), D(2026, 12, 1)),))
    policy = DeadlinePolicy(initial_evaluation_days=3, initial_evaluation_school_days=True)
    # Tue 24 (1), break, Wed 2 Dec (2), Thu 3 Dec (3).
    assert initial_evaluation_due(D(2026, 11, 23), policy, cal) == D(2026, 12, 3)
    assert not cal.is_school_day(D(2026, 11, 30))   # a Monday inside the closure
    assert not cal.is_school_day(D(2026, 11, 28))   # a Saturday
    assert cal.is_school_day(D(2026, 12, 2))


def test_school_days_with_overlapping_and_back_to_back_closures():
    cal = SchoolCalendar(closures=(Closure("Winter break", D(2026, 12, 21), D(2027, 1, 1)),
                                   Closure("Staff day", D(2027, 1, 4), D(2027, 1, 4)),
                                   Closure("Snow day", D(2026, 12, 31), D(2027, 1, 1))))
    # Consent Fri 18 Dec 2026: break to Fri 1 Jan, weekend, staff day Mon 4 Jan -> Tue 5 Jan is day 1.
    assert cal.add_school_days(D(2026, 12, 18), 1) == D(2027, 1, 5)
    assert cal.add_school_days(D(2026, 12, 18), 4) == D(2027, 1, 8)


def test_60_school_days_are_later_than_60_calendar_days():
    cal = SchoolCalendar(closures=(Closure("Fall break", D(2026, 10, 12), D(2026, 10, 16)),))
    school = DeadlinePolicy(initial_evaluation_school_days=True)
    # 60 weekdays from Tue 1 Sep 2026 is Tue 24 Nov; one closed week pushes it to Tue 1 Dec.
    assert initial_evaluation_due(D(2026, 9, 1), school, SchoolCalendar()) == D(2026, 11, 24)
    assert initial_evaluation_due(D(2026, 9, 1), school, cal) == D(2026, 12, 1)


def test_initial_evaluation_is_done_once_an_evaluation_follows_consent():
    plan = iep(evaluation_consent_on=D(2026, 9, 1), last_evaluation_on=D(2026, 10, 20))
    (item,) = by_kind(plan_deadlines(plan, D(2026, 11, 1), POLICY), DeadlineKind.INITIAL_EVALUATION)
    assert item.status is DeadlineStatus.DONE and item.due_on == D(2026, 10, 31)
    earlier = iep(evaluation_consent_on=D(2026, 9, 1), last_evaluation_on=D(2023, 5, 2))
    (item,) = by_kind(plan_deadlines(earlier, D(2026, 11, 1), POLICY), DeadlineKind.INITIAL_EVALUATION)
    assert item.status is DeadlineStatus.OVERDUE


# --- statuses and windows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("due", "status"), [
    (D(2026, 11, 23), DeadlineStatus.OVERDUE),
    (D(2026, 11, 24), DeadlineStatus.UPCOMING),   # due today is not yet overdue
    (D(2026, 12, 24), DeadlineStatus.UPCOMING),   # exactly 30 days away is inside the window
    (D(2026, 12, 25), DeadlineStatus.LATER),
])
def test_status_window_boundaries(due, status):
    assert status_for(due, D(2026, 11, 24), 30) is status


def test_a_wider_window_makes_more_deadlines_upcoming():
    plan = iep(last_meeting_on=D(2026, 2, 1))
    today = D(2026, 12, 1)
    assert plan_deadlines(plan, today, DeadlinePolicy(upcoming_window_days=30))[0].status is DeadlineStatus.LATER
    assert plan_deadlines(plan, today, DeadlinePolicy(upcoming_window_days=90))[0].status is DeadlineStatus.UPCOMING


def test_overdue_annual_review_from_last_meeting():
    plan = iep(last_meeting_on=D(2025, 10, 1), annual_review_due=D(2027, 1, 1))
    (item,) = by_kind(plan_deadlines(plan, D(2026, 11, 24), POLICY), DeadlineKind.ANNUAL_REVIEW)
    assert item.due_on == D(2026, 10, 1) and item.status is DeadlineStatus.OVERDUE   # the input wins over stored


def test_stored_dates_are_used_when_the_inputs_are_unknown():
    plan = iep(annual_review_due=D(2027, 3, 1), reevaluation_due=D(2028, 5, 15))
    items = plan_deadlines(plan, D(2026, 11, 24), POLICY)
    assert [(d.kind, d.due_on) for d in items] == [(DeadlineKind.ANNUAL_REVIEW, D(2027, 3, 1)),
                                                   (DeadlineKind.REEVALUATION, D(2028, 5, 15))]


# --- waived reevaluation ---------------------------------------------------------------------------------------

def test_300_303_b_2_waived_reevaluation_is_reported_as_waived_and_the_next_one_stays_due():
    # Before issue #11 a waiver hid the reevaluation for good (next_open was None); the agreement covers one.
    plan = iep(last_evaluation_on=D(2023, 1, 10), reevaluation_waived_on=D(2025, 11, 3))
    item, following = by_kind(plan_deadlines(plan, D(2026, 11, 24), POLICY), DeadlineKind.REEVALUATION)
    assert item.status is DeadlineStatus.WAIVED and item.due_on == D(2026, 1, 10)
    assert item.label == "reevaluation waived by agreement on Nov 3, 2025"
    assert following.due_on == D(2029, 1, 10) and following.status is DeadlineStatus.LATER
    assert next_open(plan_deadlines(plan, D(2026, 11, 24), POLICY)) == following


@pytest.mark.parametrize(("values", "waived", "field"), [
    ({"reevaluation_waived_on": None}, True, "reevaluation_waived_on"),                    # waiver without a date
    ({"reevaluation_waived_on": D(2026, 1, 5)}, False, "reevaluation_waived_on"),          # date without waiver
    ({"evaluation_consent_on": D(2026, 5, 1), "last_evaluation_on": D(2026, 4, 1)}, False, "last_evaluation_on"),
    ({"evaluation_consent_on": D(2026, 5, 1), "last_meeting_on": D(2026, 4, 30)}, False, "last_meeting_on"),
    ({"last_evaluation_on": D(2026, 5, 1), "reevaluation_waived_on": D(2026, 4, 1)}, True, "reevaluation_waived_on"),
    ({"last_meeting_on": D(2026, 11, 25)}, False, "last_meeting_on"),                      # in the future
])
def test_input_problems_are_reported_per_field(values, waived, field):
    problems = check_inputs(values, waived, D(2026, 11, 24))
    assert field in {p.field for p in problems}


def test_consistent_inputs_have_no_problem():
    values = {"evaluation_consent_on": D(2023, 9, 1), "last_evaluation_on": D(2023, 10, 15),
              "last_meeting_on": D(2026, 1, 12), "reevaluation_waived_on": D(2026, 6, 1), "last_504_review_on": None}
    assert check_inputs(values, True, D(2026, 11, 24)) == []


# --- 504 and other plan types ---------------------------------------------------------------------------------

def test_504_review_from_last_review_then_stored_then_effective_date():
    base = {"plan_type": "504", "effective_on": D(2026, 1, 15)}
    policy = DeadlinePolicy(review_504_months=12)
    today = D(2026, 11, 24)
    reviewed = plan_deadlines(iep(**base, last_504_review_on=D(2026, 3, 31), annual_review_due=D(2027, 6, 1)),
                              today, DeadlinePolicy(review_504_months=6))
    # Since issue #11 a 504 plan also has its periodic reevaluation (34 CFR 104.35(d)), three years from the start.
    assert [(d.kind, d.due_on) for d in reviewed] == [(DeadlineKind.REVIEW_504, D(2026, 9, 30)),
                                                      (DeadlineKind.REEVALUATION_504, D(2029, 1, 15))]
    assert reviewed[0].status is DeadlineStatus.OVERDUE and reviewed[0].label == "504 review"
    stored = by_kind(plan_deadlines(iep(**base, annual_review_due=D(2027, 6, 1)), today, policy),
                     DeadlineKind.REVIEW_504)
    assert [d.due_on for d in stored] == [D(2027, 6, 1)]
    fresh = by_kind(plan_deadlines(iep(**base), today, policy), DeadlineKind.REVIEW_504)
    assert [(d.due_on, d.status) for d in fresh] == [(D(2027, 1, 15), DeadlineStatus.LATER)]


def test_a_504_plan_has_no_iep_reevaluation_or_annual_iep_review():
    # The 504 plan's own periodic reevaluation (34 CFR 104.35(d)) is its only deadline here (no review date known).
    plan = iep(plan_type="504", last_evaluation_on=D(2020, 1, 1), last_meeting_on=D(2020, 1, 1))
    deadlines = plan_deadlines(plan, D(2026, 11, 24), POLICY)
    assert [(d.kind, d.due_on, d.status) for d in deadlines] == [
        (DeadlineKind.REEVALUATION_504, D(2023, 1, 1), DeadlineStatus.OVERDUE)]


def test_ended_plans_have_no_deadlines():
    assert plan_deadlines(iep(status="ended", last_meeting_on=D(2020, 1, 1)), D(2026, 11, 24), POLICY) == []


# --- progress reports ------------------------------------------------------------------------------------------

PERIODS = (ReportingPeriod(1, "Quarter 1", D(2026, 8, 24), D(2026, 10, 30), D(2026, 11, 6)),
           ReportingPeriod(2, "Quarter 2", D(2026, 11, 2), D(2027, 1, 22), D(2027, 1, 29)),
           ReportingPeriod(3, "Quarter 3", D(2027, 1, 25), D(2027, 4, 2), D(2027, 4, 9)))


def test_progress_reports_follow_the_reporting_calendar_for_plans_with_goals():
    cal = SchoolCalendar(periods=PERIODS)
    plan = iep(effective_on=D(2026, 9, 1), has_goals=True, finalized_period_ids=frozenset())
    reports = by_kind(plan_deadlines(plan, D(2027, 1, 10), POLICY, cal), DeadlineKind.PROGRESS_REPORT)
    assert [(d.due_on, d.status, d.label) for d in reports] == [
        (D(2026, 11, 6), DeadlineStatus.OVERDUE, "progress report (Quarter 1)"),
        (D(2027, 1, 29), DeadlineStatus.UPCOMING, "progress report (Quarter 2)"),
        (D(2027, 4, 9), DeadlineStatus.LATER, "progress report (Quarter 3)")]
    done = plan_deadlines(iep(effective_on=D(2026, 9, 1), has_goals=True, finalized_period_ids=frozenset({1})),
                          D(2027, 1, 10), POLICY, cal)
    assert by_kind(done, DeadlineKind.PROGRESS_REPORT)[0].status is DeadlineStatus.DONE


def test_no_progress_reports_without_goals_or_outside_the_plan_dates():
    cal = SchoolCalendar(periods=PERIODS)
    assert plan_deadlines(iep(has_goals=False), D(2027, 1, 10), POLICY, cal) == []
    late_start = iep(has_goals=True, effective_on=D(2026, 11, 1), end_on=D(2027, 1, 20))
    reports = by_kind(plan_deadlines(late_start, D(2027, 1, 10), POLICY, cal), DeadlineKind.PROGRESS_REPORT)
    assert [d.period_id for d in reports] == [2]


def test_school_periods_replace_district_periods_and_closures_add_up():
    district = ReportingPeriod(1, "Semester 1", D(2026, 8, 24), D(2027, 1, 15), D(2027, 1, 22))
    own = ReportingPeriod(2, "Trimester 1", D(2026, 8, 24), D(2026, 11, 20), D(2026, 12, 4))
    closures = [(None, Closure("Winter break", D(2026, 12, 21), D(2027, 1, 1))),
                ("Juniper Ridge High School", Closure("Staff day", D(2026, 10, 9), D(2026, 10, 9))),
                ("Other School", Closure("Other", D(2026, 10, 12), D(2026, 10, 12)))]
    periods = [(None, district), ("Juniper Ridge High School", own)]
    jr = merge_calendar("Juniper Ridge High School", periods, closures)
    assert [p.name for p in jr.periods] == ["Trimester 1"]
    assert [c.name for c in jr.closures] == ["Staff day", "Winter break"]
    elsewhere = merge_calendar("Cedar Middle School", periods, closures)
    assert [p.name for p in elsewhere.periods] == ["Semester 1"] and [c.name for c in elsewhere.closures] == ["Winter break"]


# --- many plans ------------------------------------------------------------------------------------------------

def test_all_deadlines_sorted_and_next_open_skips_done_and_waived():
    plans = [iep(plan_id=1, student_id=1, student_name="Briar Ashgrove", last_meeting_on=D(2026, 3, 1),
                 last_evaluation_on=D(2024, 1, 1), reevaluation_waived_on=D(2026, 2, 1)),
             iep(plan_id=2, student_id=2, student_name="Calder Brindle", plan_type="504",
                 last_504_review_on=D(2025, 12, 1))]
    items = all_deadlines(plans, D(2026, 11, 24), POLICY)
    assert [d.due_on for d in items] == sorted(d.due_on for d in items)
    first = next_open(items)
    assert first is not None and first.student_name == "Calder Brindle" and first.due_on == D(2026, 12, 1)
    assert first.status is DeadlineStatus.UPCOMING and first.days_left(D(2026, 11, 24)) == 7

"""Issue #11 deadline rules, each named for its regulation: the waiver that covers one reevaluation, the initial IEP
meeting 30 days after eligibility, the transition plan, the Section 504 reevaluation, "no later than one year",
timeliness kept with its reason, which deadline a newly recorded date meets, and accommodations that contradict."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lti_app.domain import plan_rules
from lti_app.domain.deadlines import (
    DeadlineKind,
    DeadlinePolicy,
    DeadlineStatus,
    LateReason,
    PlanInputs,
    completion,
    deadlines_met,
    initial_iep_meeting_due,
    latest_annual_review,
    next_open,
    plan_deadlines,
    reevaluation_schedule,
    transition_plan_due,
    waiver_covers,
)
from lti_app.domain.plan_rules import AccommodationFacts, check_plan_dates, contradictions

D = dt.date
POLICY = DeadlinePolicy()
TODAY = D(2026, 11, 24)


def plan(**kw: object) -> PlanInputs:
    base: dict[str, object] = {"plan_id": 1, "student_id": 10, "student_name": "Avery Quinlan", "plan_type": "IEP"}
    return PlanInputs(**{**base, **kw})  # type: ignore[arg-type]


def of(kind: DeadlineKind, p: PlanInputs, policy: DeadlinePolicy = POLICY, today: dt.date = TODAY) -> list:
    return [(d.due_on, d.status) for d in plan_deadlines(p, today, policy) if d.kind is kind]


# --- 34 CFR 300.303(b)(2): a waiver covers one reevaluation ---------------------------------------------------

@pytest.mark.parametrize(("last_eval", "waived_on", "covers", "expected"), [
    # The agreement covers the reevaluation due from the last evaluation; the next is 3 years after that date.
    (D(2023, 1, 10), D(2025, 11, 3), None, (D(2029, 1, 10), D(2026, 1, 10))),
    # Agreed late (after the due date): the cycle does not slide to the agreement date.
    (D(2023, 1, 10), D(2026, 5, 1), None, (D(2029, 1, 10), D(2026, 1, 10))),
    # A second agreement, recorded with what it covers: three years after that one.
    (D(2020, 3, 2), D(2025, 12, 1), D(2026, 3, 2), (D(2029, 3, 2), D(2026, 3, 2))),
    # Evaluated after the agreement anyway: the agreement is spent, the clock runs from the evaluation.
    (D(2026, 2, 1), D(2025, 11, 3), D(2026, 1, 10), (D(2029, 2, 1), None)),
    # Leap day: the waived one was due 28 Feb 2027, the next 28 Feb 2030.
    (D(2024, 2, 29), D(2027, 1, 5), None, (D(2030, 2, 28), D(2027, 2, 28))),
])
def test_300_303_b_2_waiver_restarts_three_year_clock_from_the_waived_due_date(last_eval, waived_on, covers,
                                                                               expected):
    schedule = reevaluation_schedule(last_eval, None, waived_on, covers)
    assert (schedule.due_on, schedule.waived_due_on) == expected


def test_300_303_b_2_waiver_no_longer_hides_the_reevaluation_forever():
    p = plan(last_evaluation_on=D(2020, 1, 10), reevaluation_waived_on=D(2022, 12, 1))
    assert of(DeadlineKind.REEVALUATION, p) == [(D(2023, 1, 10), DeadlineStatus.WAIVED),
                                               (D(2026, 1, 10), DeadlineStatus.OVERDUE)]


@pytest.mark.parametrize(("old_waived", "old_covers", "new_waived", "expected"), [
    (None, None, D(2025, 11, 3), D(2026, 1, 10)),                     # first agreement
    (D(2025, 11, 3), D(2026, 1, 10), D(2025, 11, 4), D(2026, 1, 10)),  # its date corrected: same reevaluation
    (D(2025, 11, 3), D(2026, 1, 10), D(2028, 12, 1), D(2029, 1, 10)),  # a second agreement: the next one
])
def test_300_303_b_2_each_agreement_covers_one_reevaluation(old_waived, old_covers, new_waived, expected):
    assert waiver_covers(D(2023, 1, 10), None, old_waived, old_covers, new_waived) == expected


# --- 34 CFR 300.323(c)(1): initial IEP meeting within 30 days of eligibility ----------------------------------

def test_300_323_c_1_initial_iep_meeting_is_due_30_days_after_eligibility():
    assert initial_iep_meeting_due(D(2026, 1, 31)) == D(2026, 3, 2)
    p = plan(status="draft", eligibility_determined_on=D(2026, 10, 20))
    assert of(DeadlineKind.INITIAL_IEP_MEETING, p) == [(D(2026, 11, 19), DeadlineStatus.OVERDUE)]
    held = plan(status="draft", eligibility_determined_on=D(2026, 10, 20), last_meeting_on=D(2026, 11, 12))
    assert of(DeadlineKind.INITIAL_IEP_MEETING, held) == [(D(2026, 11, 19), DeadlineStatus.DONE)]


# --- 34 CFR 300.320(b): transition plan in the IEP in effect at 16 --------------------------------------------

@pytest.mark.parametrize(("dob", "age", "annual", "expected"), [
    (D(2010, 9, 15), 16, D(2026, 5, 1), D(2026, 5, 1)),     # the review before the birthday makes that IEP
    (D(2010, 9, 15), 16, D(2024, 5, 1), D(2026, 5, 1)),     # ... counted forward from an earlier review date
    (D(2010, 3, 15), 16, D(2026, 5, 1), D(2026, 3, 14)),    # review after the birthday: amend before it
    (D(2010, 3, 15), 16, None, D(2026, 3, 14)),             # no review date known
    (D(2012, 9, 15), 14, D(2026, 5, 1), D(2026, 5, 1)),     # a State that starts at 14
    (D(2010, 2, 28), 16, D(2026, 2, 28), D(2026, 2, 27)),   # review on the birthday is too late
])
def test_300_320_b_transition_plan_due_at_the_meeting_before_the_birthday(dob, age, annual, expected):
    assert transition_plan_due(dob, age, annual) == expected


def test_300_320_b_transition_plan_is_done_once_recorded_and_follows_the_state_age():
    p = plan(date_of_birth=D(2011, 1, 20), last_meeting_on=D(2025, 12, 1))
    assert of(DeadlineKind.TRANSITION_PLAN, p) == [(D(2026, 12, 1), DeadlineStatus.UPCOMING)]
    assert of(DeadlineKind.TRANSITION_PLAN, p, DeadlinePolicy(transition_age=14)) == [
        (D(2025, 1, 19), DeadlineStatus.OVERDUE)]
    done = plan(date_of_birth=D(2011, 1, 20), last_meeting_on=D(2025, 12, 1), transition_plan_on=D(2025, 12, 1))
    assert of(DeadlineKind.TRANSITION_PLAN, done) == [(D(2026, 12, 1), DeadlineStatus.DONE)]
    assert of(DeadlineKind.TRANSITION_PLAN, plan(last_meeting_on=D(2025, 12, 1))) == []   # no date of birth


# --- 34 CFR 104.35(d): Section 504 periodic reevaluation ------------------------------------------------------

def test_104_35_d_504_reevaluation_on_the_district_cycle_besides_the_review():
    p = plan(plan_type="504", effective_on=D(2024, 8, 31), last_504_review_on=D(2026, 9, 1))
    kinds = {d.kind: d.due_on for d in plan_deadlines(p, TODAY, POLICY)}
    assert kinds == {DeadlineKind.REVIEW_504: D(2027, 9, 1), DeadlineKind.REEVALUATION_504: D(2027, 8, 31)}
    evaluated = plan(plan_type="504", effective_on=D(2024, 8, 31), last_evaluation_on=D(2025, 8, 31))
    assert of(DeadlineKind.REEVALUATION_504, evaluated, DeadlinePolicy(reevaluation_504_months=24)) == [
        (D(2027, 8, 31), DeadlineStatus.LATER)]


# --- 34 CFR 300.324(b)(1)(i): no later than one year -----------------------------------------------------------

@pytest.mark.parametrize(("effective", "meeting", "latest"), [
    (D(2026, 3, 1), None, D(2027, 3, 1)),          # common year: 366 days would be 2 March, a day late
    (D(2024, 2, 29), None, D(2025, 2, 28)),
    (D(2026, 3, 1), D(2026, 2, 10), D(2027, 2, 10)),   # the last meeting binds when it came first
])
def test_300_324_b_1_i_annual_review_no_later_than_one_calendar_year(effective, meeting, latest):
    assert latest_annual_review(effective, meeting) == latest


def test_300_324_b_1_i_annual_review_366_days_after_is_refused_in_a_common_year():
    _, problems = check_plan_dates("IEP", "2026-03-01", "", "2027-03-02", "")
    assert [p.field for p in problems] == ["annual_review_due"] and "on or before 2027-03-01" in problems[0].message
    dates, problems = check_plan_dates("IEP", "2026-03-01", "", "2027-03-01", "")
    assert problems == [] and dates is not None
    _, problems = check_plan_dates("IEP", "2026-03-01", "", "2027-02-20", "", last_meeting_on=D(2026, 2, 10))
    assert "the last IEP meeting 2026-02-10" in problems[0].message


# --- timeliness kept: 34 CFR 300.301(d) exceptions, SPP/APR Indicator 11 ----------------------------------------

def test_300_301_d_late_initial_evaluation_is_kept_with_days_and_an_excepted_reason():
    done, problems = completion(DeadlineKind.INITIAL_EVALUATION, D(2026, 10, 31), D(2026, 11, 9),
                                "parent_did_not_produce_child")
    assert problems == [] and done is not None
    assert (done.days_late, done.late_reason, done.excepted) == (9, LateReason.PARENT_DID_NOT_PRODUCE_CHILD, True)
    other, _ = completion(DeadlineKind.INITIAL_EVALUATION, D(2026, 10, 31), D(2026, 11, 2), "staff_unavailable")
    assert other is not None and other.late and not other.excepted


@pytest.mark.parametrize(("kind", "reason", "message"), [
    (DeadlineKind.INITIAL_EVALUATION, "", "2 days after it was due"),
    (DeadlineKind.ANNUAL_REVIEW, "enrolled_elsewhere", "excuses only the initial-evaluation timeline"),
    (DeadlineKind.ANNUAL_REVIEW, "because", "Choose one of the listed reasons"),
])
def test_300_301_d_late_without_a_usable_reason_is_refused(kind, reason, message):
    done, problems = completion(kind, D(2026, 10, 31), D(2026, 11, 2), reason)
    assert done is None and message in problems[0].message


def test_300_324_b_1_i_annual_review_held_on_time_drops_a_reason():
    done, problems = completion(DeadlineKind.ANNUAL_REVIEW, D(2026, 10, 31), D(2026, 10, 31), "other")
    assert problems == [] and done is not None and done.days_late == 0 and done.late_reason is None


def test_300_301_c_1_recording_the_evaluation_meets_the_initial_evaluation_not_the_reevaluation():
    old = plan(status="draft", evaluation_consent_on=D(2026, 9, 1))
    new = plan(status="draft", evaluation_consent_on=D(2026, 9, 1), last_evaluation_on=D(2026, 11, 3))
    (met,) = deadlines_met(old, new, POLICY, {})
    assert (met.kind, met.due_on, met.completed_on, met.corrects) == (
        DeadlineKind.INITIAL_EVALUATION, D(2026, 10, 31), D(2026, 11, 3), None)


def test_300_324_b_1_i_a_new_meeting_meets_the_annual_review_and_a_retyped_date_corrects_it():
    old = plan(last_meeting_on=D(2025, 10, 1))
    new = plan(last_meeting_on=D(2026, 10, 6))
    (met,) = deadlines_met(old, new, POLICY, {})
    assert (met.kind, met.due_on, met.completed_on) == (DeadlineKind.ANNUAL_REVIEW, D(2026, 10, 1), D(2026, 10, 6))
    recorded = {(DeadlineKind.ANNUAL_REVIEW, D(2026, 10, 6)): D(2026, 10, 1)}
    (fix,) = deadlines_met(new, plan(last_meeting_on=D(2026, 10, 5)), POLICY, recorded)
    assert (fix.due_on, fix.completed_on, fix.corrects) == (D(2026, 10, 1), D(2026, 10, 5), D(2026, 10, 6))


def test_300_323_c_1_first_meeting_after_eligibility_meets_the_initial_iep_meeting():
    old = plan(status="draft", eligibility_determined_on=D(2026, 10, 1))
    new = plan(status="draft", eligibility_determined_on=D(2026, 10, 1), last_meeting_on=D(2026, 11, 4))
    (met,) = deadlines_met(old, new, POLICY, {})
    assert (met.kind, met.due_on) == (DeadlineKind.INITIAL_IEP_MEETING, D(2026, 10, 31))


def test_300_303_b_2_reevaluation_after_a_waiver_meets_the_next_one():
    old = plan(last_evaluation_on=D(2023, 1, 10), reevaluation_waived_on=D(2025, 11, 3),
               reevaluation_waiver_covers=D(2026, 1, 10))
    new = plan(last_evaluation_on=D(2028, 12, 1), reevaluation_waived_on=D(2025, 11, 3),
               reevaluation_waiver_covers=D(2026, 1, 10))
    (met,) = deadlines_met(old, new, POLICY, {})
    assert (met.kind, met.due_on) == (DeadlineKind.REEVALUATION, D(2029, 1, 10))
    assert next_open(plan_deadlines(new, TODAY, POLICY)).due_on == D(2031, 12, 1)  # type: ignore[union-attr]


def test_moving_a_date_earlier_without_a_kept_completion_meets_nothing():
    assert deadlines_met(plan(last_meeting_on=D(2026, 10, 6)), plan(last_meeting_on=D(2026, 9, 6)), POLICY, {}) == []


# --- accommodations that contradict --------------------------------------------------------------------------

def acc(text: str, applies: str = "tests", subjects: tuple[str, ...] = (), mult: str | None = None,
        attempts: int | None = None) -> AccommodationFacts:
    return AccommodationFacts(text, applies, subjects, Decimal(mult) if mult else None, attempts)


@pytest.mark.parametrize(("items", "clash"), [
    ([acc("Tests: 1.5x time", mult="1.5"), acc("Tests: double time", mult="2")], "time_multiplier"),
    ([acc("All work: 1.5x", "all", mult="1.5"), acc("Tests: 2x", "tests", mult="2")], "time_multiplier"),
    ([acc("Math tests: 1.5x", subjects=("Mathematics",), mult="1.5"), acc("Tests: 2x", mult="2")], "time_multiplier"),
    ([acc("Retake once", attempts=1), acc("Retake twice", attempts=2)], "extra_attempts"),
    ([acc("Tests: 1.5x", mult="1.5"), acc("Classwork: 2x", "classroom", mult="2")], None),
    ([acc("Math: 1.5x", subjects=("Mathematics",), mult="1.5"), acc("English: 2x", subjects=("English",), mult="2")],
     None),
    ([acc("Tests: 1.5x", mult="1.5"), acc("Tests 1.5x in a quiet room", mult="1.50")], None),
])
def test_contradicting_single_valued_accommodations_are_found(items, clash):
    found = contradictions(items)
    assert [c.parameter for c in found] == ([clash] if clash else [])
    if clash:
        assert items[0].text in found[0].message and items[1].text in found[0].message


def test_contradiction_message_names_the_shared_work():
    (c,) = contradictions([acc("Math tests: 1.5x", subjects=("Mathematics",), mult="1.5"),
                           acc("All tests: 2x", mult="2")])
    assert "1.5x" in c.message and "2x" in c.message and "tests in Mathematics" in c.message
    assert plan_rules.SINGLE_VALUED_COLUMN[c.parameter] == "time_multiplier"


# --- settings ------------------------------------------------------------------------------------------------

def test_300_320_b_transition_age_setting_is_16_at_the_latest(tmp_path):
    from lti_app.settings import SettingsError, load_settings

    env = {"CASELOAD_ENV": "test"}
    loaded = load_settings(env, instance_path=str(tmp_path))
    assert (loaded.transition_age, loaded.reevaluation_504_months) == (16, 36)
    assert load_settings({**env, "CASELOAD_TRANSITION_AGE": "14"}, instance_path=str(tmp_path)).transition_age == 14
    with pytest.raises(SettingsError, match="CASELOAD_TRANSITION_AGE"):
        load_settings({**env, "CASELOAD_TRANSITION_AGE": "18"}, instance_path=str(tmp_path))
    with pytest.raises(SettingsError, match="CASELOAD_REEVALUATION_504_MONTHS"):
        load_settings({**env, "CASELOAD_REEVALUATION_504_MONTHS": "0"}, instance_path=str(tmp_path))

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


# --- issue #11: closures, make-ups and the running ledger ------------------------------------------------------
# IDEA 34 CFR 300.320(a)(4) and (a)(7): the IEP states each service with its frequency and duration; 300.323(c)(2):
# services are made available as the IEP says; 300.151(b)(1): compensatory services for services not provided.

from lti_app.domain.service_minutes import (  # noqa: E402
    MAKE_UP,
    closed_weekdays,
    ledger,
)

WEEK1 = (D(2026, 11, 2), D(2026, 11, 8))


@pytest.mark.parametrize(("closures", "required"), [
    ([], 60),
    ([(D(2026, 11, 2), D(2026, 11, 6))], 0),             # the whole week closed: none required
    ([(D(2026, 10, 31), D(2026, 11, 9))], 0),            # a break spanning the week and its weekends
    ([(D(2026, 11, 5), D(2026, 11, 6))], 36),            # Thursday and Friday closed: 3 of 5 days
    ([(D(2026, 11, 6), D(2026, 11, 6))], 48),            # one day closed: 4 of 5 days
    ([(D(2026, 11, 7), D(2026, 11, 8))], 60),            # a weekend "closure" changes nothing
])
def test_300_320_a_7_school_closures_require_no_minutes_and_partly_closed_weeks_their_share(closures, required):
    closed = closed_weekdays(closures)
    assert required_minutes(60, *WEEK1, D(2026, 1, 1), None, closed) == required


def test_300_320_a_7_closure_and_partial_coverage_combine_by_open_school_days():
    closed = closed_weekdays([(D(2026, 11, 6), D(2026, 11, 6))])  # Friday closed
    # The service starts on Wednesday: Wednesday and Thursday are open and covered, 2 of the week's 5 weekdays.
    assert required_minutes(60, *WEEK1, D(2026, 11, 4), None, closed) == 24
    month = tally(240, "month", D(2026, 11, 1), D(2026, 11, 30), D(2026, 1, 1), None, [], D(2026, 12, 3),
                  closed_weekdays([(D(2026, 11, 23), D(2026, 11, 27))]))  # Thanksgiving week: 16 of 21 weekdays
    assert month.required == 183 and month.closed_days == 5


def test_300_151_b_1_compensatory_minutes_owed_exclude_only_what_the_student_missed():
    sessions = [SessionFact(D(2026, 11, 2), 20, "delivered"), SessionFact(D(2026, 11, 3), 20, "student_absent"),
                SessionFact(D(2026, 11, 4), 20, "provider_absent")]
    p = tally(90, "week", *WEEK1, D(2026, 1, 1), None, sessions, D(2026, 12, 3))
    # 90 required, 20 delivered, 20 missed by the student: 50 owed (20 the provider missed, 30 never scheduled).
    assert p.owed == 50
    nothing_logged = tally(90, "week", *WEEK1, D(2026, 1, 1), None, [], D(2026, 12, 3))
    assert nothing_logged.owed == 90
    assert tally(90, "week", *WEEK1, D(2026, 1, 1), None, [], D(2026, 11, 5)).owed == 0  # not over yet


def _weeks(n: int, start: dt.date = D(2026, 9, 7)) -> list[dt.date]:
    return [start + dt.timedelta(weeks=i) for i in range(n)]


def test_300_151_b_1_minutes_owed_never_vanish_after_six_periods():
    # A provider missed the first week of a 30-minute weekly service; every later week was delivered in full.
    sessions = [SessionFact(D(2026, 9, 7), 30, "provider_absent")]
    sessions += [SessionFact(day, 30, "delivered") for day in _weeks(20)[1:]]
    led = ledger(30, "week", D(2026, 9, 7), None, sessions, today=D(2027, 1, 27))
    assert len([r for r in led.rows if r.period.complete]) > 6
    assert led.still_owed == 30 and led.missed_by_provider == 30 and led.owed == 30


def test_300_151_b_1_make_up_sessions_pay_down_what_is_owed():
    sessions = [SessionFact(D(2026, 9, 7), 30, "provider_absent"), SessionFact(D(2026, 9, 14), 30, "delivered"),
                SessionFact(D(2026, 9, 16), 20, "delivered", MAKE_UP)]
    led = ledger(30, "week", D(2026, 9, 7), D(2026, 9, 20), sessions, today=D(2026, 10, 1))
    assert (led.required, led.delivered, led.missed_by_provider, led.made_up, led.still_owed) == (60, 30, 30, 20, 10)
    assert [r.balance for r in led.rows] == [30, 10]


def test_300_151_b_1_extra_regular_minutes_later_do_not_offset_minutes_owed():
    sessions = [SessionFact(D(2026, 9, 7), 30, "provider_absent"), SessionFact(D(2026, 9, 14), 60, "delivered")]
    led = ledger(30, "week", D(2026, 9, 7), D(2026, 9, 20), sessions, today=D(2026, 10, 1))
    assert led.delivered == 60 and led.still_owed == 30


def test_300_151_b_1_a_make_up_pays_what_is_owed_and_never_pre_pays_a_later_miss():
    sessions = [SessionFact(D(2026, 9, 8), 30, "delivered", MAKE_UP),  # nothing owed yet
                SessionFact(D(2026, 9, 7), 30, "delivered"), SessionFact(D(2026, 9, 14), 30, "provider_absent")]
    led = ledger(30, "week", D(2026, 9, 7), D(2026, 9, 20), sessions, today=D(2026, 10, 1))
    assert led.made_up == 30 and led.still_owed == 30


def test_300_151_b_1_a_make_up_in_the_week_of_the_miss_settles_it():
    sessions = [SessionFact(D(2026, 9, 7), 30, "provider_absent"), SessionFact(D(2026, 9, 10), 30, "delivered", MAKE_UP)]
    assert ledger(30, "week", D(2026, 9, 7), D(2026, 9, 13), sessions, today=D(2026, 10, 1)).still_owed == 0


def test_300_320_a_7_a_closed_week_in_the_ledger_owes_nothing():
    closed = closed_weekdays([(D(2026, 9, 14), D(2026, 9, 18))])
    sessions = [SessionFact(D(2026, 9, 7), 30, "delivered"), SessionFact(D(2026, 9, 21), 30, "delivered")]
    led = ledger(30, "week", D(2026, 9, 7), None, sessions, today=D(2026, 9, 28), closed=closed)
    assert led.required == 60 and led.still_owed == 0 and led.closed_days == 5


def test_the_ledger_runs_from_the_service_start_and_shows_the_current_period_in_progress():
    led = ledger(100, "month", D(2026, 10, 15), None, [SessionFact(D(2026, 12, 1), 40, "delivered", MAKE_UP)],
                 today=D(2026, 12, 3))
    assert [r.period.start for r in led.rows] == [D(2026, 10, 1), D(2026, 11, 1), D(2026, 12, 1)]
    assert led.current is not None and led.current.start == D(2026, 12, 1)
    assert led.required == 55 + 100 and led.still_owed == 155 - 40
    assert ledger(30, "week", D(2027, 1, 4), None, [], today=D(2026, 12, 3)).rows == ()


def test_student_absent_make_ups_pay_nothing():
    sessions = [SessionFact(D(2026, 9, 7), 30, "provider_absent"), SessionFact(D(2026, 9, 9), 30, "student_absent",
                                                                              MAKE_UP)]
    led = ledger(30, "week", D(2026, 9, 7), D(2026, 9, 13), sessions, today=D(2026, 10, 1))
    assert led.made_up == 0 and led.still_owed == 30 and led.missed_by_student == 0


def test_the_fast_ledger_agrees_with_period_by_period_tallies():
    """``ledger_totals`` (the caseload's path, no per-period objects) against ``tally`` for every period, on
    varied services, sessions and closures."""
    import random

    from lti_app.domain.service_minutes import ledger_totals, period_sums, periods_between

    rng = random.Random(11)
    today = D(2026, 12, 3)
    for _ in range(200):
        period = rng.choice(["week", "month"])
        starts_on = today - dt.timedelta(days=rng.randint(0, 300))
        ends_on = rng.choice([None, starts_on + dt.timedelta(days=rng.randint(0, 200))])
        closures = [(d, d + dt.timedelta(days=rng.randint(0, 9)))
                    for d in (today - dt.timedelta(days=rng.randint(0, 320)) for _ in range(rng.randint(0, 4)))]
        closed = closed_weekdays(closures)
        sessions = [SessionFact(starts_on + dt.timedelta(days=rng.randint(0, 300)), rng.randint(1, 90),
                                rng.choice(["delivered", "student_absent", "provider_absent"]),
                                rng.choice(["session", "session", MAKE_UP]))
                    for _ in range(rng.randint(0, 40))]
        minutes = rng.randint(10, 300)
        full = ledger(minutes, period, starts_on, ends_on, sessions, today, closed)
        fast = ledger_totals(minutes, period, starts_on, ends_on, period_sums(sessions, period), today, closed)
        assert (fast.required, fast.delivered, fast.missed_by_student, fast.missed_by_provider, fast.made_up,
                fast.still_owed, fast.owed, fast.closed_days, fast.last_complete) == (
            full.required, full.delivered, full.missed_by_student, full.missed_by_provider, full.made_up,
            full.still_owed, full.owed, full.closed_days, full.last_complete)
        last = min(today, ends_on) if ends_on else today
        expected = [tally(minutes, period, a, b, starts_on, ends_on, sessions, today, closed)
                    for a, b in periods_between(starts_on, last, period)]
        assert [r.period for r in full.rows] == expected

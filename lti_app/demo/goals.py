"""Demo goals and deadlines: a 2026-27 reporting calendar (quarters) with closures, meeting and evaluation dates on
the demo plans (one reevaluation waived by agreement, one overdue annual review, one initial evaluation running),
two measurable goals per IEP with fortnightly progress data, and Quarter 1 progress reports (one still a draft).
All fictional. Idempotent: nothing is added when goals exist."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.demo.common import DemoDistrict
from lti_app.domain.deadlines import DeadlinePolicy
from lti_app.models import (
    Goal,
    Plan,
    ProgressPoint,
    ProgressReport,
    ProgressReportGoal,
    ReportingPeriod,
    SchoolClosure,
)
from lti_app.services.casework.deadlines import recompute

ANCHOR = dt.date(2026, 11, 24)
"""The day the calendar below was written for. Seeding on another day shifts every demo date by the same number of
days, so the demo district looks the same (an overdue review, a report due soon...) whenever it is created."""
PERIODS = [("Quarter 1", "2026-08-24", "2026-10-30", "2026-11-06"), ("Quarter 2", "2026-11-02", "2027-01-22", "2027-01-29"),
           ("Quarter 3", "2027-01-25", "2027-04-02", "2027-04-09"), ("Quarter 4", "2027-04-05", "2027-06-11", "2027-06-18")]
CLOSURES = [("Thanksgiving break", "2026-11-25", "2026-11-27"), ("Winter break", "2026-12-21", "2027-01-01"),
            ("Martin Luther King Jr. Day", "2027-01-18", "2027-01-18"), ("Spring break", "2027-03-22", "2027-03-26")]
# (area, description, baseline, target, unit, method, weekly gain)
GOALS = [
    ("reading", "Given a grade-level passage, the student will read aloud at 110 words correct per minute with at "
     "least 95% accuracy on three consecutive weekly probes.", 68, 110, "words correct per minute",
     "Weekly 1-minute oral reading fluency probe", 1.2),
    ("mathematics", "Given ten multi-step word problems, the student will choose an operation and solve them with 80% "
     "accuracy on two consecutive probes.", 35, 80, "% correct", "Fortnightly curriculum-based probe", 1.4),
    ("writing", "Using a graphic organiser, the student will write a five-paragraph response scoring 3 of 4 on the "
     "district rubric.", 1.5, 3, "rubric score", "Monthly writing sample, district rubric", 0.05),
    ("behaviour", "During independent work the student will stay on task in 80% of 5-minute intervals across three "
     "class periods.", 45, 80, "% of intervals", "Momentary time sampling, 3 periods a week", 0.9),
    ("social_emotional", "When frustrated, the student will use a taught calming strategy, with at most one office "
     "referral per month.", 4, 1, "referrals per month", "Office referral count", -0.08),
]
NOTES = ["Probe given after a fire drill.", "Student asked to retry; first score kept.", "Substitute teacher today."]


def _d(text: str) -> dt.date:
    """A date of the calendar below, shifted by as many whole weeks as the district's today is past ``ANCHOR``
    (rounded): whole weeks keep every quarter starting on a Monday, MLK Day on a Monday and Thanksgiving break on
    Wednesday to Friday, within three days of the standing the demo was written for."""
    return dt.date.fromisoformat(text) + dt.timedelta(weeks=round((clock.today() - ANCHOR).days / 7))


def closed_days() -> set[dt.date]:
    """The days the demo calendar closes school (other demo seeders hold no session or meeting on them)."""
    days: set[dt.date] = set()
    for _name, starts, ends in CLOSURES:
        day, last = _d(starts), _d(ends)
        while day <= last:
            days.add(day)
            day += dt.timedelta(days=1)
    return days


def school_day(day: dt.date, *, later: bool) -> dt.date:
    """``day`` moved to the nearest school weekday (not a weekend, not a closure): ``later`` for a date ahead of
    today (a meeting scheduled), earlier for one behind it (a meeting held, a call made), so neither crosses today."""
    closed = closed_days()
    step = dt.timedelta(days=1 if later else -1)
    while day.weekday() >= 5 or day in closed:
        day += step
    return day


def _calendar(session: Session) -> list[ReportingPeriod]:
    periods = []
    for name, starts, ends, due in PERIODS:
        period = session.scalars(select(ReportingPeriod).where(ReportingPeriod.school == "", ReportingPeriod.name == name,
                                                               ReportingPeriod.starts_on == _d(starts))).one_or_none()
        if period is None:
            period = ReportingPeriod(school="", name=name, starts_on=_d(starts), ends_on=_d(ends), report_due_on=_d(due))
            session.add(period)
        periods.append(period)
    for name, starts, ends in CLOSURES:
        exists = session.scalar(select(SchoolClosure.id).where(SchoolClosure.school == "", SchoolClosure.name == name,
                                                               SchoolClosure.starts_on == _d(starts)))
        if exists is None:
            session.add(SchoolClosure(school="", name=name, starts_on=_d(starts), ends_on=_d(ends)))
    session.flush()
    return periods


def seed(session: Session, district: DemoDistrict) -> None:
    today = clock.today()  # the demo's today (as in demo/plans.py), in district time
    periods = _calendar(session)
    if session.scalar(select(Goal.id).limit(1)) is not None:
        return
    rng = random.Random(7)  # noqa: S311 - deterministic demo data, not security
    policy = DeadlinePolicy()
    plans = list(session.scalars(select(Plan).where(Plan.status == "active").order_by(Plan.id)))
    ieps = [p for p in plans if p.plan_type == "IEP"]
    for i, plan in enumerate(plans):
        start = plan.effective_on or today - dt.timedelta(days=60)
        if plan.plan_type == "504":
            plan.last_504_review_on = start
            plan.last_evaluation_on = start - dt.timedelta(days=40)
        elif plan.plan_type == "IEP":
            plan.last_meeting_on = start
            # Evaluations between 1 and almost 3 years ago, so some reevaluations fall due this year.
            plan.last_evaluation_on = start - dt.timedelta(days=200 + 97 * i % 800)
        recompute(plan, policy)
    if ieps:
        # One annual review overdue: the last meeting was more than a year ago.
        ieps[0].last_meeting_on = today - dt.timedelta(days=380)
        # One reevaluation waived by agreement of the parent and the district (34 CFR 300.303(b)(2)).
        if len(ieps) > 1:
            ieps[1].last_evaluation_on = today - dt.timedelta(days=3 * 365 - 20)
            ieps[1].reevaluation_waived_on = today - dt.timedelta(days=45)
        # One student referred for a new area of need: consent signed, evaluation running.
        if len(ieps) > 2:
            ieps[2].evaluation_consent_on = today - dt.timedelta(days=41)
        for plan in ieps[:3]:
            recompute(plan, policy)
    session.flush()

    q1 = periods[0]
    for i, plan in enumerate(ieps):
        chosen = [GOALS[i % len(GOALS)], GOALS[(i + 2) % len(GOALS)]]
        # Baselines come from the evaluation before the plan took effect: at least ten weeks of data on each goal.
        effective = plan.effective_on or today - dt.timedelta(days=90)
        # A school weekday, so the fortnightly probes that follow it fall on school weekdays too.
        baseline_on = school_day(max(today - dt.timedelta(days=150), min(effective, today - dt.timedelta(days=70))),
                                 later=False)
        goals = []
        for pos, (area, text, base, target, unit, method, gain) in enumerate(chosen):
            goal = Goal(student_id=plan.student_id, plan_id=plan.id, area=area, description=text,
                        baseline=Decimal(str(base)), target=Decimal(str(target)), unit=unit, measurement_method=method,
                        baseline_on=baseline_on, target_on=baseline_on + dt.timedelta(days=330), status="active",
                        position=pos + 1, created_by_id=plan.case_manager_id)
            session.add(goal)
            session.flush()
            goals.append(goal)
            day, week = baseline_on + dt.timedelta(days=7), 1
            pace = gain * (0.4 + 0.9 * rng.random())  # some students ahead of the aim line, some behind
            closed = closed_days()
            while day <= today:
                if day in closed:  # no probe while school is closed
                    day, week = day + dt.timedelta(days=14), week + 1
                    continue
                value = base + pace * week * 2 + rng.uniform(-abs(gain) * 2, abs(gain) * 2)
                note = rng.choice(NOTES) if rng.random() < 0.12 else ""
                session.add(ProgressPoint(goal_id=goal.id, measured_on=day, value=Decimal(str(round(value, 1))),
                                          note_encrypted=cipher().encrypt(note) if note else None,
                                          recorded_by_id=plan.case_manager_id))
                day += dt.timedelta(days=14)
                week += 1
        if plan.effective_on is not None and plan.effective_on > q1.ends_on:
            continue
        final = i % 4 != 1  # every fourth plan's Q1 report is still a draft (overdue on the deadlines page)
        report = ProgressReport(student_id=plan.student_id, plan_id=plan.id, period_id=q1.id,
                                status="final" if final else "draft", created_by_id=plan.case_manager_id,
                                updated_by_id=plan.case_manager_id,
                                narrative_encrypted=cipher().encrypt(
                                    "Steady progress this quarter; practice at home with the reading log is helping."),
                                finalized_by_id=plan.case_manager_id if final else None,
                                finalized_at=utcnow() if final else None)
        session.add(report)
        session.flush()
        for goal, rating in zip(goals, ("on_track", "some_progress"), strict=False):
            session.add(ProgressReportGoal(report_id=report.id, goal_id=goal.id, rating=rating))
    session.flush()

"""The demo district's casework: seeded once (idempotent), with shortfalls on the caseload home and one crisis entry."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from lti_app import clock
from lti_app.demo.district import seed_demo
from lti_app.models import (
    CrisisEntry,
    Goal,
    Meeting,
    Person,
    Plan,
    ProgressPoint,
    Referral,
    ReportingPeriod,
    SchoolClosure,
    ServiceRequirement,
    ServiceSession,
    Student,
)
from tests.support.casework_world import text_of


def test_demo_casework_is_seeded_once_and_shows_shortfalls(app, client, token_for, db_session):
    settings = app.config["CASELOAD"]
    seed_demo(db_session, settings)
    db_session.commit()
    counts = {m.__tablename__: db_session.scalar(select(func.count()).select_from(m))
              for m in (ServiceRequirement, ServiceSession, Referral, CrisisEntry)}
    seed_demo(db_session, settings)
    db_session.commit()
    again = {m.__tablename__: db_session.scalar(select(func.count()).select_from(m))
             for m in (ServiceRequirement, ServiceSession, Referral, CrisisEntry)}
    assert counts == again and counts["crisis_entries"] == 1 and counts["service_requirements"] >= 8
    manager = db_session.scalars(select(Person).where(Person.lti_sub == "demo-cm-1")).one()
    page = text_of(client.get("/casework/", query_string={"t": token_for(manager, None)}))
    assert " short · " in page and "on track" in page


def test_demo_dates_are_plausible_for_a_high_school_on_the_day_it_is_seeded(app, db_session):
    """Seed data is relative to the district's today: nothing held in the future, no probe before its baseline, high
    school ages, sessions and meetings on school weekdays, services inside their plan, quarters that start Mondays."""
    with app.app_context():
        seed_demo(db_session, app.config["CASELOAD"])
        db_session.commit()
        today = clock.today()
    closed = set()
    for c in db_session.scalars(select(SchoolClosure)):
        closed |= {c.starts_on + dt.timedelta(days=n) for n in range((c.ends_on - c.starts_on).days + 1)}
    meetings = list(db_session.scalars(select(Meeting)))
    assert meetings and all(m.meets_on <= today for m in meetings if m.status == "held")
    assert all(m.meets_on > today for m in meetings if m.status == "scheduled")
    assert all(m.meets_on.weekday() < 5 and m.meets_on not in closed for m in meetings)
    assert all(not m.notice_sent_on or m.notice_sent_on <= m.meets_on for m in meetings)
    before_baseline = db_session.execute(select(func.count()).select_from(ProgressPoint).join(Goal)
                                         .where(ProgressPoint.measured_on < Goal.baseline_on)).scalar()
    assert before_baseline == 0
    assert db_session.scalar(select(func.max(ProgressPoint.measured_on))) <= today
    for s in db_session.scalars(select(Student).where(Student.date_of_birth.is_not(None))):
        age = (today - s.date_of_birth).days / 365.25
        assert 14 <= age - (int(s.grade) - 9) < 15.5, (s.grade, age)  # 14 or 15 in grade 9, a year more a grade
    sessions = list(db_session.scalars(select(ServiceSession)))
    assert sessions and all(x.held_on <= today and x.held_on.weekday() < 5 and x.held_on not in closed
                            for x in sessions)
    for req, plan in db_session.execute(select(ServiceRequirement, Plan).join(Plan, Plan.id == ServiceRequirement.plan_id)):
        assert plan.effective_on is None or req.starts_on >= plan.effective_on
    periods = sorted(db_session.scalars(select(ReportingPeriod)), key=lambda p: p.starts_on)
    assert [p.starts_on.weekday() for p in periods] == [0] * len(periods)
    assert all(a.ends_on < b.starts_on or a.ends_on <= b.starts_on + dt.timedelta(days=7)
               for a, b in zip(periods, periods[1:], strict=False))
    assert all(p.starts_on <= p.ends_on < p.report_due_on for p in periods)

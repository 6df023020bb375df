"""Issue #11's 200-student caseload home, made cheaper without changing what it shows, on PostgreSQL and SQLite:
the service-minute figures the page sums in the database equal each service's full ledger over varied data, the
remembered next deadline follows a changed plan date at once, and the page leaves (almost) nothing for the garbage
collector. (That the page's read-only transaction ends without a ROLLBACK is ``test_read_only_transactions``.)"""

from __future__ import annotations

import datetime as dt
import gc
import random
from typing import Any

import pytest
from sqlalchemy import event, select

from lti_app import clock
from lti_app.domain.dates import shown_day
from lti_app.domain.service_minutes import last_completed
from lti_app.models import Plan, PlanVersion, RoleGrant, SchoolClosure, ServiceRequirement, ServiceSession, Student
from lti_app.services.casework.deadlines import load_calendars
from lti_app.services.casework.service_minutes import closed_days_of, ledger_summaries, services_for, shortfalls
from tests.support import factories as f
from tests.support.casework_world import text_of

TODAY = clock.today()
BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


def _varied_caseload(s: Any, seed: int) -> tuple[Any, list[int]]:
    """A case manager with students in three schools (one with no school recorded), district and school closures
    (a whole week, part of a week, a closure spanning a month end), weekly and monthly services that start in the
    middle of a week or month, end in the past or run on, and sessions of every attendance and kind, removed ones
    included."""
    rng = random.Random(seed)
    plat = f.platform(s)
    me = f.person(s, plat, "Tamsin Larkspur", kind="staff")
    s.add(RoleGrant(person_id=me.id, role="case_manager"))
    monday = TODAY - dt.timedelta(days=TODAY.weekday())
    s.add_all([SchoolClosure(school="", name="Winter break", starts_on=monday - dt.timedelta(weeks=6),
                             ends_on=monday - dt.timedelta(weeks=6) + dt.timedelta(days=4)),
               SchoolClosure(school="Cedar", name="Teacher day", starts_on=monday - dt.timedelta(weeks=3, days=-2),
                             ends_on=monday - dt.timedelta(weeks=3, days=-3)),
               SchoolClosure(school="Birch", name="Flood", starts_on=TODAY.replace(day=1) - dt.timedelta(days=3),
                             ends_on=TODAY.replace(day=1) + dt.timedelta(days=2))])
    students: list[int] = []
    for i in range(12):
        st = Student(given_name=f"Student{i}", family_name="Quinlan", school=("Cedar", "Birch", None)[i % 3])
        s.add(st)
        s.flush()
        plan = Plan(student_id=st.id, plan_type="IEP", status="active", case_manager_id=me.id)
        s.add(plan)
        s.flush()
        s.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
        for k in range(1 + i % 3):
            period = ("week", "month")[(i + k) % 2]
            starts_on = TODAY - dt.timedelta(days=rng.randint(20, 200))
            ends_on = (TODAY - dt.timedelta(days=rng.randint(1, 15))) if (i + k) % 5 == 0 else None
            req = ServiceRequirement(student_id=st.id, service_type="counseling", period=period,
                                     minutes=rng.choice((30, 60, 90)) if period == "week" else rng.choice((120, 240)),
                                     provider_name="Clinic", setting="", starts_on=starts_on, ends_on=ends_on)
            s.add(req)
            s.flush()
            last = min(TODAY, ends_on) if ends_on else TODAY
            day = starts_on
            while day <= last:
                if day.weekday() < 5 and rng.random() < 0.45:
                    s.add(ServiceSession(
                        requirement_id=req.id, student_id=st.id, held_on=day, minutes=rng.choice((15, 30, 45)),
                        attendance=rng.choice(("delivered", "delivered", "student_absent", "provider_absent")),
                        kind="make_up" if rng.random() < 0.12 else "session",
                        deleted_at=dt.datetime.now(dt.UTC) if rng.random() < 0.05 else None))
                day += dt.timedelta(days=1)
        students.append(st.id)
    s.commit()
    return me, students


@BOTH
@pytest.mark.parametrize("seed", [1, 2])
def test_300_151_b_1_the_caseload_sums_owe_what_each_services_full_ledger_owes(db_session, seed):
    """The caseload home and the services-owed views add sessions up per week or month in the database
    (``ledger_summaries``, statements built once per process); over varied services, closures, make-ups and removed
    sessions, every figure must be the one the full per-session ledger (``services_for``) gives, and the caseload
    column (``shortfalls``, with the closures read once with the deadlines' calendars or read itself) must owe the
    sum of its student's ledgers."""
    _me, students = _varied_caseload(db_session, seed)
    summed = ledger_summaries(db_session, students, TODAY)
    column = shortfalls(db_session, students, TODAY)
    # The caseload home passes the closures it read with the schools' calendars (one read for both uses).
    calendars = load_calendars(db_session, set(db_session.scalars(select(Student.school).where(Student.id.in_(students)))))
    assert shortfalls(db_session, students, TODAY, closed=closed_days_of(calendars)) == column
    windows = {last_completed(TODAY, "week"), last_completed(TODAY, "month")}
    owing = shut = 0
    for sid in students:
        views = [v for v in services_for(db_session, sid, TODAY, recent_sessions=None) if v.starts_on <= TODAY]
        assert sorted(summed[sid].by_service) == sorted(v.id for v in views)
        for view in views:
            full, fast = view.ledger, summed[sid].by_service[view.id]
            assert (fast.required, fast.delivered, fast.missed_by_student, fast.missed_by_provider, fast.made_up,
                    fast.owed, fast.still_owed, fast.closed_days, fast.last_complete) == (
                full.required, full.delivered, full.missed_by_student, full.missed_by_provider, full.made_up,
                full.owed, full.still_owed, full.closed_days, full.last_complete)
            shut += full.closed_days
        running = [v for v in views if v.ledger.last_complete is not None
                   and (v.ledger.last_complete.start, v.ledger.last_complete.end) in windows]
        status = column[sid]
        assert status.still_owed == sum(v.ledger.still_owed for v in views)
        assert status.owing == sum(1 for v in views if v.ledger.still_owed > 0)
        assert (status.services, status.short) == (len(running), sum(1 for v in running if v.short))
        owing += status.still_owed
    assert owing > 0 and shut > 0  # the data owes minutes and has closures: the comparison is not between zeros


@BOTH
def test_300_324_b_the_caseload_shows_a_changed_annual_review_date_at_once(client, token_for, db_session):
    """The next deadline is remembered per plan's inputs: a new last-meeting date is a new key, so the very next page
    shows the annual review it sets (IDEA 34 CFR 300.324(b)(1)(i))."""
    plat = f.platform(db_session)
    me = f.person(db_session, plat, "Tamsin Larkspur", kind="staff")
    db_session.add(RoleGrant(person_id=me.id, role="case_manager"))
    st = Student(given_name="Ava", family_name="Quinlan")
    db_session.add(st)
    db_session.flush()
    plan = Plan(student_id=st.id, plan_type="IEP", status="active", case_manager_id=me.id,
                last_meeting_on=TODAY - dt.timedelta(days=300))
    db_session.add(plan)
    db_session.flush()
    db_session.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
    db_session.commit()
    token = token_for(me, None, roles=("teacher",))
    first = TODAY - dt.timedelta(days=300)
    body = text_of(client.get("/casework/", query_string={"t": token}))
    assert f"annual review {shown_day(first.replace(year=first.year + 1))}" in body
    held = TODAY - dt.timedelta(days=10)
    plan.last_meeting_on = held
    db_session.commit()
    body = text_of(client.get("/casework/", query_string={"t": token}))
    assert f"annual review {shown_day(held.replace(year=held.year + 1))}" in body
    assert f"annual review {shown_day(first.replace(year=first.year + 1))}" not in body


@BOTH
def test_the_caseload_home_leaves_almost_nothing_for_the_garbage_collector(client, token_for, db_session):
    """Objects left in reference cycles are freed only by the collector, in one pause for all the pages since its
    last run: building the acknowledgement count's statement on every page left ~1,300 of them per page, and the
    200-student page then paused 40-70 ms every twenty-odd pages (its p95). The statements are built once now."""
    me, _students = _varied_caseload(db_session, 3)
    token = token_for(me, None, roles=("teacher",))
    for _ in range(2):  # statements built, compiled and cached
        assert client.get("/casework/", query_string={"t": token}).status_code == 200
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert client.get("/casework/", query_string={"t": token}).status_code == 200
        gc.collect()
        left = len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left < 400, left


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_acknowledgement_count_binds_only_the_case_manager(app, client, token_for, db_session, backend):
    """The count's fixed values (statuses, roles, the course-wide section's empty id) are written into its SQL, so
    the case manager is its only varying parameter and PostgreSQL can keep one generic plan for the prepared
    statement instead of planning the nine-table query again on every page."""
    me, _students = _varied_caseload(db_session, 5)
    token = token_for(me, None, roles=("teacher",))
    engine = app.extensions["caseload.engine"]
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        if "acknowledgements" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/casework/", query_string={"t": token}).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [(statement, params)] = seen
    assert "'active'" in statement and "'student'" in statement and "('ta', 'teacher')" in statement
    assert me.id in params.values() and all(isinstance(v, int) for v in params.values())

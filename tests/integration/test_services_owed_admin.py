"""Issue #11, services owed for administrators (the case managers' caseload-wide view and CSV, across the students an
administrator may see), over HTTP on PostgreSQL and SQLite: an LMS administrator reaches their platform's students,
a district administrator every student, a school administrator grant their school's; every student decided is in
the access log with its basis; others get a 403; the statement count does not grow with the students."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import event, select

from lti_app import clock
from lti_app.domain.service_minutes import last_completed
from lti_app.models import AccessEvent, Plan, RoleGrant, ServiceRequirement, ServiceSession, Student
from tests.support import casework_world
from tests.support.casework_world import Client, text_of

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
LAST_WEEK = last_completed(clock.today(), "week")
CONTEXT = "services owed (administration)"


def _service(s: Any, student: Student, weeks_ago: int = 2) -> ServiceRequirement:
    req = ServiceRequirement(student_id=student.id, service_type="speech_language", minutes=30, period="week",
                             provider_name="Outside clinic", setting="pull-out",
                             starts_on=LAST_WEEK[0] - dt.timedelta(weeks=weeks_ago - 1))
    s.add(req)
    s.flush()
    return req


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    w = casework_world.build(db_session)
    w["ava"].school = "Juniper Ridge High School"
    cy = Student(sis_id="S-3", given_name="Cy", family_name="Vantage", school="Juniper Ridge High School")
    db_session.add(cy)
    db_session.flush()
    db_session.add(Plan(student_id=cy.id, plan_type="504", status="active", case_manager_id=w["cm"].id))
    _service(db_session, w["ava"])                                    # nothing logged: 60 min owed
    _service(db_session, w["ben"])                                    # not on the platform: 60 owed
    cy_req = _service(db_session, cy)
    for week in range(2):
        db_session.add(ServiceSession(requirement_id=cy_req.id, student_id=cy.id, minutes=30, attendance="delivered",
                                      held_on=cy_req.starts_on + dt.timedelta(weeks=week)))
    db_session.commit()
    w["cy"] = cy
    return w


def _logged(db_session: Any, actor: Any) -> set[tuple[int, bool, str]]:
    db_session.expire_all()
    return {(sid, ok, basis) for sid, ok, basis in db_session.execute(
        select(AccessEvent.student_id, AccessEvent.allowed, AccessEvent.basis)
        .where(AccessEvent.actor_id == actor.id, AccessEvent.context.like("services owed (administration%"))).all()}


def test_lms_admin_sees_their_platforms_students_owed_and_each_is_logged(client, token_for, world, db_session):
    admin = Client(client, token_for(world["admin"], roles=("admin",)))
    home = admin.get("/admin/").get_data(as_text=True)
    assert "/admin/services-owed" in home
    page = text_of(admin.get("/admin/services-owed"))
    assert "60 min owed · 1 of 1 student · 1 of 1 service" in page
    assert "Ava Quinlan" in page and "Ben Hollis" not in page and "Cy Vantage" not in page
    assert "60 min 0 min 0 min 0 min 0 min 60 min" in page
    # Ben and Cy have no account on this platform: not read at all, so nothing is logged for them.
    assert _logged(db_session, world["admin"]) == {(world["ava"].id, True, "administrator")}


def test_district_admin_sees_every_student_and_the_csv(client, token_for, world, db_session):
    db_session.add(RoleGrant(person_id=world["admin"].id, role="district_admin"))
    db_session.commit()
    admin = Client(client, token_for(world["admin"], roles=("teacher",)))
    page = text_of(admin.get("/admin/services-owed"))
    assert "120 min owed · 2 of 3 students · 2 of 3 services" in page
    assert "Ben Hollis" in page and "Cy Vantage" not in page          # Cy owes nothing
    resp = admin.get("/admin/services-owed.csv", all="1")
    assert resp.status_code == 200 and resp.mimetype == "text/csv" and resp.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert sorted((r["student"], r["still_owed"]) for r in rows) == [
        ("Ava Quinlan", "60"), ("Ben Hollis", "60"), ("Cy Vantage", "0")]
    assert {sid for sid, ok, _ in _logged(db_session, world["admin"]) if ok} == {
        world["ava"].id, world["ben"].id, world["cy"].id}


def test_a_school_admin_grant_reaches_only_its_school(client, token_for, world, db_session):
    db_session.add(RoleGrant(person_id=world["counselor"].id, role="school_admin", school="Cedar Middle School"))
    db_session.commit()
    admin = Client(client, token_for(world["counselor"], roles=("teacher",)))
    page = text_of(admin.get("/admin/services-owed", all="1"))
    assert "No student you may see has a service." in page and "Ava Quinlan" not in page


def test_case_managers_and_teachers_are_refused(client, token_for, world):
    for key in ("cm", "teacher"):
        person = Client(client, token_for(world[key], roles=("teacher",)))
        assert person.get("/admin/services-owed").status_code == 403
        assert person.get("/admin/services-owed.csv").status_code == 403


def test_the_statement_count_does_not_grow_with_the_students(app, client, token_for, world, db_session):
    db_session.add(RoleGrant(person_id=world["admin"].id, role="district_admin"))
    db_session.commit()
    admin = Client(client, token_for(world["admin"], roles=("teacher",)))
    engine = app.extensions["caseload.engine"]

    def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert admin.get("/admin/services-owed").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    admin.get("/admin/services-owed")
    few = statements()
    for i in range(8):
        st = Student(given_name=f"Student{i}", family_name="Marsh", school="Juniper Ridge High School")
        db_session.add(st)
        db_session.flush()
        _service(db_session, st)
    db_session.commit()
    assert statements() == few

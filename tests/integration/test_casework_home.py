"""The case manager's caseload home: only their students, counts, and refusal for people without a grant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete, event, select

from lti_app import clock
from lti_app.models import AccessEvent, Plan, PlanVersion, RoleGrant, Student
from tests.support import factories as f


def test_caseload_lists_only_my_students_with_deadlines_and_logs(client, token_for, db_session):
    plat = f.platform(db_session)
    me = f.person(db_session, plat, "Tamsin Larkspur", kind="staff")
    other = f.person(db_session, plat, "Perrin Galloway", kind="staff")
    db_session.add_all([RoleGrant(person_id=me.id, role="case_manager"), RoleGrant(person_id=other.id, role="case_manager")])
    today = clock.today()
    for name, manager, due in [("Ava", me, today - dt.timedelta(days=3)), ("Ben", me, today + dt.timedelta(days=10)),
                               ("Cy", other, today + dt.timedelta(days=5))]:
        st = Student(given_name=name, family_name="Quinlan")
        db_session.add(st)
        db_session.flush()
        plan = Plan(student_id=st.id, plan_type="IEP", status="active", case_manager_id=manager.id, annual_review_due=due)
        db_session.add(plan)
        db_session.flush()
        db_session.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
    db_session.commit()
    html = client.get("/casework/", query_string={"t": token_for(me, None, roles=("teacher",))}).get_data(as_text=True)
    text = " ".join(html.split())
    assert "Ava Quinlan" in text and "Ben Quinlan" in text and "Cy Quinlan" not in text
    assert "2 students · 1 overdue · 1 due within 30 days" in text
    assert text.index("Ava Quinlan") < text.index("Ben Quinlan")  # soonest deadline first
    logged = db_session.scalars(select(AccessEvent.basis).where(AccessEvent.actor_id == me.id)).all()
    assert logged == ["caseload (case manager)"] * 2


def test_caseload_refuses_people_without_a_support_grant(client, token_for, db_session):
    plat = f.platform(db_session)
    teacher = f.person(db_session, plat, "Rowan Ellery", kind="staff")
    db_session.commit()
    resp = client.get("/casework/", query_string={"t": token_for(teacher, None)})
    assert resp.status_code == 403 and "case managers" in resp.get_data(as_text=True)


def test_admin_home_requires_admin_and_approves_pending_deployments(client, token_for, db_session):
    plat = f.platform(db_session)
    dep = f.deployment(db_session, plat, "77", status="pending")
    teacher = f.person(db_session, plat, "Rowan Ellery", kind="staff")
    admin = f.person(db_session, plat, "Linden Stonebridge", kind="staff")
    db_session.commit()
    assert client.get("/admin/", query_string={"t": token_for(teacher, None)}).status_code == 403
    token = token_for(admin, None, roles=("admin",))
    page = client.get("/admin/", query_string={"t": token}).get_data(as_text=True)
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(f"/admin/deployments/{dep.id}/approve", data={"t": token, "csrf_token": csrf})
    assert resp.status_code == 303
    db_session.expire_all()
    assert db_session.get(type(dep), dep.id).status == "active"


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_caseload_home_statements_stay_the_same_text_as_the_caseload_grows_and_log_one_row_per_student(
        app, client, token_for, db_session, backend):
    """Issue #11's 200-student page: no statement may carry one placeholder per student (PostgreSQL: the same
    statement texts for 3 and for 12 students, so psycopg parses none of them again per page), the count stays
    the same on both databases, and the access log still gets one row per student shown with its basis."""
    from lti_app.models import ServiceRequirement, ServiceSession

    plat = f.platform(db_session)
    me = f.person(db_session, plat, "Tamsin Larkspur", kind="staff")
    db_session.add(RoleGrant(person_id=me.id, role="case_manager"))
    today = clock.today()
    students: list[int] = []

    def add(n: int) -> None:
        for i in range(n):
            st = Student(given_name=f"Student{len(students)}", family_name="Quinlan", school="Cedar")
            db_session.add(st)
            db_session.flush()
            plan = Plan(student_id=st.id, plan_type="IEP" if i % 2 else "504", status="active",
                        case_manager_id=me.id, annual_review_due=today + dt.timedelta(days=i))
            db_session.add(plan)
            db_session.flush()
            db_session.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
            req = ServiceRequirement(student_id=st.id, service_type="counseling", minutes=60,
                                     period="week" if i % 2 else "month", provider_name="Clinic", setting="",
                                     starts_on=today - dt.timedelta(days=60))
            db_session.add(req)
            db_session.flush()
            db_session.add(ServiceSession(requirement_id=req.id, student_id=st.id, minutes=30, attendance="delivered",
                                          held_on=today - dt.timedelta(days=8)))
            students.append(st.id)
        db_session.commit()

    engine = app.extensions["caseload.engine"]
    token = token_for(me, None, roles=("teacher",))

    def page_statements() -> list[str]:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/casework/", query_string={"t": token}).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return seen

    add(3)
    client.get("/casework/", query_string={"t": token})  # warm per-process caches
    few = page_statements()
    add(12)
    db_session.execute(delete(AccessEvent))
    db_session.commit()
    many = page_statements()
    assert len(few) == len(many)
    if backend == "postgresql":
        assert few == many
    logged = db_session.execute(select(AccessEvent.student_id, AccessEvent.action, AccessEvent.allowed,
                                       AccessEvent.basis, AccessEvent.context)
                                .where(AccessEvent.actor_id == me.id)).all()
    assert sorted(logged) == [(sid, "view", True, "caseload (case manager)", "caseload home") for sid in students]

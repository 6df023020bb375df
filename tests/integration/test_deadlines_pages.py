"""Deadlines pages: the case manager's list, the school view for administrators, a student's meeting and
evaluation dates (recomputing the plan's due dates; bad input writes nothing), the reporting calendar (page and
CLI), the caseload home's next-deadline column (a fixed number of queries) and the demo seed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, func, select

from lti_app import clock
from lti_app.models import AccessEvent, AdminEvent, Goal, Plan, PlanVersion, ReportingPeriod, SchoolClosure, Student
from tests.support import casework_world
from tests.support.casework_world import Client, text_of

TODAY = clock.today()
SCHOOL = "Juniper Ridge High School"


def ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    w = casework_world.build(db_session)
    w["ava"].school = SCHOOL
    w["ben"].school = SCHOOL
    db_session.commit()
    return w


@pytest.fixture
def as_(client: Any, token_for: Any, world: dict[str, Any]) -> Any:
    def make(key: str, roles: tuple[str, ...] = ("teacher",)) -> Client:
        return Client(client, token_for(world[key], None, roles=roles))

    return make


def inputs_url(world: dict[str, Any], plan: str = "plan_ava") -> str:
    return f"/casework/students/{world[plan].student_id}/plans/{world[plan].id}/deadlines"


def test_case_manager_lists_overdue_and_upcoming_deadlines_of_their_caseload(as_, world, db_session):
    plan = world["plan_ava"]
    plan.last_meeting_on = ago(370)                 # annual review 5 days overdue
    plan.last_evaluation_on = ago(3 * 365 - 10)     # reevaluation due in about 10 days
    world["plan_ben"].last_meeting_on = ago(380)   # not on this caseload
    db_session.commit()
    page = as_("cm").get("/casework/deadlines")
    body = text_of(page)
    assert page.status_code == 200
    assert "1 student · 1 overdue · 1 due within 30 days" in body
    assert "Ava Quinlan" in body and "Ben Hollis" not in body
    assert body.index("annual review") < body.index("reevaluation")
    logged = db_session.scalars(select(AccessEvent.context).where(AccessEvent.actor_id == world["cm"].id)).all()
    assert logged == ["deadlines (caseload)"]


def test_deadlines_page_needs_a_support_grant(as_, world):
    assert as_("teacher").get("/casework/deadlines").status_code == 403


def test_school_view_for_administrators_only(as_, world, db_session):
    world["plan_ava"].last_meeting_on = ago(400)
    world["plan_ben"].last_meeting_on = ago(100)
    db_session.commit()
    # Issue #14: the LMS administrator reaches the school's students who have an account on their platform (Ben
    # was imported and never launched: district administrators only); before, every student of the school was
    # listed to any administrator.
    admin = as_("admin", roles=("admin",))
    body = text_of(admin.get("/casework/deadlines/school", school=SCHOOL))
    assert "Ava Quinlan" in body and "Ben Hollis" not in body and "1 student · 1 overdue" in body
    events = db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == world["admin"].id)).all()
    assert [(e.student_id, e.context, e.basis, e.allowed) for e in events] == [
        (world["ava"].id, f"deadlines (school: {SCHOOL})", "administrator", True)]
    from lti_app.models import RoleGrant

    db_session.add(RoleGrant(person_id=world["counselor"].id, role="district_admin"))
    db_session.commit()
    district = text_of(as_("counselor").get("/casework/deadlines/school", school=SCHOOL))
    assert "Ava Quinlan" in district and "Ben Hollis" in district and "2 students · 1 overdue" in district
    assert as_("cm").get("/casework/deadlines/school", school=SCHOOL).status_code == 403


def test_a_school_admin_sees_only_their_school(as_, world, db_session):
    from lti_app.models import RoleGrant

    db_session.add(RoleGrant(person_id=world["teacher"].id, role="school_admin", school="Cedar Middle School"))
    db_session.commit()
    principal = as_("teacher")
    assert principal.get("/casework/deadlines/school", school=SCHOOL).status_code == 403
    assert principal.get("/casework/deadlines/school", school="Cedar Middle School").status_code == 200


# --- a student's deadline inputs -------------------------------------------------------------------------------

def test_recording_dates_recomputes_the_plan_due_dates(as_, world, db_session):
    cm = as_("cm")
    page = cm.get(f"/casework/students/{world['ava'].id}/deadlines")
    assert page.status_code == 200 and "Reevaluation waived" in page.get_data(as_text=True)
    resp = cm.post(inputs_url(world), {"last_meeting_on": "2024-02-29", "last_evaluation_on": "2024-02-29",
                                       "evaluation_consent_on": "2024-01-10"})
    assert resp.status_code == 303
    db_session.expire_all()
    plan = db_session.get(Plan, world["plan_ava"].id)
    assert plan.annual_review_due == dt.date(2025, 2, 28) and plan.reevaluation_due == dt.date(2027, 2, 28)
    assert plan.evaluation_consent_on == dt.date(2024, 1, 10)
    basis = db_session.scalars(select(AccessEvent.basis).where(AccessEvent.actor_id == world["cm"].id,
                                                               AccessEvent.action == "update")).one()
    assert basis == "caseload (case manager)"


def test_waived_reevaluation_is_recorded_with_its_agreement_date(as_, world, db_session):
    cm = as_("cm")
    resp = cm.post(inputs_url(world), {"last_evaluation_on": ago(1000).isoformat(), "reevaluation_waived": "1",
                                       "reevaluation_waived_on": ago(20).isoformat()})
    assert resp.status_code == 303
    body = text_of(cm.get(f"/casework/students/{world['ava'].id}/deadlines"))
    assert "waived" in body and "reevaluation waived by agreement on" in body
    deadlines = text_of(cm.get("/casework/deadlines"))
    assert "0 overdue" in deadlines


@pytest.mark.parametrize(("form", "message"), [
    ({"reevaluation_waived": "1", "reevaluation_waived_on": ""}, "A waived reevaluation needs the date"),
    ({"reevaluation_waived_on": "2026-01-05"}, "\"reevaluation waived\" is not ticked"),
    ({"evaluation_consent_on": "2025-05-01", "last_evaluation_on": "2025-04-01"}, "evaluation is dated before the"),
    ({"last_meeting_on": "2025-02-30"}, "is not a date"),
    ({"last_meeting_on": (TODAY + dt.timedelta(days=3)).isoformat()}, "This date is in the future"),
])
def test_bad_dates_are_explained_and_nothing_is_written(as_, world, db_session, form, message):
    before = (world["plan_ava"].last_meeting_on, world["plan_ava"].annual_review_due)
    resp = as_("cm").post(inputs_url(world), {"last_meeting_on": ago(30).isoformat(), **form})
    assert resp.status_code == 422 and message in text_of(resp)
    db_session.expire_all()
    plan = db_session.get(Plan, world["plan_ava"].id)
    assert (plan.last_meeting_on, plan.annual_review_due) == before
    assert plan.reevaluation_waived_on is None and plan.evaluation_consent_on is None


def test_another_case_manager_cannot_record_dates_and_is_logged(as_, world, db_session):
    other = as_("other_cm")
    assert other.get(f"/casework/students/{world['ava'].id}/deadlines").status_code == 403
    resp = other.post(inputs_url(world), {"last_meeting_on": ago(10).isoformat()})
    assert resp.status_code == 403
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on is None
    refused = db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == world["other_cm"].id)).all()
    assert [(e.action, e.allowed) for e in refused] == [("view", False), ("update", False)]


def test_a_counselor_reads_the_dates_but_cannot_change_them(as_, world, db_session):
    counselor = as_("counselor")
    page = counselor.get(f"/casework/students/{world['ava'].id}/deadlines")
    assert page.status_code == 200 and "Only this plan's case manager records these dates." in text_of(page)
    assert counselor.post(inputs_url(world), {"last_meeting_on": ago(10).isoformat()}).status_code == 403


def test_dates_form_checks_csrf(as_, world, db_session):
    resp = as_("cm").post(inputs_url(world), {"last_meeting_on": ago(10).isoformat()}, csrf=False)
    assert resp.status_code == 400
    db_session.expire_all()
    assert db_session.get(Plan, world["plan_ava"].id).last_meeting_on is None


def test_the_csv_import_still_sets_the_due_dates_directly(app, db_session):
    from lti_app.services.casework.importer import run_import

    csv = (b"student_sis_id,given_name,family_name,plan_type,effective_on,annual_review_due,reevaluation_due\n"
           b"S-900,Dune,Fernhill,IEP,2026-09-01,2027-08-31,2028-05-15\n")
    report = run_import(db_session, csv, filename="plans.csv", dry_run=False, skip_bad_rows=False, via="cli")
    assert report.applied, report.errors
    plan = db_session.scalars(select(Plan).join(Student).where(Student.sis_id == "S-900")).one()
    assert (plan.annual_review_due, plan.reevaluation_due) == (dt.date(2027, 8, 31), dt.date(2028, 5, 15))


# --- the caseload home --------------------------------------------------------------------------------------------

def test_caseload_next_deadline_comes_from_the_deadlines_rules(as_, world, db_session):
    plan = world["plan_ava"]
    plan.last_evaluation_on, plan.reevaluation_waived_on = ago(3 * 365 + 30), ago(10)   # waived: not a deadline
    plan.annual_review_due = TODAY + dt.timedelta(days=200)
    db_session.add(ReportingPeriod(school="", name="Quarter 2", starts_on=ago(60), ends_on=ago(2),
                                   report_due_on=TODAY + dt.timedelta(days=6)))
    db_session.add(Goal(student_id=world["ava"].id, plan_id=plan.id, area="reading", description="Read.", baseline=1,
                        target=2, unit="", measurement_method="probe", baseline_on=ago(50), target_on=ago(-200)))
    db_session.commit()
    body = text_of(as_("cm").get("/casework/"))
    assert "progress report (Quarter 2)" in body and "reevaluation" not in body


def _caseload_world(db_session: Any, students: int) -> Any:
    from tests.support import factories as f

    plat = f.platform(db_session)
    me = f.person(db_session, plat, "Tamsin Larkspur", kind="staff")
    from lti_app.models import RoleGrant

    db_session.add(RoleGrant(person_id=me.id, role="case_manager"))
    for i in range(students):
        st = Student(given_name=f"Student{i}", family_name="Quinlan", school=SCHOOL if i % 2 else "Cedar Middle School")
        db_session.add(st)
        db_session.flush()
        plan = Plan(student_id=st.id, plan_type="IEP" if i % 3 else "504", status="active", case_manager_id=me.id,
                    last_meeting_on=ago(300 + i), last_evaluation_on=ago(900), effective_on=ago(300))
        db_session.add(plan)
        db_session.flush()
        db_session.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
        db_session.add(Goal(student_id=st.id, plan_id=plan.id, area="reading", description="Read.", baseline=1,
                            target=2, unit="", measurement_method="probe", baseline_on=ago(50), target_on=ago(-200)))
    db_session.add(ReportingPeriod(school="", name=f"Quarter 1 ({students})", starts_on=ago(90), ends_on=ago(20),
                                   report_due_on=ago(10)))
    db_session.add(SchoolClosure(school=SCHOOL, name=f"Staff day ({students})", starts_on=ago(5), ends_on=ago(5)))
    db_session.commit()
    return me


def test_caseload_home_query_count_does_not_grow_with_the_caseload(app, client, token_for, db_session):
    engine = app.extensions["caseload.engine"]
    counts = []
    for n in (3, 12):
        me = _caseload_world(db_session, n)
        client.get("/casework/", query_string={"t": token_for(me, None)})   # warm per-process caches
        seen: list[str] = []

        def count(*args: Any, seen: list[str] = seen) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            resp = client.get("/casework/", query_string={"t": token_for(me, None)})
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert resp.status_code == 200 and "progress report (Quarter 1 (" in text_of(resp)
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 14


# --- reporting calendar: page and CLI ---------------------------------------------------------------------------

def test_calendar_cli_adds_lists_and_updates_idempotently(runner, db_session):
    from lti_app.cli import main

    out = runner.invoke(main, ["calendar", "add-period", "--name", "Quarter 1", "--starts", "2026-08-24", "--ends",
                              "2026-10-30", "--due", "2026-11-06"])
    assert out.exit_code == 0, out.output
    again = runner.invoke(main, ["calendar", "add-period", "--name", "Quarter 1", "--starts", "2026-08-24", "--ends",
                                "2026-10-31", "--due", "2026-11-07"])
    assert again.exit_code == 0 and "updated" in again.output
    closure = runner.invoke(main, ["calendar", "add-closure", "--name", "Winter break", "--starts", "2026-12-21",
                                  "--ends", "2027-01-01", "--school", SCHOOL])
    assert closure.exit_code == 0, closure.output
    bad = runner.invoke(main, ["calendar", "add-closure", "--name", "Oops", "--starts", "2026-12-21", "--ends",
                              "2026-12-01"])
    assert bad.exit_code != 0 and "end date is before the start date" in bad.output
    listing = runner.invoke(main, ["calendar", "list", "--json"])
    import json

    rows = json.loads(listing.output)
    assert [(r["kind"], r["name"], r["school"]) for r in rows] == [("period", "Quarter 1", None),
                                                                   ("closure", "Winter break", SCHOOL)]
    assert rows[0]["report_due_on"] == "2026-11-07"
    assert db_session.scalar(select(func.count()).select_from(AdminEvent)) == 3


def test_calendar_page_for_administrators(as_, world, db_session):
    # Issue #14: a district-wide entry changes every platform's deadlines, so it needs a district administrator
    # grant (the LMS administrator added one before); the LMS administrator keeps their platform's schools' entries.
    from lti_app.models import RoleGrant

    admin = as_("admin", roles=("admin",))
    assert admin.get("/casework/calendar").status_code == 200
    assert 'value="">District-wide' not in admin.get("/casework/calendar").get_data(as_text=True)
    quarter2 = {"kind": "period", "name": "Quarter 2", "starts_on": "2026-11-02", "ends_on": "2027-01-22",
                "report_due_on": "2027-01-29"}
    refused = admin.post("/casework/calendar", {**quarter2, "school": ""})
    assert refused.status_code == 403 and "District-wide reporting periods" in text_of(refused)
    assert admin.post("/casework/calendar", {**quarter2, "school": "Cedar Middle School"}).status_code == 403
    assert admin.post("/casework/calendar", {**quarter2, "school": SCHOOL}).status_code == 303
    db_session.add(RoleGrant(person_id=world["counselor"].id, role="district_admin"))
    db_session.commit()
    resp = as_("counselor").post("/casework/calendar", {**quarter2, "school": ""})
    assert resp.status_code == 303
    bad = admin.post("/casework/calendar", {"kind": "period", "school": "", "name": "Quarter 3",
                                            "starts_on": "2027-01-25", "ends_on": "2027-04-02",
                                            "report_due_on": "2027-03-01"})
    assert bad.status_code == 422 and "report date is before the end" in text_of(bad)
    assert sorted(db_session.scalars(select(ReportingPeriod.school).where(ReportingPeriod.name == "Quarter 2"))) == [
        "", SCHOOL]
    assert db_session.scalars(select(ReportingPeriod.name).distinct()).all() == ["Quarter 2"]
    assert as_("cm").get("/casework/calendar").status_code == 403


# --- demo and SQLite --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_demo_goals_are_seeded_once_with_charts_and_deadlines(app, client, token_for, db_session):
    from lti_app.demo.district import seed_demo
    from lti_app.models import Person, ProgressPoint

    settings = app.config["CASELOAD"]
    seed_demo(db_session, settings)
    db_session.commit()
    goals = db_session.scalar(select(func.count()).select_from(Goal))
    points = db_session.scalar(select(func.count()).select_from(ProgressPoint))
    seed_demo(db_session, settings)
    db_session.commit()
    assert goals >= 10 and points > goals
    assert db_session.scalar(select(func.count()).select_from(Goal)) == goals
    assert db_session.scalar(select(func.count()).select_from(ReportingPeriod)) == 4
    manager = db_session.scalars(select(Person).where(Person.lti_sub == "demo-cm-1")).one()
    token = token_for(manager, None)
    deadlines = text_of(client.get("/casework/deadlines", query_string={"t": token}))
    assert "Overdue" in deadlines
    goal = db_session.scalars(select(Goal).join(Plan, Plan.id == Goal.plan_id)
                              .where(Plan.case_manager_id == manager.id)).first()
    html = client.get(f"/casework/students/{goal.student_id}/goals", query_string={"t": token}).get_data(as_text=True)
    assert 'class="trend"' in html and "Quarter 1" in html

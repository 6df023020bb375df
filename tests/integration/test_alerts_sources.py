"""A schedule change alerts the case manager whichever roster source made it: Canvas Live Events, the Moodle
companion plugin, an NRPS pull, a OneRoster pull and an LTI launch (the launch's own one-statement roster writes
on PostgreSQL). Each source runs for real (signed events over the webhook endpoints, NRPS and OneRoster servers on
loopback, a signed id_token through /lti/launch); the alerts job then compares against its snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import select

from lti_app.crypto import cipher
from lti_app.models import Alert, Plan, PlanVersion, Platform, RoleGrant, Student
from lti_app.services.alerts import job
from lti_app.services.roster import oneroster as reconcile_oneroster
from lti_app.services.roster import primitives as roster
from lti_app.services.roster import reconcile
from tests.support import factories as f
from tests.support.lms_events import CanvasLiveEvents, MoodlePlugin
from tests.support.lti_platform import CLAIM
from tests.support.nrps_platform import NrpsTestPlatform, make_tool_key, member
from tests.support.oneroster_server import OneRosterServer

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


def plan_student(db_session: Any, platform: Any, sis_id: str) -> tuple[Student, Any]:
    """Sam Alder (SIS id ``sis_id``) with an active IEP, and case manager Tamsin Larkspur."""
    cm = f.person(db_session, platform, "Tamsin Larkspur", kind="staff")
    db_session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    student = Student(sis_id=sis_id, given_name="Sam", family_name="Alder")
    db_session.add(student)
    db_session.flush()
    plan = Plan(student_id=student.id, plan_type="IEP", status="active", case_manager_id=cm.id)
    db_session.add(plan)
    db_session.flush()
    db_session.add(PlanVersion(plan_id=plan.id, version_no=1, status="active"))
    db_session.commit()
    return student, cm


def run_job(db_session: Any) -> job.RunReport:
    db_session.expire_all()
    return job.run(db_session, current_app.config["CASELOAD"])


def titles(db_session: Any, cm: Any) -> list[str]:
    db_session.expire_all()
    return list(db_session.scalars(select(Alert.title).where(Alert.recipient_id == cm.id).order_by(Alert.id)))


@BOTH
def test_canvas_live_event_enrollment_alerts_the_case_manager(app, client, db_session):
    canvas = CanvasLiveEvents().start()
    try:
        plat = f.platform(db_session, name="district-canvas", lms="canvas", live_events_keyset_url=canvas.keyset_url,
                          canvas_root_account_uuid=canvas.root_account_uuid)
        course = f.course(db_session, plat, "Biology 9", lms_course_id="565")
        f.section(db_session, course, "4811", "Period 2")
        f.person(db_session, plat, "Sam Alder", lms_user_id="30071", sis_id="S-30071")
        _, cm = plan_student(db_session, plat, "S-30071")
        run_job(db_session)
        when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        payload = canvas.enrollment("enrollment_created", enrollment_id=9001, course_id=565, user_id=30071,
                                    section_id=4811, when=when)
        resp = client.post("/webhooks/canvas/district-canvas", data=canvas.sign(payload),
                           content_type="application/jwt")
        assert resp.status_code == 202, resp.get_data(as_text=True)
        # Canvas may deliver twice: still one alert.
        client.post("/webhooks/canvas/district-canvas", data=canvas.sign(payload), content_type="application/jwt")
        assert run_job(db_session).joined == 1
        assert titles(db_session, cm) == ["Sam Alder joined Biology 9 — Period 2"]
    finally:
        canvas.stop()


@BOTH
def test_moodle_plugin_unenrolment_alerts_the_case_manager(app, client, db_session):
    secret = "moodle-webhook-secret-for-tests-0123456789"
    moodle = MoodlePlugin(secret=secret)
    plat = f.platform(db_session, name="district-moodle", lms="moodle", webhook_secret_encrypted=cipher().encrypt(secret))
    f.course(db_session, plat, "Geometry", lti_context_id="12")
    db_session.commit()
    _, cm = plan_student(db_session, plat, "S-34")
    run_job(db_session)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert moodle.post(client, "district-moodle", moodle.event("user_enrolment_created", course_id=12, user_id=34,
                                                                roles=["student"], when=t0)).status_code == 202
    run_job(db_session)
    assert titles(db_session, cm) == ["Sam Alder joined Geometry"]
    assert moodle.post(client, "district-moodle", moodle.event("user_enrolment_deleted", course_id=12, user_id=34,
                                                                roles=[], when=t0 + dt.timedelta(minutes=1))
                       ).status_code == 202
    assert run_job(db_session).left == 1
    assert titles(db_session, cm) == ["Sam Alder joined Geometry", "Sam Alder left Geometry"]


@BOTH
def test_nrps_pull_that_finds_a_new_member_alerts_the_case_manager(app, db_session):
    jwks = make_tool_key(db_session)
    db_session.commit()
    with NrpsTestPlatform("caseload-client", jwks) as lms:
        plat = f.platform(db_session, lms="moodle", client_id=lms.client_id, auth_token_url=lms.token_url)
        course = f.course(db_session, plat, title="Chemistry", lti_context_id="ctx-chem",
                          nrps_url=lms.nrps_url("ctx-chem"))
        db_session.commit()
        _, cm = plan_student(db_session, plat, "S-77")
        lms.set_members("ctx-chem", [member("t1", ["Instructor"], name="Rowan Ellery")])
        assert reconcile.reconcile_course(db_session, course.id, trigger="test").ok
        run_job(db_session)
        lms.set_members("ctx-chem", [member("t1", ["Instructor"], name="Rowan Ellery"),
                                     member("s77", ["Learner"], name="Sam Alder", sourcedid="S-77")])
        assert reconcile.reconcile_course(db_session, course.id, trigger="test").ok
        assert run_job(db_session).joined == 1
        assert titles(db_session, cm) == ["Sam Alder joined Chemistry"]


@BOTH
def test_oneroster_pull_alerts_the_case_manager(app, db_session):
    with OneRosterServer() as sis:
        plat = f.platform(db_session, lms="canvas", name="district")
        biology = f.course(db_session, plat, title="Biology", lti_context_id="ctx-bio")
        roster.ensure_section(db_session, biology, "88", name="Biology P2", sis_id="class-bio-p2")
        db_session.commit()
        _, cm = plan_student(db_session, plat, "stu-3")
        reconcile_oneroster.configure(db_session, plat, base_url=sis.base_url, token_url=sis.token_url,
                                      client_id=sis.client_id, client_secret=sis.client_secret)
        sis.klass("class-bio-p2", "Biology P2")
        sis.user("stu-3", "Sam", "Alder")
        run_job(db_session)
        sis.enroll("e3", "stu-3", "class-bio-p2")
        outcome = reconcile_oneroster.pull(db_session, plat.id)
        assert outcome.ok, outcome.error
        assert run_job(db_session).joined == 1
        assert titles(db_session, cm) == ["Sam Alder joined Biology P2"]


@BOTH
def test_a_students_launch_from_a_new_course_alerts_the_case_manager(app, client, db_session, lms):
    plat = db_session.scalars(select(Platform).where(Platform.name == "testlms")).one()
    _, cm = plan_student(db_session, plat, "S-501")
    run_job(db_session)
    resp = lms.launch(client, role="student", sub="student-501", context_id="course-physics",
                      **{CLAIM + "lis": {"person_sourcedid": "S-501"},
                         CLAIM + "context": {"id": "course-physics", "title": "Physics", "type": ["CourseSection"]}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert run_job(db_session).joined == 1
    assert titles(db_session, cm) == ["Sam Alder joined Physics"]

"""The case manager marks an accommodation as applied in the LMS on the draft, activates the version, and the
rule reaches every timed quiz of the student's course in the (fake) Canvas — through the plan pages (HTTP), the
background task (eager) and the reconcile. Also: triggers for new enrollments and the nightly sweep."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from lti_app import clock
from lti_app.models import AppliedAccommodation, LmsActionLedger, PlanVersion, RoleGrant
from lti_app.services.lms_actions import triggers
from lti_app.tasks.lms_actions import enrollments_task, sweep_task
from tests.support import factories as f
from tests.support.fake_canvas import FakeCanvas
from tests.support.lms_world import canvas_world

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def canvas():
    with FakeCanvas() as fake:
        yield fake


class Browser:
    def __init__(self, client, token: str, student_id: int) -> None:
        self.client, self.token, self.base = client, token, f"/casework/students/{student_id}/plans"
        self.csrf = ""

    def get(self, path: str = ""):
        resp = self.client.get(self.base + path, query_string={"t": self.token})
        found = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return resp

    def post(self, path: str, **data):
        return self.client.post(self.base + path, data={"t": self.token, "csrf_token": self.csrf, **data})


@pytest.fixture
def world(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    cm = f.person(db_session, w["platform"], "Tamsin Larkspur", kind="staff")
    db_session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    plan = w["ava"]["plan"]
    plan.case_manager_id = cm.id
    plan.effective_on = clock.today() - dt.timedelta(days=10)
    version = w["ava"]["version"]
    db_session.delete(w["ava"]["rule"])  # Ava's plan starts without anything applied in the LMS
    from lti_app.models import Accommodation

    db_session.add(Accommodation(plan_version_id=version.id, category="timing", text="Tests: time and a half",
                                 applies_to="tests", position=0))
    db_session.commit()
    w["cm"] = cm
    return w


@BOTH
def test_marking_the_rule_and_activating_applies_it_to_every_timed_quiz(client, token_for, db_session, canvas, world):
    quizzes = [canvas.add_quiz("501", f"Unit {i}", 40) for i in range(2)]
    b = Browser(client, token_for(world["cm"], None), world["ava"]["student"].id)
    plan_id = world["ava"]["plan"].id
    b.get()
    assert b.post(f"/{plan_id}/draft").status_code == 303
    page = b.get(f"/{plan_id}/draft")
    assert "Applied in the LMS" in page.get_data(as_text=True)
    draft = db_session.scalar(select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.status == "draft"))

    bad = b.post(f"/{plan_id}/draft/lms-rule", version_id=str(draft.id), time_kind="multiplier", multiplier="7")
    assert bad.status_code == 422 and "between 1.05 and 4" in bad.get_data(as_text=True)
    ok = b.post(f"/{plan_id}/draft/lms-rule", version_id=str(draft.id), time_kind="multiplier", multiplier="1.5",
                extra_attempts="1")
    assert ok.status_code == 303
    assert canvas.count("POST", "/api/") == 0  # a draft applies nothing

    confirm = b.get(f"/{plan_id}/activate").get_data(as_text=True)
    assert "1.5x time, 1 extra attempt" in confirm
    done = b.post(f"/{plan_id}/activate", version_id=str(draft.id), summary="Extended time applied in Canvas")
    assert done.status_code == 303

    for quiz_id in quizzes:
        assert canvas.extension("501", quiz_id, "9001") | {} and canvas.extension("501", quiz_id, "9001")[
            "extra_time"] == 20
        assert canvas.extension("501", quiz_id, "9001")["extra_attempts"] == 1
    rows = db_session.scalars(select(LmsActionLedger).where(LmsActionLedger.lms_user_id == "9001")).all()
    assert {r.reason for r in rows} == {"plan"} and {r.plan_version_id for r in rows} == {draft.id}
    assert all(r.event == f"plan_version:{draft.id}" for r in rows)


@BOTH
def test_a_new_draft_copies_the_rule_and_a_rule_change_alone_can_be_activated(client, token_for, db_session, world):
    v1 = world["ava"]["version"]
    db_session.add(AppliedAccommodation(plan_version_id=v1.id, extra_minutes=10, reduce_choices=False,
                                        window_guard=False))
    db_session.commit()
    b = Browser(client, token_for(world["cm"], None), world["ava"]["student"].id)
    plan_id = world["ava"]["plan"].id
    b.get()
    b.post(f"/{plan_id}/draft")
    draft = db_session.scalar(select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.status == "draft"))
    copied = db_session.scalar(select(AppliedAccommodation).where(AppliedAccommodation.plan_version_id == draft.id))
    assert copied is not None and copied.extra_minutes == 10

    b.get(f"/{plan_id}/draft")
    same = b.post(f"/{plan_id}/activate", version_id=str(draft.id), summary="No change")
    assert same.status_code == 422  # nothing changed: refused as before
    b.post(f"/{plan_id}/draft/lms-rule", version_id=str(draft.id), time_kind="minutes", extra_minutes="15")
    assert b.post(f"/{plan_id}/activate", version_id=str(draft.id), summary="15 minutes").status_code == 303


def test_new_enrollments_of_plan_students_are_applied_and_looked_at_again_only_within_the_lookback(
        app, db_session, canvas, world):
    world["connection"].enrollments_checked_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    db_session.commit()
    quiz = canvas.add_quiz("501", "Unit 9", 30)

    assert enrollments_task() == 1  # Ben (plan with a rule) enrolled in the arrangement; Ava's rule was removed
    assert canvas.extension("501", quiz, "9002")["extra_time"] == 10
    posts = canvas.count("POST", "/api/")
    enrollments_task()  # within the few seconds' look-back: looked at again, nothing written
    assert canvas.count("POST", "/api/") == posts
    db_session.expire_all()
    world["connection"].enrollments_checked_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    db_session.commit()
    assert triggers.new_enrollments(db_session) == []


def test_the_nightly_sweep_repairs_a_quiz_no_event_reported(app, db_session, canvas, world):
    quiz = canvas.add_quiz("501", "Practice quiz", 30, quiz_type="practice_quiz")

    assert sweep_task() == 1

    assert canvas.extension("501", quiz, "9002")["extra_time"] == 10


def _stored_event(db_session, platform, source, event_type, payload, key):
    """An event as the webhook stores it: Caseload's roster does not apply quiz events, the LMS actions do."""
    from lti_app.models import InboundEvent

    db_session.add(InboundEvent(platform_id=platform.id, source=source, event_type=event_type, dedupe_key=key,
                                received_at=dt.datetime.now(dt.UTC), payload=payload, status="ignored"))
    db_session.commit()


def test_a_canvas_assignment_event_for_a_new_quiz_applies_the_time_within_minutes(app, db_session, canvas, world):
    world["connection"].events_checked_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    world["connection"].enrollments_checked_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    db_session.commit()
    quiz = canvas.add_quiz("501", "Pop quiz", 20)
    body = {"assignment_id": "77", "context_id": str(10**13 * 3 + 501), "context_type": "Course",
            "submission_types": "online_quiz", "title": "Pop quiz"}
    _stored_event(db_session, world["platform"], "canvas", "assignment_created",
                  {"metadata": {"event_name": "assignment_created"}, "body": body}, "canvas:a1")
    _stored_event(db_session, world["platform"], "canvas", "assignment_created",
                  {"metadata": {"event_name": "assignment_created"},
                   "body": {**body, "submission_types": "online_upload"}}, "canvas:a2")

    assert enrollments_task() == 1

    assert canvas.extension("501", quiz, "9002")["extra_time"] == 10
    rows = db_session.scalars(select(LmsActionLedger).where(LmsActionLedger.lms_quiz_id == quiz)).all()
    assert {(r.reason, r.event) for r in rows} == {("quiz", "assignment_created")}


def test_a_moodle_plugin_quiz_event_reconciles_the_course(app, db_session):
    from tests.support.fake_moodle import FakeMoodle
    from tests.support.lms_world import moodle_world

    with FakeMoodle() as moodle:
        w = moodle_world(db_session, moodle)
        w["connection"].events_checked_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        w["connection"].enrollments_checked_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        db_session.commit()
        quiz = moodle.add_quiz(7, "New quiz", timelimit=600)
        _stored_event(db_session, w["platform"], "moodle", "course_module_created",
                      {"schema": "caseload.moodle-event/1", "event_name": "\\core\\event\\course_module_created",
                       "course": {"id": "7"}, "quiz": {"id": str(quiz)}}, "moodle:e1")

        assert enrollments_task() == 1

        assert moodle.user_override(quiz, 31)["timelimit"] == 900

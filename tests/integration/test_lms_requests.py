"""Issue #12 "Reliability": LMS work asked for is recorded in PostgreSQL before its Celery message is sent, so a
Redis that loses its data (no persistence) delays it minutes, not until the nightly sweep: the 5-minute beat job
queues again a request left pending, the reconcile that does the work clears it, and a request that arrived while
a reconcile ran is not cleared by it. Against the fake Moodle web service, on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from lti_app.models import Enrollment, LmsConnection, LmsCourseBacklog
from lti_app.services.lms_actions import reconcile as reconcile_module
from lti_app.services.lms_actions import requests
from lti_app.services.lms_actions.reconcile import LmsUnavailable, reconcile_course
from lti_app.tasks import lms_actions as tasks
from tests.support.fake_moodle import FakeMoodle
from tests.support.lms_world import moodle_world

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def moodle():
    with FakeMoodle() as fake:
        yield fake


@pytest.fixture
def world(db_session: Any, moodle: FakeMoodle) -> dict[str, Any]:
    w = moodle_world(db_session, moodle)
    w["quiz"] = moodle.add_quiz(7, "Unit test", timelimit=1200)
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db_session.execute(update(Enrollment).values(updated_at=hour_ago))
    conn = db_session.scalar(select(LmsConnection))
    conn.enrollments_checked_at = conn.events_checked_at = hour_ago + dt.timedelta(minutes=1)
    db_session.commit()  # no enrollment or quiz event is new: only the requests are looked at
    return w


def _row(db_session: Any) -> LmsCourseBacklog:
    db_session.expire_all()
    row = db_session.scalar(select(LmsCourseBacklog))
    assert row is not None
    return row


def _age(db_session: Any, by: dt.timedelta) -> None:
    row = _row(db_session)
    row.requested_at = row.requested_at - by
    db_session.commit()


def _lose_messages(monkeypatch: Any) -> list[tuple[Any, ...]]:
    """Redis restarted without persistence: every message sent is gone before a worker takes it."""
    lost: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.reconcile_course_task, "delay", lambda *args: lost.append(args))
    return lost


def test_a_plan_activation_whose_message_redis_lost_is_queued_again_by_the_beat_job_and_applied_once(
        app, db_session, moodle, world, monkeypatch):
    lost = _lose_messages(monkeypatch)
    assert tasks.apply_student_task(world["ava"]["student"].id, "plan", world["ava"]["version"].id) == 1
    assert len(lost) == 1
    row = _row(db_session)
    assert row.requested_at is not None and row.requested_reason == "plan"
    assert row.requested_person_ids == [world["ava"]["person"].id]
    monkeypatch.undo()

    assert tasks.enrollments_task() == 0                   # minutes old at most: its message may still come
    assert moodle.user_override(world["quiz"], 31) is None
    _age(db_session, requests.STALE + dt.timedelta(seconds=1))
    assert tasks.enrollments_task() == 1                   # pending too long: queued again, and done
    assert moodle.user_override(world["quiz"], 31)["timelimit"] == 1800
    assert moodle.user_override(world["quiz"], 32) is None  # the request was Ava's only
    assert _row(db_session).requested_at is None            # done: cleared
    saves = moodle.count("mod_quiz_save_overrides")
    assert tasks.enrollments_task() == 0 and moodle.count("mod_quiz_save_overrides") == saves


def test_a_reconcile_clears_the_request_it_did_but_not_one_for_other_students(app, db_session, world):
    ava, ben = world["ava"]["person"].id, world["ben"]["person"].id
    requests.record(db_session, world["course"].id, [ava], "plan")
    requests.record(db_session, world["course"].id, [ben], "enrollment")
    db_session.commit()
    assert _row(db_session).requested_person_ids == sorted([ava, ben])
    reconcile_course(db_session, world["course"].id, person_ids=[ava], reason="plan")
    assert _row(db_session).requested_at is not None        # Ben's part is not done
    reconcile_course(db_session, world["course"].id, reason="sweep")
    assert _row(db_session).requested_at is None


def test_a_request_that_arrives_while_a_reconcile_runs_is_not_cleared_by_it(app, db_session, world, monkeypatch):
    course_id = world["course"].id
    requests.record(db_session, course_id, None, "plan")
    db_session.commit()
    first = _row(db_session).requested_at
    original = reconcile_module._reconcile_course

    def meanwhile(session: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(session, *args, **kwargs)
        requests.record(session, course_id, None, "quiz")  # committed before this run ends
        session.commit()
        return result

    monkeypatch.setattr(reconcile_module, "_reconcile_course", meanwhile)
    reconcile_course(db_session, course_id, reason="plan")
    row = _row(db_session)
    assert row.requested_at is not None and row.requested_at > first and row.requested_reason == "quiz"
    monkeypatch.undo()
    reconcile_course(db_session, course_id, reason="quiz")
    assert _row(db_session).requested_at is None


def test_a_course_waiting_on_a_down_lms_is_queued_again_only_once_its_retry_is_overdue(
        app, db_session, moodle, world, monkeypatch):
    conn = db_session.scalar(select(LmsConnection))
    conn.api_base_url = "http://127.0.0.1:9"  # nothing listens there
    requests.record(db_session, world["course"].id, None, "manual")
    db_session.commit()
    with pytest.raises(LmsUnavailable):
        reconcile_course(db_session, world["course"].id, reason="manual")
    row = _row(db_session)
    assert row.waiting_since is not None and row.requested_at is not None  # not done: kept
    conn = db_session.scalar(select(LmsConnection))
    conn.api_base_url = moodle.base_url
    db_session.commit()
    _age(db_session, requests.STALE + dt.timedelta(seconds=1))
    assert tasks.enrollments_task() == 0                   # its retry is queued with backoff: not fought

    row = _row(db_session)
    row.last_attempt_at = row.last_attempt_at - requests.LMS_RETRY_MAX - requests.STALE - dt.timedelta(seconds=1)
    db_session.commit()
    assert tasks.enrollments_task() == 1                   # the retry is overdue: lost with Redis, queued again
    row = _row(db_session)
    assert row.requested_at is None and row.waiting_since is None
    assert moodle.user_override(world["quiz"], 31)["timelimit"] == 1800


def test_the_nightly_sweeps_spread_is_not_queued_again_before_it_is_due(app, db_session, world, monkeypatch):
    lost: list[Any] = []
    monkeypatch.setattr(tasks.reconcile_course_task, "apply_async", lambda **kw: lost.append(kw))
    assert tasks.sweep_task() == 1 and len(lost) == 1
    row = _row(db_session)
    assert row.requested_reason == "sweep" and row.requested_person_ids is None and row.requested_at is not None
    monkeypatch.undo()
    # a course the spread puts an hour ahead: not stale before then, and not cleared by a run that starts earlier
    row.requested_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    db_session.commit()
    assert tasks.enrollments_task() == 0
    reconcile_course(db_session, world["course"].id, reason="plan")
    assert _row(db_session).requested_at is not None


def test_a_plan_activation_stores_its_lms_request_with_itself_so_a_lost_message_is_queued_again(
        app, db_session, moodle, world, monkeypatch):
    """The activation's own commit holds the request (``plans._record_lms_requests``): with the broker unreachable
    when it is activated (no ``apply_student`` message at all), the 5-minute job still applies the new rule."""
    from lti_app.auth import Viewer
    from lti_app.models import Accommodation, RoleGrant
    from lti_app.services.casework import plans
    from tests.support import factories as f

    cm = f.person(db_session, world["platform"], "Tamsin Larkspur", kind="staff")
    db_session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    world["ava"]["plan"].case_manager_id = cm.id
    db_session.add(Accommodation(plan_version_id=world["ava"]["version"].id, category="timing",
                                 text="Tests and quizzes: extended time.", position=0))
    db_session.commit()
    viewer = Viewer(cm.id, world["platform"].id, None, ("teacher",))
    student_id, plan_id = world["ava"]["student"].id, world["ava"]["plan"].id

    def broker_down(*_args: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(plans, "enqueue", broker_down)
    with app.test_request_context("/"):  # each step in a session of its own, as each is a request of its own
        for step in ("start", "rule", "activate"):
            s = app.extensions["caseload.sessionmaker"]()
            if step == "start":
                draft_id = plans.start_draft(s, viewer, student_id, plan_id).id
            elif step == "rule":
                plans.set_lms_rule(s, viewer, student_id, plan_id, draft_id, "multiplier", "2", "", "", False, False)
            else:
                plans.activate(s, viewer, student_id, plan_id, draft_id, summary="Double time after the review.")
            s.close()
    row = _row(db_session)
    assert row.requested_reason == "plan" and row.requested_person_ids == [world["ava"]["person"].id]
    assert moodle.user_override(world["quiz"], 31) is None  # nothing was queued

    _age(db_session, requests.STALE + dt.timedelta(seconds=1))
    assert tasks.enrollments_task() == 1
    assert moodle.user_override(world["quiz"], 31)["timelimit"] == 2400  # 2x of 20 min
    assert _row(db_session).requested_at is None

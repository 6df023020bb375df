"""Applying plan rules in Canvas (Classic Quizzes extensions, New Quizzes accommodations) against the fake Canvas:
real HTTP, real OAuth2 refresh, real database, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_app.models import LmsActionLedger, LmsConnection, LmsQuizState
from lti_app.services.lms_actions.reconcile import reconcile_course
from tests.support.fake_canvas import FakeCanvas
from tests.support.lms_world import canvas_world

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def canvas():
    with FakeCanvas(page_size=2) as fake:
        yield fake


def _ledger(db_session):
    db_session.expire_all()
    return list(db_session.scalars(select(LmsActionLedger).order_by(LmsActionLedger.id)))


@BOTH
def test_first_application_writes_one_call_per_timed_quiz_and_a_recheck_writes_nothing(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    timed = [canvas.add_quiz("501", f"Unit {i} test", 30) for i in range(3)]
    untimed = canvas.add_quiz("501", "Reading check", None)

    first = reconcile_course(db_session, w["course"].id, reason="plan")

    assert first.status == "done"
    # one call per quiz for all its students: three timed quizzes, and the untimed one for Ben's extra attempt
    assert canvas.count("POST", "/api/v1/courses/501/quizzes/") == 4
    for quiz_id in timed:
        assert canvas.extension("501", quiz_id, "9001")["extra_time"] == 15  # 1.5x of 30 minutes
        assert canvas.extension("501", quiz_id, "9002")["extra_time"] == 10
        assert canvas.extension("501", quiz_id, "9002")["extra_attempts"] == 1
        assert canvas.extension("501", quiz_id, "9003") is None  # no plan: untouched
    assert canvas.extension("501", untimed, "9001") is None  # untimed: skipped
    assert canvas.extension("501", untimed, "9002")["extra_attempts"] == 1  # attempts still apply
    rows = _ledger(db_session)
    assert {(r.lms_user_id, r.field, r.after["value"], r.outcome) for r in rows if r.lms_quiz_id == timed[0]} == {
        ("9001", "extra_time", 15, "applied"), ("9002", "extra_time", 10, "applied"),
        ("9002", "extra_attempts", 1, "applied")}
    assert all(r.reason == "plan" and r.request_id and r.lms_status == 200 for r in rows)

    writes_before = canvas.count("POST")
    again = reconcile_course(db_session, w["course"].id, reason="sweep")

    assert canvas.count("POST") == writes_before
    assert again.writes == 0 and again.applied == 0
    assert len(_ledger(db_session)) == len(rows)


@BOTH
def test_a_teachers_more_generous_extension_stays_and_the_refusal_is_recorded_once(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Midterm", 60)
    canvas.teacher_extension("501", quiz, "9001", extra_time=45, extra_attempts=2)

    reconcile_course(db_session, w["course"].id)
    reconcile_course(db_session, w["course"].id)

    assert canvas.extension("501", quiz, "9001")["extra_time"] == 45  # 1.5x would be 30: the teacher's 45 stays
    assert canvas.extension("501", quiz, "9001")["extra_attempts"] == 2
    kept = [r for r in _ledger(db_session) if r.lms_user_id == "9001"]
    assert [(r.field, r.before["value"], r.after["value"], r.outcome) for r in kept] == [
        ("extra_time", 45, 45, "kept")]


@BOTH
def test_raising_keeps_the_teachers_other_field(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Quiz 4", 20)
    canvas.teacher_extension("501", quiz, "9001", extra_time=5, extra_attempts=3)

    reconcile_course(db_session, w["course"].id)

    assert canvas.extension("501", quiz, "9001")["extra_time"] == 10
    assert canvas.extension("501", quiz, "9001")["extra_attempts"] == 3


@BOTH
def test_a_changed_time_limit_is_followed_and_a_lowered_plan_withdraws_only_caseloads_own_value(app, db_session,
                                                                                                  canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Unit 1", 30)
    reconcile_course(db_session, w["course"].id)
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15

    canvas.set_time_limit("501", quiz, 40)
    reconcile_course(db_session, w["course"].id, reason="quiz")
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 20

    w["ava"]["rule"].multiplier = None
    w["ava"]["rule"].extra_minutes = 5
    db_session.commit()
    reconcile_course(db_session, w["course"].id, reason="plan")
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 5  # Caseload's own 20 follows the plan down
    withdrawn = [r for r in _ledger(db_session) if r.outcome == "withdrawn"]
    assert [(r.before["value"], r.after["value"]) for r in withdrawn] == [(20, 5)]


@BOTH
def test_one_student_canvas_cannot_find_does_not_cost_the_others_their_time(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Unit 2", 30)
    canvas.courses["501"].students.discard("9002")  # dropped in Canvas; Caseload has not heard yet

    reconcile_course(db_session, w["course"].id)

    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15
    failed = [r for r in _ledger(db_session) if r.outcome == "failed"]
    assert {(r.lms_user_id, r.lms_status) for r in failed} == {("9002", 404)}
    state = db_session.scalar(select(LmsQuizState).where(LmsQuizState.person_id == w["ben"]["person"].id))
    assert state.status == "failed"


@BOTH
def test_new_quizzes_per_student_failures_in_a_200_are_recorded_and_retried(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    w["ava"]["rule"].reduce_choices = True
    db_session.commit()
    aid = canvas.add_new_quiz("501", "Cells quiz", 1200)
    canvas.new_quiz_failures["9002"] = "Accommodation could not be saved"

    reconcile_course(db_session, w["course"].id)

    assert canvas.courses["501"].accommodations[aid]["9001"] == {
        "extra_time": 10, "extra_attempts": 0, "reduce_choices_enabled": True}
    failed = [r for r in _ledger(db_session) if r.outcome == "failed"]
    assert {r.lms_user_id for r in failed} == {"9002"}
    assert "could not be saved" in failed[0].lms_answer

    del canvas.new_quiz_failures["9002"]
    posts = canvas.count("POST")
    reconcile_course(db_session, w["course"].id)
    assert canvas.count("POST") == posts + 1  # only the failed student is sent again
    assert canvas.courses["501"].accommodations[aid]["9002"]["extra_time"] == 10
    reconcile_course(db_session, w["course"].id)
    assert canvas.count("POST") == posts + 1


@BOTH
def test_an_expired_access_token_is_refreshed_and_a_revoked_authorization_asks_for_reauthorization(
        app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    canvas.add_quiz("501", "Unit 3", 30)
    reconcile_course(db_session, w["course"].id)
    canvas.expire_tokens()
    canvas.add_quiz("501", "Unit 4", 30)

    assert reconcile_course(db_session, w["course"].id).status == "done"
    assert canvas.count("POST", "/login/oauth2/token") == 2

    canvas.revoke_refresh_token()
    canvas.add_quiz("501", "Unit 5", 30)
    result = reconcile_course(db_session, w["course"].id)

    assert result.status == "reauthorize"
    db_session.expire_all()
    conn = db_session.scalar(select(LmsConnection))
    assert conn.health == "reauthorize" and "authorize" in conn.health_detail


@BOTH
def test_rate_limit_answers_are_waited_out(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Unit 6", 30)
    canvas.throttle_next(2, status=403)

    reconcile_course(db_session, w["course"].id)

    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15


def test_nothing_is_written_while_the_switch_is_off_and_the_preview_writes_nothing_anywhere(app, db_session, canvas):
    w = canvas_world(db_session, canvas, enabled=False)
    canvas.add_quiz("501", "Unit 7", 30)

    assert reconcile_course(db_session, w["course"].id).status == "off"
    preview = reconcile_course(db_session, w["course"].id, dry_run=True)

    assert canvas.count("POST", "/api/") == 0
    assert {(c.field, c.after) for c in preview.changes if c.person_id == w["ava"]["person"].id} == {
        ("extra_time", 15)}
    assert _ledger(db_session) == []


@BOTH
def test_window_guard_edits_splits_or_creates_the_students_one_assignment_override(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    w["ava"]["rule"].window_guard = True
    db_session.commit()
    canvas.add_course("501", ["9004"])
    quiz = canvas.add_quiz("501", "Timed test", 30, unlock_at="2027-03-01T10:00:00Z", lock_at="2027-03-01T10:30:00Z")
    aid = str(canvas.courses["501"].quizzes[quiz]["assignment_id"])
    # the teacher gave Ava and another student a later due date in one shared override
    canvas.assignment_overrides[("501", aid)] = {"1": {
        "id": 1, "assignment_id": int(aid), "title": "Make-up", "student_ids": [9001, 9004],
        "due_at": "2027-03-02T10:00:00Z", "unlock_at": "2027-03-01T10:00:00Z", "lock_at": "2027-03-01T10:30:00Z"}}

    reconcile_course(db_session, w["course"].id)

    mine = canvas.student_override("501", aid, "9001")
    assert mine["student_ids"] == [9001] and mine["lock_at"] == "2027-03-01T10:45:00Z"
    assert mine["due_at"] == "2027-03-02T10:00:00Z"  # the teacher's due date travels with her
    assert canvas.student_override("501", aid, "9004")["student_ids"] == [9004]  # split out, not dropped
    assert canvas.student_override("501", aid, "9004")["lock_at"] == "2027-03-01T10:30:00Z"
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15

    writes = canvas.count("POST") + canvas.count("PUT")
    assert reconcile_course(db_session, w["course"].id).writes == 0
    assert canvas.count("POST") + canvas.count("PUT") == writes

    w["ava"]["rule"].multiplier = 2
    db_session.commit()
    reconcile_course(db_session, w["course"].id)
    assert canvas.student_override("501", aid, "9001")["lock_at"] == "2027-03-01T11:00:00Z"  # edited, not added
    assert len(canvas.assignment_overrides[("501", aid)]) == 2


def test_a_401_without_www_authenticate_is_a_refusal_not_an_expired_token(app, db_session, canvas):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Unit 8", 30)
    canvas.fail_next("POST", 401)  # "user not authorized to perform that action": no WWW-Authenticate header

    result = reconcile_course(db_session, w["course"].id)

    assert result.status == "done"
    assert canvas.count("POST", "/login/oauth2/token") == 1  # no refresh for a permission refusal
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15  # the batch was re-sent student by student
    db_session.expire_all()
    assert db_session.scalar(select(LmsConnection)).health == "ok"

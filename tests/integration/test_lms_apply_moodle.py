"""Applying plan rules in Moodle (quiz user overrides: read, merge, save the whole record) against the fake Moodle
web service: real HTTP, real database, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_app.models import LmsActionLedger, LmsConnection, LmsQuizState
from lti_app.services.lms_actions import connections
from lti_app.services.lms_actions.reconcile import LmsUnavailable, reconcile_course
from tests.support.fake_moodle import FakeMoodle
from tests.support.lms_world import moodle_world

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def moodle():
    with FakeMoodle() as fake:
        yield fake


def _ledger(db_session):
    db_session.expire_all()
    return list(db_session.scalars(select(LmsActionLedger).order_by(LmsActionLedger.id)))


@BOTH
def test_overrides_are_created_in_one_save_per_quiz_and_a_recheck_saves_nothing(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Stoichiometry test", timelimit=1800, attempts=1)
    untimed = moodle.add_quiz(7, "Lab safety", timelimit=0, attempts=0)

    result = reconcile_course(db_session, w["course"].id, reason="plan")

    assert result.status == "done"
    assert moodle.count("mod_quiz_save_overrides") == 1
    assert moodle.user_override(quiz, 31)["timelimit"] == 2700
    assert moodle.user_override(quiz, 32)["timelimit"] == 3600
    assert moodle.user_override(quiz, 32)["attempts"] == 2
    assert moodle.user_override(quiz, 33) is None
    assert moodle.user_override(untimed, 31) is None  # untimed and unlimited attempts: nothing to do

    saves = moodle.count("mod_quiz_save_overrides")
    reads = moodle.count()
    again = reconcile_course(db_session, w["course"].id, reason="sweep")

    assert moodle.count("mod_quiz_save_overrides") == saves
    assert again.writes == 0
    assert moodle.count() - reads == 1  # the nightly re-check: the course's quiz list only (verified just now)
    full = reconcile_course(db_session, w["course"].id, reason="manual")
    assert full.writes == 0
    assert moodle.count() - reads == 3  # a full check also reads the overrides of the one quiz that needs time


@BOTH
def test_the_sweep_reads_a_quiz_again_once_its_last_check_is_a_week_old(app, db_session, moodle):
    import datetime as dt

    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Unit test", timelimit=1200)
    reconcile_course(db_session, w["course"].id, reason="plan")
    # a teacher lowers Ava's override by hand (Moodle sends an event, but suppose it was lost)
    oid = moodle.user_override(quiz, 31)["id"]
    moodle.quizzes[quiz].overrides[oid]["timelimit"] = 1300
    reconcile_course(db_session, w["course"].id)
    assert moodle.user_override(quiz, 31)["timelimit"] == 1300  # trusted: not read tonight

    for state in db_session.scalars(select(LmsQuizState)):
        state.checked_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    db_session.commit()
    reconcile_course(db_session, w["course"].id)
    assert moodle.user_override(quiz, 31)["timelimit"] == 1800  # re-read after a week and repaired


@BOTH
def test_a_teachers_override_keeps_its_close_date_attempts_and_password(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Unit test", timelimit=1200, attempts=1, timeclose=1_900_000_000)
    moodle.teacher_override(quiz, 31, timeclose=1_900_600_000, attempts=3, password="orchid")

    reconcile_course(db_session, w["course"].id)

    saved = moodle.user_override(quiz, 31)
    assert saved["timelimit"] == 1800
    assert (saved["timeclose"], saved["attempts"], saved["password"]) == (1_900_600_000, 3, "orchid")
    applied = [r for r in _ledger(db_session) if r.lms_user_id == "31"]
    assert [(r.field, r.before["value"], r.after["value"]) for r in applied] == [("timelimit", 1200, 1800)]


@BOTH
def test_a_teachers_longer_time_limit_stays(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Final", timelimit=1200)
    moodle.teacher_override(quiz, 31, timelimit=3000)

    reconcile_course(db_session, w["course"].id)

    assert moodle.user_override(quiz, 31)["timelimit"] == 3000
    assert [(r.field, r.outcome) for r in _ledger(db_session) if r.lms_user_id == "31"] == [("timelimit", "kept")]
    state = db_session.scalar(select(LmsQuizState).where(LmsQuizState.person_id == w["ava"]["person"].id))
    assert state.status == "teacher"


@BOTH
def test_a_plan_that_no_longer_applies_removes_caseloads_own_override_but_not_a_teachers_fields(app, db_session,
                                                                                                moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Quiz 1", timelimit=1200)
    other = moodle.add_quiz(7, "Quiz 2", timelimit=1200)
    moodle.teacher_override(other, 31, password="fern")
    reconcile_course(db_session, w["course"].id)
    assert moodle.user_override(other, 31)["timelimit"] == 1800

    w["ava"]["plan"].status = "ended"
    db_session.commit()
    reconcile_course(db_session, w["course"].id, reason="plan")

    assert moodle.user_override(quiz, 31) is None  # Caseload's own override, now empty: deleted
    kept = moodle.user_override(other, 31)
    assert (kept["timelimit"], kept["password"]) == (None, "fern")
    assert {r.outcome for r in _ledger(db_session) if r.lms_user_id == "31" and r.reason == "plan"} == {"withdrawn"}


@BOTH
def test_a_changed_quiz_time_limit_raises_the_students_override(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Quiz 3", timelimit=1200)
    reconcile_course(db_session, w["course"].id)
    moodle.quizzes[quiz].timelimit = 2400

    reconcile_course(db_session, w["course"].id, reason="quiz")

    assert moodle.user_override(quiz, 31)["timelimit"] == 3600


def test_an_invalid_token_marks_the_connection_for_a_new_token(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    moodle.add_quiz(7, "Quiz 4", timelimit=1200)
    moodle.token = "another-token"

    result = reconcile_course(db_session, w["course"].id)

    assert result.status == "reauthorize"
    db_session.expire_all()
    assert db_session.scalar(select(LmsConnection)).health == "reauthorize"


def test_an_unreachable_moodle_delays_the_work_and_loses_nothing(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Quiz 5", timelimit=1200)
    w["connection"].api_base_url = "http://127.0.0.1:9"  # nothing listens there
    db_session.commit()

    with pytest.raises(LmsUnavailable):
        reconcile_course(db_session, w["course"].id)
    db_session.expire_all()
    assert db_session.scalar(select(LmsConnection)).health == "down"

    conn = db_session.scalar(select(LmsConnection))
    conn.api_base_url = moodle.base_url
    db_session.commit()
    reconcile_course(db_session, w["course"].id)
    assert moodle.user_override(quiz, 31)["timelimit"] == 1800


def test_test_connection_lists_the_functions_the_service_lacks(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    moodle.functions.discard("mod_quiz_save_overrides")

    ok, detail = connections.check_moodle(db_session, w["connection"])

    assert not ok and "mod_quiz_save_overrides" in detail
    moodle.functions.add("mod_quiz_save_overrides")
    assert connections.check_moodle(db_session, w["connection"])[0]


@BOTH
def test_window_guard_moves_the_students_close_by_their_extra_time_and_keeps_the_teachers_fields(
        app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    w["ava"]["rule"].window_guard = True
    db_session.commit()
    opens = 1_900_000_000
    in_class = moodle.add_quiz(7, "In-class test", timelimit=1800, timeopen=opens, timeclose=opens + 1800)
    week = moodle.add_quiz(7, "Take-home", timelimit=1800, timeopen=opens, timeclose=opens + 7 * 86400)
    moodle.teacher_override(in_class, 31, password="lark")

    reconcile_course(db_session, w["course"].id)

    saved = moodle.user_override(in_class, 31)
    assert (saved["timelimit"], saved["timeclose"], saved["password"]) == (2700, opens + 1800 + 900, "lark")
    assert moodle.user_override(week, 31)["timeclose"] is None  # a long window needs nothing
    ben = db_session.scalar(select(LmsQuizState).where(LmsQuizState.person_id == w["ben"]["person"].id,
                                                        LmsQuizState.detail != ""))
    assert "window closes before" in ben.detail  # Ben's plan has no guard: the report warns instead
    saves = moodle.count("mod_quiz_save_overrides")
    reconcile_course(db_session, w["course"].id)
    assert moodle.count("mod_quiz_save_overrides") == saves


@BOTH
def test_a_groups_longer_time_is_never_cut_by_caseloads_user_override(app, db_session, moodle):
    w = moodle_world(db_session, moodle)
    longer = moodle.add_quiz(7, "Group A test", timelimit=1200)
    shorter = moodle.add_quiz(7, "Group B test", timelimit=1200)
    moodle.group_override(longer, 501, {31}, timelimit=3600, timeclose=1_900_000_000)
    moodle.group_override(shorter, 502, {31}, timelimit=1500)

    reconcile_course(db_session, w["course"].id)

    assert moodle.user_override(longer, 31) is None  # the group's 60 minutes beat 1.5x: nothing written, kept
    assert moodle.user_override(shorter, 31)["timelimit"] == 1800  # 1.5x beats the group's 25 minutes
    assert moodle.user_override(shorter, 31)["timeclose"] is None  # the group's other fields still apply
    moodle.quizzes[shorter].overrides[next(o for o, r in moodle.quizzes[shorter].overrides.items()
                                           if r["groupid"] == 502)]["timelimit"] = 2400
    reconcile_course(db_session, w["course"].id, reason="quiz")
    assert moodle.user_override(shorter, 31)["timelimit"] == 2400  # the group was raised: so is Ava's override

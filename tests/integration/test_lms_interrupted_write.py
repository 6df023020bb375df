"""A reconcile that dies between the LMS accepting a write and the ledger's commit (issue #12, "a sweep that is
killed halfway resumes without double changes"), against the fake Moodle and the fake Canvas, on PostgreSQL and
SQLite. The change is committed as an intent before the call; the redo reads the LMS, recognises Caseload's own
value, and appends the ledger row once, instead of losing the record (and later taking the value for a teacher's).
tests/fault/test_lms_faults.py proves the same with a real worker process that is SIGKILLed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from integrations.moodle.webservice import MoodleWebService
from lti_app.models import LmsActionLedger, LmsLedgerIntent, LmsQuizState
from lti_app.services.lms_actions import reconcile
from lti_app.services.lms_actions.reconcile import RECOVERED_ANSWER, reconcile_course
from tests.support.fake_canvas import FakeCanvas
from tests.support.fake_moodle import FakeMoodle
from tests.support.lms_world import canvas_world, moodle_world

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


class Killed(BaseException):
    """The process dying: nothing catches it, nothing after it is committed."""


@pytest.fixture
def moodle():
    with FakeMoodle() as fake:
        yield fake


@pytest.fixture
def canvas():
    with FakeCanvas() as fake:
        yield fake


def _die_after_the_lms_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer of the first write arrives, and the process dies before recording it."""
    original = reconcile._record

    def dying(ctx: Any, quiz: Any, c: Any, decisions: Any, **kw: Any) -> None:
        if any(d.write for d in decisions) and not ctx.dry_run:
            raise Killed
        original(ctx, quiz, c, decisions, **kw)

    monkeypatch.setattr(reconcile, "_record", dying)


def _interrupted(db_session: Any, monkeypatch: pytest.MonkeyPatch, course_id: int, **kw: Any) -> None:
    with monkeypatch.context() as m:
        _die_after_the_lms_answers(m)
        with pytest.raises(Killed):
            reconcile_course(db_session, course_id, **kw)
    db_session.rollback()  # what the dead process had not committed is gone
    db_session.expire_all()


def _ledger(db_session: Any) -> list[LmsActionLedger]:
    db_session.expire_all()
    return list(db_session.scalars(select(LmsActionLedger).order_by(LmsActionLedger.id)))


def _intents(db_session: Any) -> list[LmsLedgerIntent]:
    db_session.expire_all()
    return list(db_session.scalars(select(LmsLedgerIntent)))


@BOTH
def test_moodle_a_write_the_lms_accepted_before_the_process_died_is_recorded_once_as_caseloads(app, db_session, moodle,
                                                                                              monkeypatch):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Stoichiometry test", timelimit=1800)

    _interrupted(db_session, monkeypatch, w["course"].id, reason="plan", event="plan_version:1")

    assert moodle.user_override(quiz, 31)["timelimit"] == 2700  # the LMS has it
    assert _ledger(db_session) == []  # the ledger does not, yet
    assert {(i.field, i.after["value"]) for i in _intents(db_session)} == {
        ("timelimit", 2700), ("timelimit", 3600), ("attempts", 2)}

    saves = moodle.count("mod_quiz_save_overrides")
    redo = reconcile_course(db_session, w["course"].id, reason="plan")

    assert redo.status == "done" and redo.writes == 0
    assert moodle.count("mod_quiz_save_overrides") == saves  # not written twice
    rows = _ledger(db_session)
    assert sorted((r.lms_user_id, r.field, r.before["value"], r.after["value"], r.outcome) for r in rows) == [
        ("31", "timelimit", 1800, 2700, "applied"), ("32", "attempts", 1, 2, "applied"),
        ("32", "timelimit", 1800, 3600, "applied")]
    assert all(r.lms_answer == RECOVERED_ANSWER and r.reason == "plan" and r.event == "plan_version:1"
               and r.plan_version_id is not None for r in rows)
    assert _intents(db_session) == []
    states = {s.person_id: s.status for s in db_session.scalars(select(LmsQuizState))}
    assert states == {w["ava"]["person"].id: "ok", w["ben"]["person"].id: "ok"}

    # a re-check afterwards: no write, nothing new in the ledger
    again = reconcile_course(db_session, w["course"].id, reason="manual")
    assert again.writes == 0 and len(_ledger(db_session)) == 3

    # the value is Caseload's own: when the plan ends, Caseload withdraws it (a teacher's would stay)
    w["ava"]["plan"].status = "ended"
    db_session.commit()
    reconcile_course(db_session, w["course"].id, reason="plan")
    assert moodle.user_override(quiz, 31) is None
    assert [(r.lms_user_id, r.outcome) for r in _ledger(db_session)][-1] == ("31", "withdrawn")


@BOTH
def test_moodle_a_write_that_never_reached_the_lms_is_made_once_on_the_redo(app, db_session, moodle, monkeypatch):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Unit test", timelimit=1200)

    def dies_before_sending(self: Any, *args: Any, **kw: Any) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(MoodleWebService, "save_overrides", dies_before_sending)
        with pytest.raises(Killed):
            reconcile_course(db_session, w["course"].id, reason="plan")
    db_session.rollback()
    assert len(_intents(db_session)) == 3 and moodle.user_override(quiz, 31) is None

    reconcile_course(db_session, w["course"].id, reason="plan")

    assert moodle.count("mod_quiz_save_overrides") == 1
    assert moodle.user_override(quiz, 31)["timelimit"] == 1800
    rows = _ledger(db_session)
    assert sorted((r.lms_user_id, r.field, r.outcome, r.lms_answer) for r in rows) == [
        ("31", "timelimit", "applied", ""), ("32", "attempts", "applied", ""), ("32", "timelimit", "applied", "")]
    assert all(r.request_id for r in rows)
    assert _intents(db_session) == []


@BOTH
def test_moodle_a_teacher_changing_the_value_before_the_redo_is_not_recorded_as_caseloads(app, db_session, moodle,
                                                                                          monkeypatch):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Unit test", timelimit=1200)
    _interrupted(db_session, monkeypatch, w["course"].id)
    oid = moodle.user_override(quiz, 31)["id"]
    moodle.quizzes[quiz].overrides[oid]["timelimit"] = 4000  # a teacher gives Ava more, before the redo

    reconcile_course(db_session, w["course"].id)

    rows = {(r.lms_user_id, r.field): r for r in _ledger(db_session)}
    assert (rows["31", "timelimit"].outcome, rows["31", "timelimit"].after["value"]) == ("kept", 4000)  # left alone
    assert (rows["32", "timelimit"].outcome, rows["32", "timelimit"].lms_answer) == ("applied", RECOVERED_ANSWER)
    assert len(rows) == 3
    assert moodle.user_override(quiz, 31)["timelimit"] == 4000
    assert _intents(db_session) == []


@BOTH
def test_canvas_classic_a_write_the_lms_accepted_before_the_process_died_is_recorded_once(app, db_session, canvas,
                                                                                         monkeypatch):
    w = canvas_world(db_session, canvas)
    quiz = canvas.add_quiz("501", "Unit 1 test", 30)

    _interrupted(db_session, monkeypatch, w["course"].id, reason="sweep")

    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15
    posts = canvas.count("POST")
    reconcile_course(db_session, w["course"].id, reason="sweep")

    assert canvas.count("POST") == posts
    rows = _ledger(db_session)
    assert sorted((r.lms_user_id, r.field, r.after["value"], r.outcome) for r in rows) == [
        ("9001", "extra_time", 15, "applied"), ("9002", "extra_attempts", 1, "applied"),
        ("9002", "extra_time", 10, "applied")]
    assert all(r.lms_answer == RECOVERED_ANSWER for r in rows)
    assert _intents(db_session) == []


@BOTH
def test_canvas_new_quizzes_cannot_be_read_back_so_the_interrupted_write_is_sent_again_and_recorded_once(
        app, db_session, canvas, monkeypatch):
    w = canvas_world(db_session, canvas)
    aid = canvas.add_new_quiz("501", "Unit 2 test", 1800)

    _interrupted(db_session, monkeypatch, w["course"].id)
    reconcile_course(db_session, w["course"].id)

    assert canvas.count("POST", f"/api/quiz/v1/courses/501/quizzes/{aid}/accommodations") == 2
    assert canvas.courses["501"].accommodations[aid]["9001"]["extra_time"] == 15
    rows = _ledger(db_session)
    assert sorted((r.lms_user_id, r.field, r.outcome) for r in rows) == [
        ("9001", "extra_time", "applied"), ("9002", "extra_attempts", "applied"), ("9002", "extra_time", "applied")]
    assert all(r.lms_answer == "" and r.request_id for r in rows)
    assert _intents(db_session) == []


@pytest.mark.postgres_only
def test_intents_cost_no_statement_on_a_recheck_and_one_insert_and_one_delete_per_quiz_written(app, db_session, moodle):
    """PostgreSQL (production; the bench's database): the intents of one quiz are one batched INSERT and one
    batched DELETE; a re-check reads them in one SELECT per course and writes nothing."""
    w = moodle_world(db_session, moodle)
    for i in range(4):
        moodle.add_quiz(7, f"Unit {i} test", timelimit=1200 + 60 * i)
    statements: list[str] = []
    engine = db_session.get_bind()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        reconcile_course(db_session, w["course"].id, reason="plan")
        first = [s for s in statements if "lms_ledger_intents" in s]
        statements.clear()
        reconcile_course(db_session, w["course"].id, reason="manual")
        recheck = [s for s in statements if "lms_ledger_intents" in s]
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert moodle.count("mod_quiz_save_overrides") == 4
    assert sum(s.lstrip().upper().startswith("INSERT") for s in first) == 4
    assert sum(s.lstrip().upper().startswith("DELETE") for s in first) == 4
    assert len(recheck) == 1 and recheck[0].lstrip().upper().startswith("SELECT")


@pytest.mark.postgres_only
def test_two_reconciles_of_one_course_at_once_write_and_record_each_change_once(app, db_session):
    """A plan activation and a quiz event (or *Apply now* twice) reconcile the same course at the same moment: one
    runs at a time (a PostgreSQL advisory lock per course), so the second reads what the first wrote."""
    import threading

    with FakeMoodle(latency=0.05) as moodle:
        w = moodle_world(db_session, moodle)
        quizzes = [moodle.add_quiz(7, f"Unit {i} test", timelimit=1200) for i in range(3)]
        course_id = w["course"].id
        results: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            with app.app_context():
                session = app.extensions["caseload.sessionmaker"]()
                try:
                    results.append(reconcile_course(session, course_id, reason="plan"))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                finally:
                    session.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

        assert errors == [] and [r.status for r in results] == ["done", "done"]
        assert moodle.count("mod_quiz_save_overrides") == len(quizzes)
        assert sorted(r.writes for r in results) == [0, len(quizzes)]
        rows = _ledger(db_session)
        assert len(rows) == len({(r.quiz_id, r.person_id, r.field) for r in rows}) == 3 * len(quizzes)
        assert _intents(db_session) == []

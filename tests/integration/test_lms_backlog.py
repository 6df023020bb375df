"""Issue #12, "an LMS that is down delays, never loses, the work; the sync health page shows it": the LMS work
backlog per platform on /admin/sync — connection health, courses waiting (since when, attempts) or failing, the
last change applied and the last course run through, the last error in words (no token) — against the fake Moodle
web service, on PostgreSQL and SQLite; and the page's statement count does not grow with the backlog."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select

from lti_app.models import LmsConnection, LmsCourseBacklog
from lti_app.services.lms_actions.reconcile import LmsUnavailable, reconcile_course
from tests.support import factories as f
from tests.support.casework_world import text_of
from tests.support.fake_moodle import FakeMoodle
from tests.support.lms_world import moodle_world

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def moodle():
    with FakeMoodle() as fake:
        yield fake


def _page(client: Any, token: str) -> str:
    resp = client.get("/admin/sync", query_string={"t": token})
    assert resp.status_code == 200
    return text_of(resp)


def _down(db_session: Any) -> None:
    conn = db_session.scalar(select(LmsConnection))
    conn.api_base_url = "http://127.0.0.1:9"  # nothing listens there
    db_session.commit()


def test_a_moodle_that_is_down_shows_the_course_waiting_since_the_first_attempt_then_clears(
        app, client, db_session, token_for, moodle):
    w = moodle_world(db_session, moodle)
    quiz = moodle.add_quiz(7, "Unit test", timelimit=1200)
    admin = f.person(db_session, w["platform"], "Marlo Vance", kind="staff")
    token = token_for(admin, roles=("admin",))
    reconcile_course(db_session, w["course"].id, reason="plan")        # works: a change is applied
    _down(db_session)
    for _ in range(2):
        with pytest.raises(LmsUnavailable):
            reconcile_course(db_session, w["course"].id, reason="quiz")
    db_session.expire_all()
    row = db_session.scalar(select(LmsCourseBacklog))
    assert (row.waiting_reason, row.attempts) == ("down", 2) and row.waiting_since <= row.last_attempt_at

    page = _page(client, token)
    assert "Accommodations applied in the LMS" in page
    assert "Connection down: Caseload could not reach the LMS" in page
    assert "Courses waiting 1 since" in page
    assert "Chemistry State: waiting the LMS could not be reached" in page and "Attempts: 2" in page
    assert "could not reach 127.0.0.1:9" in page                       # the last error, in words
    assert moodle.token not in page                                    # never a token
    assert "Last change applied none yet" not in page                  # the change applied before it went down

    conn = db_session.scalar(select(LmsConnection))
    conn.api_base_url = moodle.base_url
    db_session.commit()
    moodle.add_quiz(7, "Quiz 2", timelimit=600)
    reconcile_course(db_session, w["course"].id, reason="sweep")       # back: the work is done, nothing lost
    assert moodle.user_override(quiz, 31)["timelimit"] == 1800
    page = _page(client, token)
    assert "Connection working" in page and "Courses waiting 0" in page
    assert "No course is waiting for the LMS." in page


def test_a_refused_authorization_waits_for_an_administrator(app, client, db_session, token_for, moodle):
    w = moodle_world(db_session, moodle)
    moodle.add_quiz(7, "Unit test", timelimit=1200)
    moodle.token = "another-token"
    assert reconcile_course(db_session, w["course"].id).status == "reauthorize"
    admin = f.person(db_session, w["platform"], "Marlo Vance", kind="staff")
    page = _page(client, token_for(admin, roles=("admin",)))
    assert "needs a new authorization by an LMS administrator" in page
    assert "the LMS refused Caseload's authorization" in page


def test_another_platforms_backlog_is_not_shown_to_its_neighbour_admin(app, client, db_session, token_for, moodle):
    w = moodle_world(db_session, moodle)
    moodle.add_quiz(7, "Unit test", timelimit=1200)
    _down(db_session)
    with pytest.raises(LmsUnavailable):
        reconcile_course(db_session, w["course"].id)
    other = f.platform(db_session, name="cedar-canvas", lms="canvas")
    neighbour = f.person(db_session, other, "Lior Fenwick", kind="staff")
    page = _page(client, token_for(neighbour, roles=("admin",)))
    assert "Accommodations applied in the LMS" not in page and "Chemistry" not in page


def test_the_page_statement_count_does_not_grow_with_the_backlog(app, client, db_session, token_for, moodle):
    w = moodle_world(db_session, moodle)
    admin = f.person(db_session, w["platform"], "Marlo Vance", kind="staff")
    token = token_for(admin, roles=("admin",))
    now = dt.datetime.now(dt.UTC)

    def backlog(n: int) -> None:
        for i in range(n):
            course = f.course(db_session, w["platform"], f"Course {i}-{n}", lms_course_id=f"{n}{i}")
            db_session.add(LmsCourseBacklog(platform_id=w["platform"].id, course_id=course.id, waiting_reason="down",
                                            waiting_since=now if i % 2 else None, attempts=i,
                                            failing_since=None if i % 2 else now, failed_changes=0 if i % 2 else 1,
                                            last_error="HTTP 503 from lms.example", last_attempt_at=now))
        db_session.commit()

    engine = app.extensions["caseload.engine"]

    def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            _page(client, token)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    backlog(2)
    _page(client, token)
    few = statements()
    backlog(9)
    many = statements()
    assert few == many
    page = _page(client, token)
    assert "Courses failing" in page and "1 change refused" in page


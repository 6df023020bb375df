"""NRPS reconcile against a local test platform (real HTTP, real client assertions, real database)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from lti_app.models import Course, Enrollment, Person, SyncRun
from lti_app.services.roster import primitives as roster
from lti_app.services.roster import reconcile
from tests.support import factories as f
from tests.support.nrps_platform import Fault, NrpsTestPlatform, make_tool_key, member
from tests.support.recorded import MOODLE_4_5

FIXTURE = MOODLE_4_5 / "nrps_memberships.json"
NAMES = ["Avery Quinlan", "Rowan Ellery", "Sage Whitcombe", "Jules Marlowe", "Indigo Farrant", "Remy Castellan",
         "Tamsin Oakes", "Linden Hale", "Marlo Vance", "Quincy Ashdown"]


@pytest.fixture
def tool_jwks(app, db_session):
    jwks = make_tool_key(db_session)
    db_session.commit()
    return jwks


@pytest.fixture
def lms(tool_jwks):
    with NrpsTestPlatform("caseload-client", tool_jwks, max_page_size=10) as platform:
        yield platform


def _setup(db_session, lms, *, lms_family="moodle", context_id="ctx-1", title="Algebra I"):
    plat = f.platform(db_session, lms=lms_family, client_id=lms.client_id, auth_token_url=lms.token_url)
    course = f.course(db_session, plat, title=title, lti_context_id=context_id, nrps_url=lms.nrps_url(context_id))
    db_session.commit()
    return plat, course


def _students(n, prefix="s"):
    return [member(f"{prefix}{i}", ["Learner"], name=f"{NAMES[i % len(NAMES)]} {i}", email=f"{prefix}{i}@example.test")
            for i in range(n)]


def _states(db_session, course):
    db_session.expire_all()
    rows = db_session.execute(select(Person.lti_sub, Enrollment.role, Enrollment.state)
                              .join(Person, Person.id == Enrollment.person_id)
                              .where(Enrollment.course_id == course.id)).all()
    return {(sub, role): state for sub, role, state in rows}


def _sync(db_session, course, trigger="test"):
    return reconcile.reconcile_course(db_session, course.id, trigger=trigger)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_reconcile_follows_next_links_and_creates_every_member(db_session, lms):
    plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", [member("t1", ["Instructor"], name="Rowan Ellery"), *_students(24)])

    outcome = _sync(db_session, course)

    assert outcome.ok, outcome.error
    assert (outcome.added, outcome.removed, outcome.members) == (25, 0, 25)
    pages = lms.requests_to("/nrps/")
    assert len(pages) == 3  # 10 + 10 + 5, following Link rel="next"
    assert all(h.get("Accept") == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json" for _, _, h, _ in pages)
    states = _states(db_session, course)
    assert len(states) == 25 and set(states.values()) == {"active"}
    assert states[("t1", "teacher")] == "active"
    teacher = roster.get_person(db_session, plat.id, "t1")
    assert teacher.kind == "staff" and teacher.name == "Rowan Ellery"
    student = roster.get_person(db_session, plat.id, "s3")
    assert student.kind == "student" and student.email == "s3@example.test"
    assert student.lms_user_id == "s3"  # Moodle: the LTI sub is Moodle's user id
    run = db_session.scalars(select(SyncRun)).one()
    assert (run.kind, run.status, run.added, run.removed, run.trigger) == ("nrps", "ok", 25, 0, "test")
    db_session.refresh(course)
    assert course.last_roster_sync_at is not None
    wide = roster.course_wide_section(db_session, course)
    assert {e.section_id for e in db_session.scalars(select(Enrollment))} == {wide.id}


def test_members_missing_from_a_later_roster_end_unless_something_newer_was_applied(db_session, lms):
    plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(6))
    assert _sync(db_session, course).added == 6
    # s4 re-enrolled by a webhook event that happened after the next roster is observed.
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    s4 = roster.get_person(db_session, plat.id, "s4")
    wide = roster.course_wide_section(db_session, course)
    roster.apply_enrollment(db_session, person=s4, course=course, section=wide, role="student", state="active",
                            source="webhook", source_time=future)
    db_session.commit()
    lms.set_members("ctx-1", _students(4))  # s4 and s5 are no longer listed

    outcome = _sync(db_session, course)

    assert (outcome.added, outcome.removed) == (0, 1)
    states = _states(db_session, course)
    assert states[("s5", "student")] == "inactive"
    assert states[("s4", "student")] == "active"  # the newer webhook observation stands
    assert [states[(f"s{i}", "student")] for i in range(4)] == ["active"] * 4
    ended = db_session.scalars(select(Enrollment).join(Person).where(Person.lti_sub == "s5")).one()
    assert ended.source == "nrps"


def test_inactive_and_deleted_members_end_and_a_returning_member_is_reactivated(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(3))
    _sync(db_session, course)
    lms.set_members("ctx-1", [member("s0", status="Inactive"), member("s1", status="Deleted"), member("s2")])

    outcome = _sync(db_session, course)

    assert outcome.removed == 2
    states = _states(db_session, course)
    assert states == {("s0", "student"): "inactive", ("s1", "student"): "deleted", ("s2", "student"): "active"}
    lms.set_members("ctx-1", _students(3))
    again = _sync(db_session, course)
    assert (again.added, again.removed) == (2, 0)
    assert set(_states(db_session, course).values()) == {"active"}


def test_role_change_ends_the_old_role_and_adds_the_new_one(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", [member("u1", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])])
    _sync(db_session, course)
    lms.set_members("ctx-1", [member("u1", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                                            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"])])
    outcome = _sync(db_session, course)
    assert (outcome.added, outcome.removed) == (1, 1)
    assert _states(db_session, course) == {("u1", "student"): "inactive", ("u1", "ta"): "active"}


def test_rate_limited_page_is_retried_and_the_sync_succeeds(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(3))
    lms.fail_next("/nrps/ctx-1", Fault(429, {"Retry-After": "0"}), Fault(503))

    outcome = _sync(db_session, course)

    assert outcome.ok and outcome.added == 3
    assert len(lms.requests_to("/nrps/ctx-1")) == 3  # 429, 503, then the page


def test_a_page_that_keeps_failing_fails_the_run_and_changes_nothing(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(15))
    _sync(db_session, course)
    lms.set_members("ctx-1", _students(12))  # three removals would follow, if the roster were read completely
    lms.fail_next("/nrps/ctx-1", *[Fault(500)] * 10)

    outcome = _sync(db_session, course)

    assert outcome.status == "failed" and "HTTP 500" in outcome.error
    assert set(_states(db_session, course).values()) == {"active"}
    runs = db_session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
    assert [r.status for r in runs] == ["ok", "failed"]
    assert runs[1].error == outcome.error and runs[1].finished_at is not None


def test_an_empty_roster_does_not_end_a_whole_class(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(4))
    _sync(db_session, course)
    lms.set_members("ctx-1", [])

    outcome = _sync(db_session, course)

    assert outcome.status == "failed" and "no active member" in outcome.error
    assert set(_states(db_session, course).values()) == {"active"}


def test_token_is_obtained_once_and_reused_for_every_course(db_session, lms):
    plat, course = _setup(db_session, lms)
    other = f.course(db_session, plat, title="Biology", lti_context_id="ctx-2", nrps_url=lms.nrps_url("ctx-2"))
    db_session.commit()
    lms.set_members("ctx-1", _students(2))
    lms.set_members("ctx-2", _students(2, prefix="b"))

    assert _sync(db_session, course).ok and _sync(db_session, other).ok

    assert lms.tokens_issued == 1
    (post,) = lms.requests_to("/token")
    assert post[0] == "POST"


def test_an_access_token_revoked_early_is_replaced_once(db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(2))
    _sync(db_session, course)
    lms.expire_all_tokens()

    assert _sync(db_session, course).ok
    assert lms.tokens_issued == 2


def test_platform_refusing_the_client_assertion_fails_with_a_readable_reason(app, db_session, tool_jwks):
    other_key = {"keys": [dict(tool_jwks["keys"][0], kid="someone-else")]}
    with NrpsTestPlatform("caseload-client", other_key) as lms:
        _plat, course = _setup(db_session, lms)
        lms.set_members("ctx-1", _students(2))
        outcome = _sync(db_session, course)
    assert outcome.status == "failed"
    assert "client assertion" in outcome.error
    assert lms.refused_assertions == ["unknown kid"]
    assert _states(db_session, course) == {}


def test_assertion_audience_is_the_platform_audience_when_set(db_session, tool_jwks):
    with NrpsTestPlatform("caseload-client", tool_jwks, audience="https://lms.example.test/oauth2/aud") as lms:
        plat, course = _setup(db_session, lms)
        lms.set_members("ctx-1", _students(1))
        assert _sync(db_session, course).status == "failed"  # aud = token URL: refused
        plat.auth_audience = "https://lms.example.test/oauth2/aud"
        db_session.commit()
        assert _sync(db_session, course).ok


def test_recorded_moodle_roster_is_parsed_and_applied(db_session, lms):
    recorded = json.loads(FIXTURE.read_text())
    plat, course = _setup(db_session, lms, context_id=recorded["context"]["id"])
    lms.set_members(recorded["context"]["id"], recorded["members"], title=recorded["context"]["title"])

    outcome = _sync(db_session, course)

    assert outcome.ok and outcome.added == 3
    assert _states(db_session, course) == {("7", "student"): "active", ("4", "student"): "active",
                                           ("3", "teacher"): "active"}
    people = {p.lti_sub: p for p in db_session.scalars(select(Person).where(Person.platform_id == plat.id))}
    assert people["3"].kind == "staff" and people["4"].kind == "student"
    assert people["4"].sis_id is None  # lis_person_sourcedid is "" in Moodle's roster
    assert people["4"].lms_user_id == "4" and people["4"].given_name == "Stu1"


def test_canvas_roster_asks_for_messages_and_records_canvas_user_ids(db_session, tool_jwks):
    with NrpsTestPlatform("caseload-client", tool_jwks, include_messages_with_rlid=True) as lms:
        plat, course = _setup(db_session, lms, lms_family="canvas",
                              context_id="4dde05e8ca1973bcca9bffc13e1548820eee93a3")
        msg = "https://www.instructure.com/canvas_user_id"
        lms.set_members(course.lti_context_id, [
            member("a1b2-uuid", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], name="Avery Quinlan",
                   sourcedid="SIS-1001", message=[{msg: 1234}]),
            member("c3d4-uuid", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"], name="Rowan Ellery",
                   message=[{"https://purl.imsglobal.org/spec/lti/claim/custom":
                             {"canvas_user_id": "20000000000077"}}]),
            member("e5f6-uuid", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]),
        ])
        outcome = _sync(db_session, course)
        query = parse_qs(lms.requests_to("/nrps/")[0][3])
    assert outcome.ok
    assert query["rlid"] == [course.lti_context_id]
    people = {p.lti_sub: p for p in db_session.scalars(select(Person).where(Person.platform_id == plat.id))}
    assert people["a1b2-uuid"].lms_user_id == "1234" and people["a1b2-uuid"].sis_id == "SIS-1001"
    assert people["c3d4-uuid"].lms_user_id == "77"  # global id normalised to the local id
    assert people["e5f6-uuid"].lms_user_id is None
    assert _states(db_session, course)[("e5f6-uuid", "observer")] == "active"


def test_section_enrollments_are_confirmed_and_nrps_course_wide_rows_retired(db_session, lms):
    plat, course = _setup(db_session, lms, lms_family="canvas")
    lms.set_members("ctx-1", _students(2))
    _sync(db_session, course)
    # A Live Event then places s0 in section 42.
    s0 = roster.get_person(db_session, plat.id, "s0")
    sec = roster.ensure_section(db_session, course, "42", name="Period 2")
    roster.apply_enrollment(db_session, person=s0, course=course, section=sec, role="student", state="active",
                            source="webhook", source_time=dt.datetime.now(dt.UTC))
    db_session.commit()

    outcome = _sync(db_session, course)

    assert (outcome.added, outcome.removed) == (0, 0)
    rows = db_session.scalars(select(Enrollment).join(Person).where(Person.lti_sub == "s0")).all()
    by_section = {r.section_id: r.state for r in rows}
    wide = roster.course_wide_section(db_session, course)
    assert by_section == {sec.id: "active", wide.id: "inactive"}
    assert _sync(db_session, course).added == 0  # stable: nothing re-created


def test_sync_of_a_course_without_roster_url_is_skipped(db_session, lms):
    plat, _course = _setup(db_session, lms)
    bare = f.course(db_session, plat, title="No NRPS")
    db_session.commit()
    outcome = reconcile.reconcile_course(db_session, bare.id)
    assert outcome.status == "skipped" and "first launch" in outcome.error
    assert db_session.scalar(select(func.count()).select_from(SyncRun)) == 0


def test_launch_requests_are_debounced_per_course(app, db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(2))

    reconcile.request_course_sync(course.id)
    reconcile.request_course_sync(course.id)  # a second launch within the debounce window

    assert db_session.scalar(select(func.count()).select_from(SyncRun)) == 1
    assert len(lms.requests_to("/nrps/")) == 1
    # Once the window has passed, the next launch syncs again.
    db_session.get(Course, course.id).last_roster_sync_at = dt.datetime.now(dt.UTC) - dt.timedelta(
        seconds=app.config["CASELOAD"].nrps_debounce_seconds + 1)
    db_session.commit()
    reconcile.request_course_sync(course.id, trigger="launch")
    runs = db_session.scalars(select(SyncRun)).all()
    assert [r.trigger for r in runs] == ["launch", "launch"] and all(r.status == "ok" for r in runs)


def test_request_course_sync_never_raises(app, db_session, lms):
    _plat, course = _setup(db_session, lms)
    lms.fail_next("/token", *[Fault(500)] * 10)
    reconcile.request_course_sync(course.id)  # the token endpoint is down: recorded, not raised
    reconcile.request_course_sync(999_999)  # unknown course: nothing to do
    run = db_session.scalars(select(SyncRun)).one()
    assert run.status == "failed" and "token endpoint" in run.error


def test_a_run_interrupted_long_ago_is_marked_failed_by_the_next_run(db_session, lms):
    plat, course = _setup(db_session, lms)
    lms.set_members("ctx-1", _students(1))
    db_session.add(SyncRun(platform_id=plat.id, course_id=course.id, kind="nrps", trigger="schedule",
                           started_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), status="running"))
    db_session.commit()
    assert _sync(db_session, course).ok
    statuses = [r.status for r in db_session.scalars(select(SyncRun).order_by(SyncRun.id))]
    assert statuses == ["failed", "ok"]

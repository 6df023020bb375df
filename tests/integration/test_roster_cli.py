"""`caseload roster list|sync|oneroster-config` (DESIGN.md §6)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select  # noqa: E402

from lti_app.cli import main  # noqa: E402
from lti_app.models import SyncRun  # noqa: E402
from tests.support import factories as f  # noqa: E402
from tests.support.nrps_platform import Fault, NrpsTestPlatform, make_tool_key, member  # noqa: E402
from tests.support.oneroster_server import OneRosterServer  # noqa: E402

T0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def school(db_session):
    plat = f.platform(db_session, name="moodle-east", lms="moodle")
    course = f.course(db_session, plat, title="Algebra I", lti_context_id="ctx-1")
    avery = f.person(db_session, plat, name="Avery Quinlan")
    rowan = f.person(db_session, plat, name="Rowan Ellery", kind="staff")
    sage = f.person(db_session, plat, name="Sage Whitcombe")
    f.enroll(db_session, rowan, course, role="teacher", when=T0)
    f.enroll(db_session, avery, course, role="student", source="nrps", when=T0)
    f.enroll(db_session, sage, course, role="student", state="inactive", source="webhook", when=T0)
    db_session.commit()
    return {"platform": plat, "course": course}


def test_list_prints_what_caseload_believes(runner, school):
    result = runner.invoke(main, ["roster", "list", "--platform", "moodle-east", "--course", "ctx-1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Algebra I (moodle-east, context ctx-1): 2 active of 3 enrollments"
    assert lines[1].split() == ["person", "role", "section", "state", "source", "source_time"]
    assert "Avery Quinlan" in lines[2] and "nrps" in lines[2] and "course-wide" in lines[2]
    assert "Rowan Ellery" in lines[3] and "teacher" in lines[3]
    # Shown in district time (tests run in America/Chicago): 08:00 UTC is 03:00 CDT.
    assert "Sage Whitcombe" in lines[4] and "inactive" in lines[4] and "2026-09-01 03:00:00 CDT" in lines[4]


def test_list_json(runner, school):
    result = runner.invoke(main, ["roster", "list", "--platform", "moodle-east", "--course", "ctx-1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["platform"] == "moodle-east" and data["course"] == "ctx-1"
    rows = {(e["name"], e["role"]): e for e in data["enrollments"]}
    assert rows[("Sage Whitcombe", "student")]["state"] == "inactive"
    assert rows[("Avery Quinlan", "student")]["source"] == "nrps"
    assert rows[("Rowan Ellery", "teacher")]["source_time"] == "2026-09-01T08:00:00+00:00"
    assert rows[("Rowan Ellery", "teacher")]["section"] == "course-wide"


def test_list_unknown_platform_or_course_says_so(runner, school):
    result = runner.invoke(main, ["roster", "list", "--platform", "nope", "--course", "ctx-1"])
    assert result.exit_code == 1 and "No platform named 'nope'" in result.output
    result = runner.invoke(main, ["roster", "list", "--platform", "moodle-east", "--course", "ctx-9"])
    assert result.exit_code == 1 and "no course with LTI context id 'ctx-9'" in result.output


def test_sync_pulls_every_course_and_reports_each(runner, db_session, school):
    jwks = make_tool_key(db_session)
    with NrpsTestPlatform(school["platform"].client_id, jwks) as lms:
        school["platform"].auth_token_url = lms.token_url
        school["course"].nrps_url = lms.nrps_url("ctx-1")
        broken = f.course(db_session, school["platform"], title="Biology", lti_context_id="ctx-2",
                          nrps_url=lms.nrps_url("ctx-2"))
        db_session.commit()
        lms.set_members("ctx-1", [member("new-1"), member("new-2")])  # Avery and Rowan left the course
        lms.fail_next("/nrps/ctx-2", Fault(404))
        result = runner.invoke(main, ["roster", "sync", "--platform", "moodle-east"])
    assert result.exit_code == 1  # one course failed
    assert "ok      ctx-1 Algebra I: 2 members, +2 added, 0 updated, -2 removed" in result.output
    assert "failed  ctx-2 Biology: The LMS no longer knows this course's membership URL" in result.output
    assert "1 sync(s) failed" in result.output
    assert {r.course_id: r.status for r in db_session.scalars(select(SyncRun))} == {
        school["course"].id: "ok", broken.id: "failed"}


def test_sync_course_needs_platform_and_a_roster_url(runner, school):
    result = runner.invoke(main, ["roster", "sync", "--course", "ctx-1"])
    assert result.exit_code == 2 and "--course needs --platform" in result.output
    result = runner.invoke(main, ["roster", "sync", "--platform", "moodle-east", "--course", "ctx-1"])
    assert result.exit_code == 1 and "no NRPS roster URL yet" in result.output


def test_oneroster_config_stores_the_connection_and_sync_pulls_it(runner, db_session, school):
    with OneRosterServer() as sis:
        sis.klass("class-alg", "Algebra I")
        sis.user("stu-9", "Indigo", "Farrant")
        sis.enroll("e1", "stu-9", "class-alg")
        school["course"].sis_id = "class-alg"
        db_session.commit()
        result = runner.invoke(main, ["roster", "oneroster-config", "--platform", "moodle-east", "--base-url",
                                      sis.base_url, "--token-url", sis.token_url, "--client-id", sis.client_id],
                               input=f"{sis.client_secret}\n")
        assert result.exit_code == 0, result.output
        shown = runner.invoke(main, ["roster", "oneroster-config", "--platform", "moodle-east", "--show"])
        assert json.loads(shown.output)["client_id"] == sis.client_id and sis.client_secret not in shown.output
        result = runner.invoke(main, ["roster", "sync", "--platform", "moodle-east"])
    assert result.exit_code == 0, result.output
    assert "OneRoster (platform" in result.output and "+1 added" in result.output
    assert db_session.scalars(select(SyncRun.kind)).all() == ["oneroster_full"]

"""Administrators switch applying on per LMS after a preview; the verification report shows the gaps first; the
ledger per student; who may see what (through the Flask client, both backends)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from lti_app.models import AccessEvent, AdminEvent, LmsActionLedger, LmsConnection, LmsQuiz, RoleGrant
from lti_app.services.lms_actions.reconcile import reconcile_course
from tests.support import factories as f
from tests.support.casework_world import Client, text_of
from tests.support.fake_canvas import FakeCanvas
from tests.support.fake_moodle import FakeMoodle
from tests.support.lms_world import canvas_world, moodle_world

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def canvas():
    with FakeCanvas() as fake:
        yield fake




@pytest.fixture
def people(db_session, canvas):
    w = canvas_world(db_session, canvas, enabled=False)
    admin = f.person(db_session, w["platform"], "Marlo Vance", kind="staff")
    cm = f.person(db_session, w["platform"], "Tamsin Larkspur", kind="staff")
    teacher = f.person(db_session, w["platform"], "Rowan Ellery", kind="staff")
    f.enroll(db_session, teacher, w["course"], "teacher")
    db_session.add_all([RoleGrant(person_id=admin.id, role="district_admin"),
                        RoleGrant(person_id=cm.id, role="case_manager")])
    w["ava"]["plan"].case_manager_id = cm.id
    db_session.commit()
    return {**w, "admin": admin, "cm": cm, "teacher": teacher}


@BOTH
def test_admin_previews_switches_on_and_reads_the_report(client, token_for, db_session, canvas, people):
    quiz = canvas.add_quiz("501", "Unit 1", 30)
    a = Client(client, token_for(people["admin"], None))

    page = a.get("/lms/admin")
    assert page.status_code == 200 and "willow-canvas" in text_of(page) and "off" in text_of(page)
    preview = a.get(f"/lms/admin/platforms/{people['platform'].id}/preview")
    text = text_of(preview)
    assert preview.status_code == 200 and "Ava Quinlan" in text and "Unit 1" in text and "nothing was written" in text
    assert canvas.count("POST", "/api/") == 0
    assert db_session.scalars(select(LmsActionLedger)).all() == []

    switched = a.post(f"/lms/admin/platforms/{people['platform'].id}/switch", {"on": "1"})
    assert switched.status_code == 303 and "notice=on" in switched.location
    assert db_session.scalar(select(AdminEvent).where(AdminEvent.action == "lms_actions_on")) is not None
    a.get("/lms/admin")
    assert a.post(f"/lms/admin/platforms/{people['platform'].id}/apply", {}).status_code == 303
    assert canvas.extension("501", quiz, "9001")["extra_time"] == 15

    report = a.get("/lms/report")
    assert report.status_code == 200
    assert "1.5x time applied on 1 of 1 quizzes in Biology" in text_of(report)
    logged = db_session.scalars(select(AccessEvent).where(AccessEvent.context == "LMS verification report")).all()
    assert {e.student_id for e in logged} == {people["ava"]["student"].id, people["ben"]["student"].id}


@BOTH
def test_the_report_puts_gaps_first_and_a_new_quiz_is_a_gap_until_applied(client, token_for, db_session, canvas,
                                                                           people):
    conn = db_session.scalar(select(LmsConnection))
    conn.enabled = True
    db_session.commit()
    canvas.add_quiz("501", "Unit 1", 30)
    reconcile_course(db_session, people["course"].id)
    canvas.add_quiz("501", "Unit 2", 30)
    canvas.add_quiz("501", "Unit 3", 30)
    canvas.courses["501"].students.discard("9002")  # Ben's writes will fail
    reconcile_course(db_session, people["course"].id)

    report = Client(client, token_for(people["cm"], None)).get("/lms/report")
    text = text_of(report)
    # the case manager sees only her caseload (Ava), and Ava has no gap; the admin sees Ben's gaps first
    assert "Ava Quinlan" in text and "Ben Hollis" not in text
    admin_text = text_of(Client(client, token_for(people["admin"], None)).get("/lms/report"))
    assert admin_text.index("Ben Hollis") < admin_text.index("Ava Quinlan")
    assert "2 quizzes in Biology lack 10 extra minutes, 1 extra attempt" in admin_text


def test_a_teacher_sees_the_course_counts_only(client, token_for, db_session, canvas, people):
    conn = db_session.scalar(select(LmsConnection))
    conn.enabled = True
    db_session.commit()
    canvas.add_quiz("501", "Unit 1", 30)
    reconcile_course(db_session, people["course"].id)

    resp = Client(client, token_for(people["teacher"], people["course"], roles=("teacher",))).get("/lms/report")

    assert resp.status_code == 200
    text = text_of(resp)
    assert "applied on 2 of 2 student quizzes (2 students with a plan)" in text
    assert "Ava" not in text and "Ben" not in text


@BOTH
def test_the_teachers_panel_carries_the_courses_line_only_while_the_lms_applies_them(client, token_for, db_session,
                                                                                    canvas, people):
    """Issue #12: "Teachers see their course's line on the panel"; no line (and no extra read) while it is off."""
    teacher = Client(client, token_for(people["teacher"], people["course"], roles=("teacher",)))
    off = teacher.get("/panels/course")
    assert off.status_code == 200 and 'id="lms-line"' not in off.get_data(as_text=True)

    conn = db_session.scalar(select(LmsConnection))
    conn.enabled = True
    db_session.commit()
    canvas.add_quiz("501", "Unit 1", 30)
    canvas.add_quiz("501", "Unit 2", 30)
    reconcile_course(db_session, people["course"].id)
    text = text_of(teacher.get("/panels/course"))
    assert "Accommodations applied on 4 of 4 student quizzes (2 students with a plan)." in text
    assert "not yet" not in text

    # A quiz Caseload has seen (a quiz event) but not applied yet: a gap on the line, still no names.
    db_session.add(LmsQuiz(platform_id=people["platform"].id, course_id=people["course"].id, kind="classic",
                           lms_quiz_id="new-unseen", title="Unit 3", time_limit_seconds=45 * 60))
    db_session.commit()
    text = text_of(teacher.get("/panels/course"))
    assert "2 not yet Accommodations applied on 4 of 6 student quizzes" in text


def test_the_students_ledger_is_for_case_managers_and_admins_and_is_logged(client, token_for, db_session, canvas,
                                                                           people):
    conn = db_session.scalar(select(LmsConnection))
    conn.enabled = True
    db_session.commit()
    canvas.add_quiz("501", "Unit 1", 30)
    reconcile_course(db_session, people["course"].id)
    sid = people["ava"]["student"].id

    cm_view = Client(client, token_for(people["cm"], None)).get(f"/lms/students/{sid}/ledger")
    assert cm_view.status_code == 200 and "extra time" in text_of(cm_view) and "applied" in text_of(cm_view)
    teacher = Client(client, token_for(people["teacher"], people["course"], roles=("teacher",)))
    assert teacher.get(f"/lms/students/{sid}/ledger").status_code == 403
    other = f.person(db_session, people["platform"], "Quill Vantage", kind="staff")
    db_session.commit()
    assert Client(client, token_for(other, None)).get(f"/lms/students/{sid}/ledger").status_code == 404
    events = db_session.scalars(select(AccessEvent).where(AccessEvent.context == "LMS ledger")).all()
    assert sorted(e.allowed for e in events) == [False, True, True]


def test_non_admins_cannot_switch_or_preview(client, token_for, db_session, people):
    cm = Client(client, token_for(people["cm"], None))
    assert cm.get("/lms/admin").status_code == 403
    assert cm.post(f"/lms/admin/platforms/{people['platform'].id}/switch", {"on": "1"}).status_code in (400, 403)
    assert cm.get(f"/lms/admin/platforms/{people['platform'].id}/preview").status_code == 403


def test_switching_on_is_refused_while_the_connection_test_fails(client, token_for, db_session, canvas, people):
    canvas.revoke_refresh_token()
    a = Client(client, token_for(people["admin"], None))
    a.get("/lms/admin")
    resp = a.post(f"/lms/admin/platforms/{people['platform'].id}/switch", {"on": "1"})
    assert resp.status_code == 303 and "problem=" in resp.location
    db_session.expire_all()
    conn = db_session.scalar(select(LmsConnection))
    assert not conn.enabled and conn.health == "reauthorize"


def test_moodle_switch_on_checks_the_services_functions(client, token_for, db_session):
    with FakeMoodle() as moodle:
        w = moodle_world(db_session, moodle, enabled=False)
        admin = f.person(db_session, w["platform"], "Marlo Vance", kind="staff")
        db_session.add(RoleGrant(person_id=admin.id, role="district_admin"))
        db_session.commit()
        moodle.functions.discard("mod_quiz_get_overrides")
        a = Client(client, token_for(admin, None))
        a.get("/lms/admin")
        refused = a.post(f"/lms/admin/platforms/{w['platform'].id}/switch", {"on": "1"})
        assert "mod_quiz_get_overrides" in refused.location.replace("%5F", "_")
        moodle.functions.add("mod_quiz_get_overrides")
        assert "notice=on" in a.post(f"/lms/admin/platforms/{w['platform'].id}/switch", {"on": "1"}).location


def _follow_to_canvas(url: str):
    import requests

    return requests.get(url, allow_redirects=False, timeout=5)


def _authorize_link(resp) -> str:
    """The Canvas connect form answers inside the LMS frame (where the page token's browser binding is) with a page
    whose link opens Canvas's authorization in a window of its own: Canvas's sign-in refuses to be framed, and a form
    posted to a new window would arrive without the binding."""
    import html as html_lib

    assert resp.status_code == 200, resp.status_code
    found = re.search(r'<a class="button" href="([^"]+)" target="_blank" rel="noopener noreferrer">Open Canvas',
                      resp.get_data(as_text=True))
    assert found, "no link that opens Canvas in a new window"
    return html_lib.unescape(found.group(1))


@BOTH
def test_a_canvas_admin_authorizes_the_developer_key_in_the_browser(client, token_for, db_session, canvas):
    from urllib.parse import urlsplit

    plat = f.platform(db_session, name="oak-canvas", lms="canvas")
    admin = f.person(db_session, plat, "Marlo Vance", kind="staff")
    db_session.add(RoleGrant(person_id=admin.id, role="district_admin"))
    db_session.commit()
    a = Client(client, token_for(admin, None))
    a.get("/lms/admin")

    start = a.post(f"/lms/admin/platforms/{plat.id}/canvas", {"api_base_url": canvas.base_url,
                   "client_id": canvas.client_id, "client_secret": canvas.client_secret})
    # The form posts inside the LMS frame (where the page token's browser binding is); the answer is a page whose
    # link opens Canvas's authorization in a window of its own (Canvas's sign-in refuses to be framed).
    link = _authorize_link(start)
    assert link.startswith(f"{canvas.base_url}/login/oauth2/auth?")
    back = _follow_to_canvas(link)  # the admin clicks Authorize in Canvas
    assert back.status_code == 302
    assert canvas.requested_scopes == {
        "url:GET|/api/v1/courses/:course_id/quizzes", "url:GET|/api/v1/courses/:course_id/quizzes/:quiz_id/submissions",
        "url:POST|/api/v1/courses/:course_id/quizzes/:quiz_id/extensions", "url:GET|/api/quiz/v1/courses/:course_id/quizzes",
        "url:POST|/api/quiz/v1/courses/:course_id/quizzes/:assignment_id/accommodations",
        "url:GET|/api/v1/courses/:course_id/assignments/:assignment_id/overrides",
        "url:POST|/api/v1/courses/:course_id/assignments/:assignment_id/overrides",
        "url:PUT|/api/v1/courses/:course_id/assignments/:assignment_id/overrides/:id"}
    callback = urlsplit(back.headers["Location"])
    done = client.get(callback.path + "?" + callback.query)
    assert done.status_code == 200 and "connected to oak-canvas" in text_of(done)

    db_session.expire_all()
    conn = db_session.scalar(select(LmsConnection).where(LmsConnection.platform_id == plat.id))
    assert conn.health == "ok" and conn.secret_encrypted and canvas.refresh_token.encode() not in conn.secret_encrypted
    assert client.get(callback.path + "?" + callback.query).status_code == 400  # a code works once
    forged = client.get("/lms/oauth/canvas/callback", query_string={"code": "x", "state": "forged"})
    assert forged.status_code == 400 and "did not start in Caseload" in text_of(forged)
    page = a.get("/lms/admin")
    assert "working" in text_of(page) and "url:POST|/api/v1/courses/:course_id/quizzes/:quiz_id/extensions" in text_of(page)


def test_a_developer_key_without_the_scopes_is_reported_in_words(client, token_for, db_session, canvas):
    from urllib.parse import urlsplit

    plat = f.platform(db_session, name="elm-canvas", lms="canvas")
    admin = f.person(db_session, plat, "Marlo Vance", kind="staff")
    db_session.add(RoleGrant(person_id=admin.id, role="district_admin"))
    db_session.commit()
    canvas.allowed_scopes = {"url:GET|/api/v1/courses/:course_id/quizzes"}
    a = Client(client, token_for(admin, None))
    a.get("/lms/admin")
    start = a.post(f"/lms/admin/platforms/{plat.id}/canvas", {"api_base_url": canvas.base_url,
                   "client_id": canvas.client_id, "client_secret": canvas.client_secret})
    back = urlsplit(_follow_to_canvas(_authorize_link(start)).headers["Location"])
    done = client.get(back.path + "?" + back.query)
    assert done.status_code == 400 and "does not allow every scope" in text_of(done)


def test_the_ledger_and_the_rule_are_exported_with_the_record(app, client, token_for, db_session, canvas, people):
    import json

    from tests.support import admin_world

    conn = db_session.scalar(select(LmsConnection))
    conn.enabled = True
    db_session.commit()
    canvas.add_quiz("501", "Unit 1", 30)
    reconcile_course(db_session, people["course"].id)
    token = token_for(people["admin"], None)
    resp = client.post(f"/admin/students/{people['ava']['student'].id}/export",
                       data={"t": token, "csrf_token": admin_world.csrf_for(app, token), "format": "json",
                             "leaves_school": "no"})
    assert resp.status_code == 200
    record = json.loads(resp.get_data(as_text=True))
    assert record["plans"][0]["versions"][0]["applied_in_lms"] == "1.5x time"
    assert [(r["quiz"], r["field"], r["before"], r["after"], r["outcome"]) for r in record["lms_ledger"]] == [
        ("Unit 1", "extra_time", None, 15, "applied")]

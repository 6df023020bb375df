"""Issue #14 items 3-4, route by route: an LMS administrator of one registered platform never reads a student of
another. Two platforms (moodle-district, where Ava Quinlan has her LMS account, and canvas-district); Quill Harrow
is the LMS administrator of canvas-district. Every page that shows one student answers 404 (or 403) and writes a
refused read to the access log; every page that lists students leaves Ava out and logs nothing about her. Also the
deadlines pages' bases (My deadlines needs an active case manager grant) and the import (district administrators
only). On PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app.models import AccessEvent, Alert, AppliedAccommodation, LmsQuiz, RoleGrant, Student
from tests.support import admin_world
from tests.support import factories as f

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    w = admin_world.build(db_session)
    w["b_admin"] = f.person(db_session, w["other"], "Quill Harrow", kind="staff", email="q.harrow@example.org")
    db_session.commit()
    return w


@pytest.fixture
def b_token(world: dict[str, Any], token_for: Any) -> str:
    """The canvas-district LMS administrator's launch (institution Administrator)."""
    return token_for(world["b_admin"], roles=("admin",))


def _text(resp: Any) -> str:
    return " ".join(unescape(resp.get_data(as_text=True)).split())


def _events(db_session: Any, actor: Any) -> list[AccessEvent]:
    db_session.expire_all()
    return list(db_session.scalars(select(AccessEvent).where(AccessEvent.actor_id == actor.id)
                                   .order_by(AccessEvent.id)))


def _assert_refused_and_logged(db_session: Any, world: dict[str, Any], resp: Any, path: str) -> None:
    assert resp.status_code in (403, 404), (path, resp.status_code)
    assert "Ava" not in _text(resp) and "Quinlan" not in _text(resp), path
    events = _events(db_session, world["b_admin"])
    assert events, f"{path}: nothing in the access log"
    assert all(not e.allowed for e in events), [(e.action, e.basis) for e in events]
    assert any(e.student_id == world["ava"].id and "another platform" in e.basis for e in events), \
        [(e.student_id, e.basis) for e in events]


# ------------------------------------------------------------------------------- pages about one student
STUDENT_PAGES = [
    "/panels/student/{ava}",
    "/casework/students/{ava}",
    "/casework/students/{ava}/services",
    "/casework/students/{ava}/timeline",
    "/casework/students/{ava}/contacts",
    "/casework/students/{ava}/viewers",
    "/casework/students/{ava}/deadlines",
    "/casework/students/{ava}/goals",
    "/casework/students/{ava}/plans",
    "/casework/students/{ava}/plans/{plan}/history",
    "/casework/students/{ava}/plans/{plan}/versions/{v2}",
    "/admin/students/{ava}/export",
    "/lms/students/{ava}/ledger",
]


@BOTH
@pytest.mark.parametrize("page", STUDENT_PAGES)
def test_an_lms_admin_of_another_platform_is_refused_every_page_of_the_student_and_the_refusal_is_logged(
        client, db_session, world, b_token, page):
    path = page.format(ava=world["ava"].id, plan=world["plan"].id, v2=world["v2"].id)
    resp = client.get(path, query_string={"t": b_token})
    _assert_refused_and_logged(db_session, world, resp, path)


@BOTH
def test_the_same_platforms_lms_admin_opens_those_pages(client, db_session, world, token_for):
    """The control: the refusals above are about the platform, not about LMS administrators."""
    token = token_for(world["lms_admin"], roles=("admin",))
    for page in ("/panels/student/{ava}", "/casework/students/{ava}", "/casework/students/{ava}/deadlines",
                 "/admin/students/{ava}/export"):
        path = page.format(ava=world["ava"].id)
        assert client.get(path, query_string={"t": token}).status_code == 200, path
    assert all(e.allowed and e.basis == "administrator" for e in _events(db_session, world["lms_admin"]))


@BOTH
def test_an_lms_admin_of_another_platform_cannot_export_the_student(app, client, db_session, world, b_token):
    resp = client.post(f"/admin/students/{world['ava'].id}/export",
                       data={"t": b_token, "csrf_token": admin_world.csrf_for(app, b_token), "format": "json"})
    _assert_refused_and_logged(db_session, world, resp, "export (POST)")
    assert any(e.action == "export" for e in _events(db_session, world["b_admin"]))


@BOTH
def test_a_student_context_card_of_another_platforms_student_is_refused_and_logged(client, db_session, world,
                                                                                   token_for):
    token = token_for(world["b_admin"], roles=("admin",), student_person_id=world["ava_person"].id)
    resp = client.get("/panels/student-card", query_string={"t": token}, follow_redirects=True)
    _assert_refused_and_logged(db_session, world, resp, "/panels/student-card")


# --------------------------------------------------------------------------------------- pages that list
@BOTH
def test_deadlines_by_school_lists_only_the_administrators_platform(client, db_session, world, b_token, token_for):
    other = client.get("/casework/deadlines/school", query_string={"t": b_token, "school": "Juniper Ridge"})
    assert other.status_code == 200 and "Quinlan" not in _text(other) and "0 students" in _text(other)
    # The school list offers the schools of the administrator's own platform only.
    chooser = _text(client.get("/casework/deadlines/school", query_string={"t": b_token}))
    assert "Juniper Ridge" not in chooser
    assert _events(db_session, world["b_admin"]) == []  # another platform's students are not read at all
    own = client.get("/casework/deadlines/school", query_string={"t": token_for(world["lms_admin"], roles=("admin",)),
                                                                 "school": "Juniper Ridge"})
    assert "Ava Quinlan" in _text(own) and "1 student ·" in _text(own)
    (event,) = _events(db_session, world["lms_admin"])
    assert (event.student_id, event.allowed, event.basis) == (world["ava"].id, True, "administrator")


@BOTH
def test_a_school_admin_grant_reaches_only_the_platform_launched_from(client, db_session, world, token_for):
    db_session.add(RoleGrant(person_id=world["b_admin"].id, role="school_admin", school="Juniper Ridge"))
    db_session.commit()
    token = token_for(world["b_admin"], roles=("staff",))
    resp = client.get("/casework/deadlines/school", query_string={"t": token, "school": "Juniper Ridge"})
    assert resp.status_code == 200 and "Quinlan" not in _text(resp)
    card = client.get(f"/panels/student/{world['ava'].id}", query_string={"t": token})
    _assert_refused_and_logged(db_session, world, card, "student card (school admin)")


@BOTH
def test_my_deadlines_without_an_active_case_manager_grant_lists_nothing_and_logs_refusals(client, db_session, world,
                                                                                           token_for):
    cm = world["cm"]
    db_session.add(RoleGrant(person_id=cm.id, role="counselor"))  # still support staff: the page opens
    db_session.commit()
    page = _text(client.get("/casework/deadlines", query_string={"t": token_for(cm)}))
    assert "Ava Quinlan" in page
    (allowed,) = _events(db_session, cm)
    assert (allowed.allowed, allowed.basis, allowed.context) == (True, "caseload (case manager)",
                                                                 "deadlines (caseload)")
    grant = db_session.scalars(select(RoleGrant).where(RoleGrant.person_id == cm.id,
                                                       RoleGrant.role == "case_manager")).one()
    grant.revoked_at = dt.datetime.now(dt.UTC)
    db_session.commit()
    page = _text(client.get("/casework/deadlines", query_string={"t": token_for(cm)}))
    assert "Ava Quinlan" not in page and "0 students" in page
    refused = _events(db_session, cm)[1:]
    assert [(e.student_id, e.allowed, e.basis) for e in refused] == [
        (world["ava"].id, False, "named case manager on the plan, but without an active case manager grant")]


@BOTH
def test_services_owed_and_my_deadlines_of_another_platforms_admin_never_include_the_student(client, db_session,
                                                                                             world, b_token):
    db_session.add(RoleGrant(person_id=world["b_admin"].id, role="case_manager"))
    db_session.commit()
    for path in ("/casework/services-owed", "/casework/services-owed.csv", "/casework/deadlines", "/casework/"):
        resp = client.get(path, query_string={"t": b_token})
        assert resp.status_code == 200 and "Quinlan" not in _text(resp), path
    assert all(e.student_id != world["ava"].id for e in _events(db_session, world["b_admin"]))


@BOTH
def test_the_lms_verification_report_and_course_ledger_stay_on_the_administrators_platform(client, db_session, world,
                                                                                           b_token, token_for):
    from lti_app.services.lms_actions import connections

    moodle = connections.save_moodle(db_session, world["platform"], "http://127.0.0.1:9/webservice", "t0k3n-fictional")
    canvas = connections.save_canvas(db_session, world["other"], "http://127.0.0.1:9", "10000000000001",
                                     "fictional-secret", "fictional-refresh")
    for conn in (moodle, canvas):
        connections.set_enabled(db_session, conn, True, None)
    # Ava's plan asks for 1.5x time and Algebra I has a timed quiz: her line is in her own platform's report.
    db_session.add_all([AppliedAccommodation(plan_version_id=world["v2"].id, multiplier=Decimal("1.5"),
                                             window_guard=False),
                        LmsQuiz(platform_id=world["platform"].id, course_id=world["algebra"].id, kind="moodle",
                                lms_quiz_id="77", title="Unit 1 quiz", time_limit_seconds=1800, allowed_attempts=1)])
    db_session.commit()
    report = client.get("/lms/report", query_string={"t": b_token})
    assert report.status_code == 200 and "Quinlan" not in _text(report)
    ledger = client.get(f"/lms/courses/{world['algebra'].id}/ledger", query_string={"t": b_token})
    assert ledger.status_code == 404
    preview = client.get(f"/lms/admin/platforms/{world['platform'].id}/preview", query_string={"t": b_token})
    assert preview.status_code == 404  # the preview of another platform lists its students: never opened
    assert _events(db_session, world["b_admin"]) == []
    own = client.get("/lms/report", query_string={"t": token_for(world["lms_admin"], roles=("admin",))})
    assert "Quinlan" in _text(own)


@BOTH
def test_an_alert_naming_another_platforms_student_is_shown_without_the_name_and_the_refusal_logged(client,
                                                                                                    db_session,
                                                                                                    world, b_token):
    db_session.add(Alert(recipient_id=world["b_admin"].id, kind="schedule_change", student_id=world["ava"].id,
                         dedupe_key="schedule:test", title="Ava Quinlan joined Algebra I — Period 1", lines=[]))
    db_session.commit()
    resp = client.get("/alerts/", query_string={"t": b_token})
    assert resp.status_code == 200 and "Quinlan" not in _text(resp)
    (event,) = _events(db_session, world["b_admin"])
    assert event.student_id == world["ava"].id and not event.allowed and "another platform" in event.basis


@BOTH
def test_the_admin_overview_counts_only_the_administrators_platform(client, db_session, world, b_token, token_for):
    def tiles(token: str) -> str:
        return re.sub(r"<[^>]+>", "", _text(client.get("/admin/", query_string={"t": token})))

    assert "2 student records · 1 active plans" in tiles(token_for(world["lms_admin"], roles=("admin",)))
    assert "0 student records · 0 active plans" in tiles(b_token)
    db_session.add(Student(sis_id="S-77", given_name="Cleo", family_name="Marsh"))  # imported, no LMS account
    db_session.commit()
    assert "3 student records · 1 active plans" in tiles(token_for(world["district_admin"], roles=("teacher",)))
    assert "2 student records" in tiles(token_for(world["lms_admin"], roles=("admin",)))


# ------------------------------------------------------------------------------------------------- import
def _upload(app: Any, client: Any, token: str, mode: str = "apply") -> Any:
    from lti_app.services.casework.importer import COLUMN_NAMES

    values = {"student_sis_id": "S-1", "given_name": "Ava", "family_name": "Quinlan", "plan_type": "504",
              "effective_on": "2026-09-01", "date_of_birth": "2010-04-17", "accommodation_category": "timing",
              "accommodation_text": "Extra time"}
    content = ("\n".join([",".join(COLUMN_NAMES), ",".join(values.get(c, "") for c in COLUMN_NAMES)]) + "\n").encode()
    return client.post("/admin/imports", data={"t": token, "csrf_token": admin_world.csrf_for(app, token), "mode": mode,
                                               "file": (io.BytesIO(content), "sis.csv")},
                       content_type="multipart/form-data")


@BOTH
def test_only_district_administrators_import_records(app, client, db_session, world, b_token, token_for):
    from lti_app.models import Plan

    plans = db_session.scalar(select(func.count()).select_from(Plan))
    for token in (b_token, token_for(world["lms_admin"], roles=("admin",)), token_for(world["school_admin"])):
        for mode in ("dry_run", "apply"):
            resp = _upload(app, client, token, mode)
            assert resp.status_code == 403 and "district administrators" in _text(resp), mode
            assert "Quinlan" not in _text(resp)
        assert client.get("/admin/imports", query_string={"t": token}).status_code == 403
        assert client.get("/admin/imports/template.csv", query_string={"t": token}).status_code == 403
        assert 'href="/admin/imports' not in client.get("/admin/", query_string={"t": token}).get_data(as_text=True)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(Plan)) == plans
    resp = _upload(app, client, token_for(world["district_admin"], roles=("teacher",)))
    assert resp.status_code == 200 and "Imported." in resp.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(Plan)) == plans + 1
    assert db_session.scalar(select(func.count()).select_from(Student)) == 2


# ------------------------------------------------------------------------------------ changes to the student
STUDENT_POSTS = [
    ("/panels/student/{ava}/notes", {"note_type": "observation", "visibility": "team", "body": "Seen in class.",
                                     "recorded_on": "2026-11-02"}),
    ("/panels/student/{ava}/question", {"body": "Does the reader apply to homework?"}),
    ("/casework/students/{ava}/contacts", {"contacted_on": "2026-11-02", "method": "phone", "summary": "Called."}),
    ("/casework/students/{ava}/plans/new", {"plan_type": "504", "effective_on": "2026-11-02"}),
    ("/casework/students/{ava}/plans/{plan}/case-manager", {"case_manager_id": "{b_admin}"}),
]


@BOTH
@pytest.mark.parametrize(("page", "form"), STUDENT_POSTS)
def test_an_lms_admin_of_another_platform_cannot_change_the_students_record(app, client, db_session, world, b_token,
                                                                            page, form):
    from lti_app.models import CaseNote, Plan, Question

    ids = {"ava": world["ava"].id, "plan": world["plan"].id, "b_admin": world["b_admin"].id}
    counts = [db_session.scalar(select(func.count()).select_from(m)) for m in (CaseNote, Question, Plan)]
    path = page.format(**ids)
    resp = client.post(path, data={"t": b_token, "csrf_token": admin_world.csrf_for(app, b_token),
                                   **{k: v.format(**ids) for k, v in form.items()}})
    _assert_refused_and_logged(db_session, world, resp, path)
    assert [db_session.scalar(select(func.count()).select_from(m)) for m in (CaseNote, Question, Plan)] == counts
    assert db_session.get(Plan, world["plan"].id).case_manager_id == world["cm"].id

"""Record export (FERPA 34 CFR 99.10 inspection): HTML and JSON, the access log, the disclosure ledger, note
tiers and restricted notes, refusals, and ``caseload export``."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from lti_app.cli import main
from lti_app.models import AccessEvent, Disclosure
from tests.support import admin_world


@pytest.fixture
def world(db_session):
    return admin_world.build(db_session)


def _plain(resp) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def _export(client, app, token, student_id, **form):
    data = {"t": token, "csrf_token": admin_world.csrf_for(app, token), **form}
    return client.post(f"/admin/students/{student_id}/export", data=data)


def _events(db_session, action="export"):
    db_session.expire_all()
    return db_session.scalars(select(AccessEvent).where(AccessEvent.action == action).order_by(AccessEvent.id)).all()


def test_admin_finds_the_student_and_opens_the_export_form_which_is_logged(client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    found = _plain(client.get("/admin/students", query_string={"t": token, "q": "quin"}))
    assert "Ava Quinlan · S-1" in found and "Ben Hollis" not in found
    resp = client.get(f"/admin/students/{world['ava'].id}/export", query_string={"t": token})
    assert resp.status_code == 200 and "Include restricted notes" in resp.get_data(as_text=True)
    (event,) = _events(db_session, "view")
    assert (event.actor_id, event.context, event.basis) == (world["district_admin"].id, "export form", "administrator")


def test_html_export_holds_the_whole_record_and_is_logged_without_a_disclosure(app, client, db_session, world,
                                                                              token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    resp = _export(client, app, token, world["ava"].id, format="html", leaves_school="no")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    text = _plain(resp)
    for expected in ["Support record of Ava Quinlan", "IEP plan · active", "Version 2", "Version 1",
                     "Read test questions aloud on request", "Rowan Ellery · IEP version 2 · Algebra I",
                     "Worked well with the slides copy.", "Guardian asked about the reevaluation timeline.",
                     "Does the reader apply to homework quizzes?", "Who viewed this record",
                     "Not included: 1 restricted note"]:
        assert expected in text, expected
    assert "Private family circumstance" not in text
    (event,) = _events(db_session)
    assert (event.allowed, event.context, event.student_id) == (True, "export (html)", world["ava"].id)
    assert db_session.scalars(select(Disclosure)).all() == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_json_export_that_leaves_the_school_writes_the_disclosure_ledger(app, client, db_session, world, token_for):
    token = token_for(world["lms_admin"], roles=("admin",))
    resp = _export(client, app, token, world["ava"].id, format="json", leaves_school="yes",
                   recipient="Harbor View Middle School, records office", purpose="Student is transferring",
                   legal_basis="transfer")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=caseload-record-S-1-")
    record = json.loads(resp.get_data(as_text=True))
    assert record["format"] == "caseload.student-record/1"
    assert record["student"]["sis_id"] == "S-1" and record["lms_accounts"][0]["name"] == "Ava Quinlan"
    assert [v["version_no"] for v in record["plans"][0]["versions"]] == [1, 2]
    assert [a["text"] for a in record["plans"][0]["versions"][1]["accommodations"]] == [
        "Tests: 1.5x time", "Read test questions aloud on request"]
    assert record["plans"][0]["versions"][1]["accommodations"][0]["time_multiplier"] == "1.50"
    assert sorted(n["visibility"] for n in record["notes"]) == ["case_team", "team"]
    assert record["notes"][0]["revisions"][0]["text"] == record["notes"][0]["text"]
    assert record["questions"][0]["question"] == "Does the reader apply to homework quizzes?"
    assert any(e["action"] == "export" for e in record["access_log"])
    disclosure = db_session.scalars(select(Disclosure)).one()
    assert record["disclosure"]["id"] == disclosure.id
    assert (disclosure.student_id, disclosure.disclosed_by_id, disclosure.recipient) == (
        world["ava"].id, world["lms_admin"].id, "Harbor View Middle School, records office")
    assert "99.31(a)(2)" in disclosure.legal_basis
    assert disclosure.records.startswith("support record; 1 plan(s), 2 version(s), 3 accommodation(s)")
    # The ledger is listed for admins, and the next export of the record shows it (99.32(c)).
    district = token_for(world["district_admin"], roles=("teacher",))  # the ledger page is district-wide
    ledger = _plain(client.get("/admin/disclosures", query_string={"t": district}))
    assert "Harbor View Middle School, records office" in ledger and "Student is transferring" in ledger
    again = json.loads(_export(client, app, token, world["ava"].id, format="json", leaves_school="no").get_data())
    assert [d["recipient"] for d in again["disclosures"]] == ["Harbor View Middle School, records office"]


def test_a_disclosure_without_recipient_purpose_or_basis_is_refused_and_nothing_is_exported(app, client, db_session,
                                                                                            world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    for form, words in [({"recipient": "", "purpose": "x", "legal_basis": "consent"}, "Name who receives the copy"),
                        ({"recipient": "A parent", "purpose": " ", "legal_basis": "consent"}, "Say why"),
                        ({"recipient": "A parent", "purpose": "x", "legal_basis": "because"}, "Choose the legal basis")]:
        resp = _export(client, app, token, world["ava"].id, format="json", leaves_school="yes", **form)
        assert resp.status_code == 422 and words in _plain(resp)
    assert _events(db_session) == [] and db_session.scalars(select(Disclosure)).all() == []


def test_restricted_notes_only_with_the_grant_and_logged_separately(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    record = json.loads(_export(client, app, token, world["ava"].id, format="json", include_restricted="on").get_data())
    assert sorted(n["visibility"] for n in record["notes"]) == ["case_team", "restricted", "team"]
    assert record["notes_not_included"] == {}
    (event,) = _events(db_session, "view_restricted")
    assert event.allowed and event.context == "export: restricted notes"
    # A school administrator (no restricted grant) is not offered the box, and a forged one is refused and logged.
    school = token_for(world["school_admin"], roles=("teacher",))
    form = client.get(f"/admin/students/{world['ava'].id}/export", query_string={"t": school}).get_data(as_text=True)
    assert "include_restricted" not in form
    resp = _export(client, app, school, world["ava"].id, format="json", include_restricted="on")
    assert resp.status_code == 422 and "Restricted notes can only be exported" in _plain(resp)
    refused = _events(db_session, "view_restricted")[-1]
    assert (refused.actor_id, refused.allowed) == (world["school_admin"].id, False)


def test_case_manager_may_export_their_students_record(app, client, world, token_for):
    token = token_for(world["cm"], roles=("teacher",))
    assert client.get(f"/admin/students/{world['ava'].id}/export", query_string={"t": token}).status_code == 200
    resp = _export(client, app, token, world["ava"].id, format="html")
    assert resp.status_code == 200 and "caseload (case manager)" in _plain(resp)


def test_teachers_forged_ids_and_unrelated_staff_are_refused_and_logged(app, client, db_session, world, token_for):
    teacher = token_for(world["teacher"])
    resp = client.get(f"/admin/students/{world['ava'].id}/export", query_string={"t": teacher})
    assert resp.status_code == 403 and "case manager or an administrator" in _plain(resp)
    resp = _export(client, app, teacher, world["ava"].id, format="json")
    assert resp.status_code == 404 and "no student record here that you may see" in _plain(resp)
    unrelated = token_for(world["teacher2"])
    assert client.get(f"/admin/students/{world['ava'].id}/export", query_string={"t": unrelated}).status_code == 404
    admin = token_for(world["lms_admin"], roles=("admin",))
    assert _export(client, app, admin, 987654, format="json").status_code == 404
    # Issue #14: opening the form without the right to export is logged as a refused export (it was logged as an
    # allowed view before); the forged id is logged as refused too.
    refused = [(e.actor_id, e.allowed, e.context) for e in _events(db_session)]
    assert refused == [(world["teacher"].id, False, "export form"), (world["teacher"].id, False, "export (json)"),
                       (world["teacher2"].id, False, "export form"),
                       (world["lms_admin"].id, False, "export (json) (student id 987654)")]
    assert not any(e.allowed for e in _events(db_session, "view") if e.actor_id in (world["teacher"].id,
                                                                                     world["teacher2"].id))
    assert client.get("/admin/students", query_string={"t": teacher, "q": "ava"}).status_code == 403


def test_cli_export_writes_json_and_records_the_disclosure(runner, db_session, world, tmp_path):
    out = tmp_path / "ava.json"
    result = runner.invoke(main, ["export", "--student", "S-1", "--as", "o.banks@example.org", "--out", str(out),
                                  "--leaves-school", "--recipient", "Avery's guardian", "--purpose",
                                  "Inspection request of 2026-11-20", "--legal-basis", "parent_inspection"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["exported_by"]["name"] == "Oriel Banks" and record["disclosure"]["recipient"] == "Avery's guardian"
    assert db_session.scalars(select(Disclosure.legal_basis)).one().endswith("(FERPA 34 CFR 99.10)")
    denied = runner.invoke(main, ["export", "--student", "S-1", "--as", "s.whitlock@example.org"])
    assert denied.exit_code != 0 and "may not export this record" in denied.output
    html = runner.invoke(main, ["export", "--student", "S-1", "--as", "o.banks@example.org", "--format", "html"])
    assert html.exit_code == 0 and "Support record of Ava Quinlan" in html.output
    missing = runner.invoke(main, ["export", "--student", "S-404", "--as", "o.banks@example.org"])
    assert missing.exit_code != 0 and "No student record has SIS id 'S-404'" in missing.output

"""Issue #11 over HTTP, on PostgreSQL and SQLite: the running ledger of service minutes (closures, make-ups, minutes
owed that never drop out of a window), the caseload-wide services-owed page and CSV, evidence corrected by revisions
and removed only softly, the whole-record export, and the import refusing what the database cannot hold."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import event, func, select

from lti_app import clock
from lti_app.cli import main
from lti_app.domain.service_minutes import last_completed
from lti_app.models import (
    AccessEvent,
    Accommodation,
    Contact,
    DeadlineCompletion,
    EvidenceRevision,
    Meeting,
    Plan,
    PlanVersion,
    ServiceRequirement,
    ServiceSession,
    Student,
)
from tests.support import admin_world, casework_world
from tests.support.casework_world import Client, text_of

TODAY = clock.today()
LAST_WEEK = last_completed(TODAY, "week")
BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


def _service(s, student, minutes=30, weeks_ago=10, provider=None, ends_on=None):
    req = ServiceRequirement(student_id=student.id, service_type="speech_language", minutes=minutes, period="week",
                             provider_id=provider.id if provider else None,
                             provider_name=None if provider else "Outside clinic", setting="pull-out",
                             starts_on=LAST_WEEK[0] - dt.timedelta(weeks=weeks_ago - 1), ends_on=ends_on)
    s.add(req)
    s.flush()
    return req


def _log(cm, student, req, day, minutes=30, attendance="delivered", kind="session"):
    resp = cm.post(f"/casework/students/{student.id}/services/{req.id}/sessions",
                   {"held_on": day.isoformat(), "minutes": minutes, "attendance": attendance, "kind": kind})
    assert resp.status_code == 303, text_of(resp)


@BOTH
def test_300_151_b_1_minutes_owed_ten_weeks_ago_stay_owed_until_a_make_up_pays_them(client, token_for, db_session):
    w = casework_world.build(db_session)
    req = _service(db_session, w["ava"], 30, weeks_ago=10, provider=w["provider"])
    db_session.commit()
    cm = Client(client, token_for(w["cm"]))
    first = req.starts_on
    _log(cm, w["ava"], req, first, attendance="provider_absent")
    for week in range(1, 10):
        _log(cm, w["ava"], req, first + dt.timedelta(weeks=week))
    _log(cm, w["ava"], req, first + dt.timedelta(weeks=9, days=1), 30)  # extra regular minutes pay nothing back
    page = text_of(cm.get(f"/casework/students/{w['ava'].id}/services"))
    # required, delivered, missed by the student, missed by the provider, made up, still owed (10 completed weeks)
    assert "300 min 300 min 0 min 30 min 0 min 30 min" in page
    _log(cm, w["ava"], req, TODAY, 20, kind="make_up")
    page = text_of(cm.get(f"/casework/students/{w['ava'].id}/services"))
    assert "300 min 300 min 0 min 30 min 20 min 10 min" in page and "make-up" in page
    home = text_of(cm.get("/casework/"))
    assert "10 min owed" in home[home.index("Ava Quinlan"):][:300]
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).where(ServiceSession.kind == "make_up")) == 1


@BOTH
def test_300_320_a_7_a_closure_added_with_the_cli_requires_no_minutes_that_week(client, runner, token_for, db_session):
    w = casework_world.build(db_session)
    req = _service(db_session, w["ava"], 60, weeks_ago=3, provider=w["provider"])
    db_session.commit()
    cm = Client(client, token_for(w["cm"]))
    closed_monday = req.starts_on + dt.timedelta(weeks=1)
    for week in (0, 2):
        _log(cm, w["ava"], req, req.starts_on + dt.timedelta(weeks=week), 60)
    assert "180 min 120 min 0 min 0 min 0 min 60 min" in text_of(cm.get(f"/casework/students/{w['ava'].id}/services"))
    result = runner.invoke(main, ["calendar", "add-closure", "--name", "Fall break", "--starts",
                                  closed_monday.isoformat(), "--ends", (closed_monday + dt.timedelta(days=4)).isoformat()])
    assert result.exit_code == 0, result.output
    page = text_of(cm.get(f"/casework/students/{w['ava'].id}/services"))
    assert "120 min 120 min 0 min 0 min 0 min 0 min" in page
    assert "5 closed school days required no minutes" in page and "5 days closed" in page


def _owing_caseload(db_session):
    w = casework_world.build(db_session)
    cy = Student(sis_id="S-3", given_name="Cy", family_name="Vantage", school="Juniper Ridge High School")
    db_session.add(cy)
    db_session.flush()
    db_session.add(Plan(student_id=cy.id, plan_type="504", status="active", case_manager_id=w["cm"].id))
    ava_req = _service(db_session, w["ava"], 30, weeks_ago=2)       # nothing logged: 60 owed
    cy_req = _service(db_session, cy, 30, weeks_ago=2)
    ben_req = _service(db_session, w["ben"], 30, weeks_ago=2)       # another caseload
    for week in range(2):
        db_session.add(ServiceSession(requirement_id=cy_req.id, student_id=cy.id, minutes=30, attendance="delivered",
                                      held_on=cy_req.starts_on + dt.timedelta(weeks=week)))
    db_session.commit()
    return w, cy, ava_req, cy_req, ben_req


@BOTH
def test_services_owed_page_and_csv_show_the_caseload_checked_and_logged_per_student(client, token_for, db_session):
    w, cy, ava_req, cy_req, ben_req = _owing_caseload(db_session)
    cm = Client(client, token_for(w["cm"]))
    home = cm.get("/casework/").get_data(as_text=True)
    assert "/casework/services-owed" in home
    page = text_of(cm.get("/casework/services-owed"))
    assert "60 min owed · 1 of 2 students · 1 of 2 services" in page
    assert "Ava Quinlan" in page and "Cy Vantage" not in page and "Ben Hollis" not in page
    assert "60 min 0 min 0 min 0 min 0 min 60 min" in page
    every = text_of(cm.get("/casework/services-owed", all="1"))
    assert "Cy Vantage" in every and "Ben Hollis" not in every
    resp = cm.get("/casework/services-owed.csv", all="1")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["student"], r["required"], r["delivered"], r["still_owed"]) for r in rows] == [
        ("Ava Quinlan", "60", "0", "60"), ("Cy Vantage", "60", "60", "0")]
    db_session.expire_all()
    logged = db_session.execute(select(AccessEvent.student_id, AccessEvent.allowed, AccessEvent.context)
                                .where(AccessEvent.action == "view_casework", AccessEvent.actor_id == w["cm"].id)
                                .order_by(AccessEvent.id)).all()
    assert {(sid, ok) for sid, ok, ctx in logged if ctx == "services owed (CSV)"} == {(w["ava"].id, True), (cy.id, True)}
    assert w["ben"].id not in {sid for sid, *_ in logged}
    teacher = Client(client, token_for(w["teacher"]))
    assert teacher.get("/casework/services-owed").status_code == 403
    assert teacher.get("/casework/services-owed.csv").status_code == 403


def test_services_owed_page_queries_do_not_grow_with_the_caseload(app, client, token_for, db_session):
    w = casework_world.build(db_session)

    def add_students(n: int, offset: int) -> None:
        for i in range(n):
            st = Student(given_name=f"Student{offset + i}", family_name="Bench")
            db_session.add(st)
            db_session.flush()
            db_session.add(Plan(student_id=st.id, plan_type="IEP", status="active", case_manager_id=w["cm"].id))
            req = _service(db_session, st, 30, weeks_ago=8)
            db_session.add(ServiceSession(requirement_id=req.id, student_id=st.id, held_on=LAST_WEEK[0], minutes=30,
                                          attendance="delivered"))
        db_session.commit()

    engine = app.extensions["caseload.engine"]
    counter = {"n": 0}

    def count(*_a):
        counter["n"] += 1

    cm = Client(client, token_for(w["cm"]))
    add_students(3, 0)
    assert cm.get("/casework/services-owed").status_code == 200
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert cm.get("/casework/services-owed").status_code == 200
        few = counter["n"]
        add_students(12, 3)
        counter["n"] = 0
        assert cm.get("/casework/services-owed").status_code == 200
        many = counter["n"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert many == few


@BOTH
def test_ferpa_99_10_sessions_are_corrected_by_revisions_and_removed_softly(client, token_for, db_session):
    w = casework_world.build(db_session)
    mine = _service(db_session, w["ava"], 30, weeks_ago=2, provider=w["provider"])
    theirs = _service(db_session, w["ava"], 30, weeks_ago=2)
    db_session.commit()
    provider = Client(client, token_for(w["provider"], roles=()))
    _log(provider, w["ava"], mine, mine.starts_on, 45)
    _log(provider, w["ava"], mine, mine.starts_on + dt.timedelta(days=1), 30)
    first, second = db_session.scalars(select(ServiceSession).order_by(ServiceSession.id)).all()
    base = f"/casework/students/{w['ava'].id}/sessions"
    fix = {"held_on": mine.starts_on.isoformat(), "minutes": "30", "attendance": "delivered", "kind": "session"}
    no_reason = provider.post(f"{base}/{first.id}/correct", fix)
    assert no_reason.status_code == 422 and "reason for the correction" in text_of(no_reason)
    assert provider.post(f"{base}/{first.id}/correct", {**fix, "reason": "Typed 45 for 30."}).status_code == 303
    unconfirmed = provider.post(f"{base}/{second.id}/remove", {"reason": "Logged twice."})
    assert unconfirmed.status_code == 422 and "confirms the removal" in text_of(unconfirmed)
    assert provider.post(f"{base}/{second.id}/remove", {"reason": "Logged twice.", "confirm": "on"}).status_code == 303
    db_session.expire_all()
    assert db_session.scalar(select(func.count(ServiceSession.id))) == 2
    assert db_session.get(ServiceSession, first.id).minutes == 30
    assert db_session.get(ServiceSession, second.id).deleted_at is not None
    revisions = db_session.execute(select(EvidenceRevision.entity_id, EvidenceRevision.revision_no,
                                          EvidenceRevision.action, EvidenceRevision.edited_by_id)
                                   .order_by(EvidenceRevision.entity_id, EvidenceRevision.revision_no)).all()
    assert revisions == [(first.id, 1, "create", w["provider"].id), (first.id, 2, "edit", w["provider"].id),
                         (second.id, 1, "create", w["provider"].id), (second.id, 2, "remove", w["provider"].id)]
    assert b"Typed 45" not in b"".join(bytes(r) for r in db_session.scalars(
        select(EvidenceRevision.reason_encrypted).where(EvidenceRevision.reason_encrypted.is_not(None))))
    cm = Client(client, token_for(w["cm"]))
    page = text_of(cm.get(f"/casework/students/{w['ava'].id}/services"))
    assert "Removed sessions (kept for the record, not counted)" in page and "why: Logged twice." in page
    assert "Corrected by Oriel Brightwater" in page and "why: Typed 45 for 30." in page and "changed: minutes" in page
    # The week now holds one 30-minute session: the removed one no longer counts.
    assert "60 min 30 min 0 min 0 min 0 min 30 min" in page
    again = provider.post(f"{base}/{second.id}/correct", {**fix, "reason": "undo"})
    assert again.status_code == 422 and "was removed" in text_of(again)
    _log(cm, w["ava"], theirs, theirs.starts_on)
    other = db_session.scalars(select(ServiceSession).where(ServiceSession.requirement_id == theirs.id)).one()
    refused = provider.post(f"{base}/{other.id}/remove", {"reason": "not mine", "confirm": "on"})
    assert refused.status_code == 403
    db_session.expire_all()
    assert db_session.get(ServiceSession, other.id).deleted_at is None


@BOTH
def test_ferpa_99_10_contacts_and_meetings_are_removed_softly_with_reason_and_history(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    day = (TODAY - dt.timedelta(days=3)).isoformat()
    assert cm.post(f"{base}/contacts", {"contacted_on": day, "method": "phone", "direction": "out",
                                        "summary": "Wrong family called."}).status_code == 303
    assert cm.post(f"{base}/meetings", {"meeting_type": "parent_conference", "meets_on": day, "status": "held",
                                        "participants": "Guardian", "outcome": "Entered on the wrong student."}
                   ).status_code == 303
    contact = db_session.scalars(select(Contact)).one()
    meeting = db_session.scalars(select(Meeting)).one()
    assert cm.post(f"{base}/contacts/{contact.id}/remove", {"confirm": "on"}).status_code == 422
    assert cm.post(f"{base}/contacts/{contact.id}/remove",
                   {"reason": "Recorded on the wrong student.", "confirm": "on"}).status_code == 303
    assert cm.post(f"{base}/meetings/{meeting.id}/remove",
                   {"reason": "Duplicate of the meeting on file.", "confirm": "on"}).status_code == 303
    page = text_of(cm.get(f"{base}/contacts"))
    assert "Removed contacts (kept for the record): 1" in page and "Recorded on the wrong student." in page
    assert "Removed meetings (kept for the record): 1" in page and "Duplicate of the meeting on file." in page
    assert "No guardian contact recorded." in page
    timeline = text_of(cm.get(f"{base}/timeline"))
    assert "Wrong family called." not in timeline
    counselor = Client(client, token_for(w["counselor"], roles=()))
    assert counselor.post(f"{base}/meetings/{meeting.id}/remove", {"reason": "x", "confirm": "on"}).status_code == 403
    db_session.expire_all()
    assert db_session.scalar(select(func.count(Contact.id))) == 1
    assert db_session.get(Meeting, meeting.id).deleted_at is not None
    assert db_session.scalar(select(func.count(EvidenceRevision.id))) == 4
    contexts = db_session.scalars(select(AccessEvent.context).where(AccessEvent.actor_id == w["cm"].id,
                                                                    AccessEvent.action == "update_casework")).all()
    assert f"remove contact {contact.id}" in contexts and f"remove meeting {meeting.id}" in contexts


@BOTH
def test_ferpa_99_10_idea_300_613_export_holds_plan_dates_deadlines_ledger_and_evidence_history(app, client, token_for,
                                                                                                db_session):
    w = casework_world.build(db_session)
    plan = db_session.get(Plan, w["plan_ava"].id)
    plan.evaluation_consent_on = TODAY - dt.timedelta(days=400)
    plan.last_evaluation_on = TODAY - dt.timedelta(days=380)
    plan.last_meeting_on = TODAY - dt.timedelta(days=300)
    plan.effective_on = TODAY - dt.timedelta(days=300)
    db_session.add(DeadlineCompletion(plan_id=plan.id, student_id=w["ava"].id, kind="annual_review",
                                      due_on=plan.last_meeting_on - dt.timedelta(days=5),
                                      completed_on=plan.last_meeting_on, days_late=5, late_reason="parent_requested_delay"))
    req = _service(db_session, w["ava"], 30, weeks_ago=2, provider=w["provider"])
    db_session.commit()
    cm = Client(client, token_for(w["cm"], roles=("teacher",)))
    _log(cm, w["ava"], req, req.starts_on, 30, attendance="provider_absent")
    session_row = db_session.scalars(select(ServiceSession)).one()
    assert cm.post(f"/casework/students/{w['ava'].id}/sessions/{session_row.id}/correct",
                   {"held_on": req.starts_on.isoformat(), "minutes": "25", "attendance": "provider_absent",
                    "reason": "The session was 25 minutes."}).status_code == 303
    token = cm.token
    data = {"t": token, "csrf_token": admin_world.csrf_for(app, token), "format": "json", "leaves_school": "yes",
            "recipient": "Guardian of the student", "purpose": "Inspection request", "legal_basis": "parent_inspection"}
    resp = client.post(f"/admin/students/{w['ava'].id}/export", data=data)
    assert resp.status_code == 200, text_of(resp)
    record = json.loads(resp.get_data(as_text=True))
    dates = record["plans"][0]["dates"]
    assert dates["evaluation_consent_on"] == plan.evaluation_consent_on.isoformat()
    assert dates["last_meeting_on"] == plan.last_meeting_on.isoformat()
    assert {d["kind"] for d in record["deadlines"]} >= {"annual_review", "reevaluation"}
    assert all("status" in d and "due_on" in d for d in record["deadlines"])
    assert [(c["kind"], c["days_late"], c["late_reason"]) for c in record["deadline_timeliness"]] == [
        ("annual_review", 5, "parent_requested_delay")]
    (service,) = record["services"]
    assert service["ledger"]["required"] == 60 and service["ledger"]["missed_by_provider"] == 25
    assert service["ledger"]["still_owed"] == 60 and len(service["ledger"]["periods"]) >= 2
    revisions = record["casework"]["evidence_revisions"]
    assert [(r["revision_no"], r["action"]) for r in revisions] == [(1, "create"), (2, "edit")]
    assert revisions[0]["state"]["minutes"] == 30 and revisions[1]["state"]["minutes"] == 25
    assert revisions[1]["reason"] == "The session was 25 minutes." and revisions[1]["edited_by"] == "Tamsin Larkspur"
    assert "acknowledgements" in record and record["disclosures"] == []
    assert record["disclosure"]["recipient"] == "Guardian of the student"
    html = client.post(f"/admin/students/{w['ava'].id}/export", data={**data, "format": "html", "leaves_school": ""})
    page = text_of(html)
    assert "Services and minutes" in page and "still owed 60 min" in page and "Deadlines" in page
    assert "Evaluation consent" in page and "How deadlines were met" in page and "parent requested delay" in page
    assert "Guardian of the student" in page  # the first copy is now in the record of disclosures


@BOTH
def test_import_with_a_nul_is_refused_with_400_naming_the_line_and_writes_nothing(app, client, db_session, token_for):
    from lti_app.services.casework.importer import COLUMN_NAMES

    world = admin_world.build(db_session)
    token = token_for(world["district_admin"], roles=("teacher",))
    values = {"student_sis_id": "S-900", "given_name": "Noor", "family_name": "Adeyemi", "plan_type": "504",
              "effective_on": "2026-09-01", "accommodation_category": "timing", "accommodation_text": "Extra time"}
    good = ",".join(values.get(c, "") for c in COLUMN_NAMES)
    bad = good.replace("Noor", "No\x00or").replace("S-900", "S-901")
    content = ("\n".join([",".join(COLUMN_NAMES), good, bad]) + "\n").encode()
    counts = [db_session.scalar(select(func.count()).select_from(m)) for m in (Student, Plan, PlanVersion, Accommodation)]
    for mode in ("dry_run", "apply"):
        data = {"t": token, "csrf_token": admin_world.csrf_for(app, token), "mode": mode,
                "file": (io.BytesIO(content), "sis.csv")}
        resp = client.post("/admin/imports", data=data, content_type="multipart/form-data")
        assert resp.status_code == 400, mode
        assert "Line 3" in text_of(resp) and "NUL" in text_of(resp)
    db_session.expire_all()
    assert [db_session.scalar(select(func.count()).select_from(m))
            for m in (Student, Plan, PlanVersion, Accommodation)] == counts


@BOTH
def test_the_database_adds_sessions_up_per_week_and_month_as_the_python_ledger_does(db_session):
    """``ledger_summaries`` lets the database find each session's week (Monday to Sunday) or month; every weekday,
    Sundays and month ends included, must land where ``services_for`` (the per-session path) puts it."""
    from lti_app.services.casework.service_minutes import ledger_summaries, services_for

    w = casework_world.build(db_session)
    weekly = _service(db_session, w["ava"], 90, weeks_ago=9)
    monthly = ServiceRequirement(student_id=w["ava"].id, service_type="counseling", minutes=200, period="month",
                                 provider_name="Outside clinic", setting="", starts_on=weekly.starts_on)
    db_session.add(monthly)
    db_session.flush()
    for i in range(63):
        day = weekly.starts_on + dt.timedelta(days=i)
        for req in (weekly, monthly):
            db_session.add(ServiceSession(requirement_id=req.id, student_id=w["ava"].id, held_on=day, minutes=1 + i % 7,
                                          attendance=("delivered", "student_absent", "provider_absent")[i % 3],
                                          kind="make_up" if i % 11 == 0 else "session"))
    db_session.commit()
    summed = ledger_summaries(db_session, [w["ava"].id], TODAY)[w["ava"].id].by_service
    for view in services_for(db_session, w["ava"].id, TODAY):
        full, fast = view.ledger, summed[view.id]
        assert (fast.required, fast.delivered, fast.missed_by_student, fast.missed_by_provider, fast.made_up,
                fast.still_owed, fast.last_complete) == (full.required, full.delivered, full.missed_by_student,
                                                         full.missed_by_provider, full.made_up, full.still_owed,
                                                         full.last_complete)
        assert full.delivered > 0 and full.missed_by_provider > 0 and full.made_up > 0


@BOTH
def test_cli_import_with_a_control_character_fails_naming_the_line(runner, db_session, tmp_path):
    from lti_app.services.casework.importer import COLUMN_NAMES

    values = {"student_sis_id": "S-900", "given_name": "Noor", "family_name": "Ad\x1beyemi", "plan_type": "504",
              "effective_on": "2026-09-01"}
    path = tmp_path / "sis.csv"
    path.write_text(",".join(COLUMN_NAMES) + "\n" + ",".join(values.get(c, "") for c in COLUMN_NAMES) + "\n")
    result = runner.invoke(main, ["import", str(path)])
    assert result.exit_code != 0 and "line 2" in result.output.lower() and "ESC" in result.output
    assert db_session.scalar(select(func.count(Student.id))) == 0


@BOTH
def test_a_nul_typed_into_a_casework_form_is_a_422_on_both_databases(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    resp = cm.post(f"/casework/students/{w['ava'].id}/contacts",
                   {"contacted_on": TODAY.isoformat(), "method": "phone", "direction": "out",
                    "contact_with": "mo\x00ther", "summary": "Called."})
    assert resp.status_code == 422 and "control character" in text_of(resp)
    db_session.expire_all()
    assert db_session.scalar(select(func.count(Contact.id))) == 0


@BOTH
def test_300_320_a_4_the_services_tab_adds_every_service_of_the_student_up(client, token_for, db_session):
    w = casework_world.build(db_session)
    speech = _service(db_session, w["ava"], 30, weeks_ago=2, provider=w["provider"])
    _service(db_session, w["ava"], 60, weeks_ago=2)
    db_session.add(ServiceSession(requirement_id=speech.id, student_id=w["ava"].id, held_on=speech.starts_on,
                                  minutes=30, attendance="student_absent"))
    db_session.commit()
    page = text_of(Client(client, token_for(w["cm"])).get(f"/casework/students/{w['ava'].id}/services"))
    assert "All 2 services of Ava Quinlan since each began: 2 with minutes owed" in page
    # required 60 + 120, nothing delivered, 30 missed by the student: 150 owed
    assert "180 min 0 min 30 min 0 min 0 min 150 min" in page

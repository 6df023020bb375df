"""Retention: the dry run lists what would go, the purge removes the detail and keeps the permanent subset, the
purge is logged, and only district/LMS administrators may apply it."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from lti_app import clock
from lti_app.cli import main
from lti_app.models import (
    AccessEvent,
    Accommodation,
    Acknowledgement,
    AdminEvent,
    CaseNote,
    CaseNoteRevision,
    Disclosure,
    NoteDraft,
    Plan,
    PlanVersion,
    Question,
    Student,
    StudentLink,
)
from lti_app.services.casework import retention
from tests.support import admin_world

LONG_AGO = dt.date(2019, 6, 14)


@pytest.fixture
def world(db_session):
    w = admin_world.build(db_session)
    ava = db_session.get(Student, w["ava"].id)
    ava.departed_on = LONG_AGO
    db_session.get(Student, w["ben"].id).departed_on = clock.today() - dt.timedelta(days=30)  # left recently
    db_session.add(AccessEvent(actor_id=w["cm"].id, student_id=ava.id, action="view", basis="caseload", context="card"))
    db_session.add(Disclosure(student_id=ava.id, recipient="Harbor View MS", purpose="transfer", legal_basis="99.31",
                              records="support record"))
    from lti_app.crypto import cipher

    db_session.add(NoteDraft(author_id=w["cm"].id, student_id=ava.id, body_encrypted=cipher().encrypt("draft")))
    db_session.commit()
    return w


def _count(s, model, **where):
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return s.scalar(stmt)


def _plain(resp) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def test_dry_run_lists_due_records_with_counts_and_changes_nothing(db_session, world):
    result = retention.run(db_session, retention.cutoff(clock.today(), 5), dry_run=True)
    assert [c.sis_id for c in result.candidates] == ["S-1"]  # Ben left 30 days ago
    assert result.candidates[0].counts == {"accommodations": 3, "acknowledgements": 1, "case_note_revisions": 3,
                                           "case_notes": 3, "note_drafts": 1, "questions": 1}
    assert not result.applied
    assert _count(db_session, CaseNote) == 3 and _count(db_session, Accommodation) == 3
    assert db_session.scalars(select(AdminEvent)).all() == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_purge_removes_the_detail_and_keeps_the_permanent_subset(db_session, world):
    ava_id = world["ava"].id
    result = retention.run(db_session, retention.cutoff(clock.today(), 5), dry_run=False, actor_id=None, via="cli")
    assert result.applied and result.totals["case_notes"] == 3
    db_session.expire_all()
    for model in (CaseNote, CaseNoteRevision, NoteDraft, Question, Acknowledgement, Accommodation):
        assert _count(db_session, model) == 0, model
    ava = db_session.get(Student, ava_id)
    assert ava.purged_at is not None and (ava.given_name, ava.sis_id, ava.date_of_birth) == (
        "Ava", "S-1", dt.date(2010, 4, 17))
    plan = db_session.scalars(select(Plan).where(Plan.student_id == ava_id)).one()
    assert (plan.plan_type, plan.status, plan.effective_on, plan.end_on) == ("IEP", "ended", dt.date(2026, 9, 1),
                                                                             LONG_AGO)
    versions = db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == plan.id)
                                  .order_by(PlanVersion.version_no)).all()
    assert [(v.version_no, v.summary) for v in versions] == [(1, ""), (2, "")]
    assert _count(db_session, AccessEvent, student_id=ava_id) == 1
    assert _count(db_session, Disclosure, student_id=ava_id) == 1
    assert _count(db_session, StudentLink, student_id=ava_id) == 1
    event = db_session.scalars(select(AdminEvent)).one()
    assert (event.action, event.via, event.details["student_ids"]) == ("retention.purge", "cli", [ava_id])
    # Nothing is purged twice.
    assert retention.run(db_session, retention.cutoff(clock.today(), 5), dry_run=False).candidates == []


def test_purge_covers_every_table_holding_a_student_id_and_what_hangs_from_them(db_session):
    names = {t.name for t in retention.purged_tables()}
    assert {"case_notes", "note_drafts", "questions", "acknowledgements"} <= names
    assert not names & retention.KEPT_TABLES
    dependents = {t.name: [(c.name, ref.table.name) for c, ref in links] for t, links in retention.dependent_tables()}
    assert dependents["case_note_revisions"] == [("note_id", "case_notes")]
    assert not set(dependents) & (retention.KEPT_TABLES | {"plan_versions", "accommodations", "persons", "courses"})


def test_cli_dry_run_and_apply(runner, db_session, world):
    result = runner.invoke(main, ["retention", "--before", "2020-01-01"])
    assert result.exit_code == 0, result.output
    assert "Students who departed before 2020-01-01: 1 record(s) would be purged." in result.output
    assert "3 case_notes" in result.output and "Dry run: nothing was changed." in result.output
    assert _count(db_session, CaseNote) == 3
    result = runner.invoke(main, ["retention", "--apply", "--before", "2019-01-01"])
    assert "0 record(s) were purged" in result.output
    result = runner.invoke(main, ["retention", "--apply", "--before", "2020-01-01"])
    assert result.exit_code == 0 and "1 record(s) were purged" in result.output
    db_session.expire_all()
    assert _count(db_session, CaseNote) == 0
    future = runner.invoke(main, ["retention", "--apply", "--before", "2999-01-01"])
    assert future.exit_code != 0 and "in the future" in future.output


def test_retention_page_lists_and_district_admin_purges_with_confirmation(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    text = _plain(client.get("/admin/retention", query_string={"t": token}))
    assert "Due for purging (1)" in text and "Ava Quinlan" in text and "3 note revisions · 3 notes" in text
    csrf = admin_world.csrf_for(app, token)
    resp = client.post("/admin/retention", data={"t": token, "csrf_token": csrf})
    assert resp.status_code == 400 and "Tick the box" in _plain(resp)
    assert _count(db_session, CaseNote) == 3
    resp = client.post("/admin/retention", data={"t": token, "csrf_token": csrf, "confirm": "on"})
    assert resp.status_code == 303
    db_session.expire_all()
    assert _count(db_session, CaseNote) == 0
    event = db_session.scalars(select(AdminEvent)).one()
    assert (event.actor_id, event.via) == (world["district_admin"].id, "web")
    text = _plain(client.get("/admin/retention", query_string={"t": token}))
    assert "Due for purging (0)" in text and "Retention purge of 1 departed student record(s)" in text


def test_only_district_admins_see_or_run_the_district_wide_purge(app, client, db_session, world, token_for):
    # Issue #14: the purge reaches every platform's students, so an LMS administrator (one platform's authority)
    # and a school administrator neither list nor purge (LMS administrators could purge before).
    for who, roles in [("school_admin", ("teacher",)), ("lms_admin", ("admin",))]:
        token = token_for(world[who], roles=roles)
        text = _plain(client.get("/admin/retention", query_string={"t": token}))
        assert "Ava Quinlan" not in text and "district administrators" in text
        resp = client.post("/admin/retention", data={"t": token, "csrf_token": admin_world.csrf_for(app, token),
                                                     "confirm": "on"})
        assert resp.status_code == 403, who
    assert _count(db_session, CaseNote) == 3
    assert _count(db_session, Student, purged_at=None) == 2


def test_a_cutoff_later_than_the_policy_is_refused(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    later = clock.today().isoformat()
    text = _plain(client.get("/admin/retention", query_string={"t": token, "before": later}))
    assert "later than the retention policy allows" in text and "Ben Hollis" not in text
    resp = client.post("/admin/retention", data={"t": token, "csrf_token": admin_world.csrf_for(app, token),
                                                 "confirm": "on", "before": later})
    assert resp.status_code == 400
    assert _count(db_session, Student, purged_at=None) == 2
    bad = _plain(client.get("/admin/retention", query_string={"t": token, "before": "June"}))
    assert "'June' is not a date written YYYY-MM-DD" in bad


def test_export_after_purge_shows_the_kept_subset(app, client, db_session, world, token_for):
    retention.run(db_session, retention.cutoff(clock.today(), 5), dry_run=False)
    token = token_for(world["district_admin"], roles=("teacher",))
    resp = client.post(f"/admin/students/{world['ava'].id}/export",
                       data={"t": token, "csrf_token": admin_world.csrf_for(app, token), "format": "json"})
    import json

    record = json.loads(resp.get_data())
    assert record["student"]["purged_at"] is not None and record["notes"] == []
    assert record["plans"][0]["plan_type"] == "IEP" and record["plans"][0]["versions"][1]["accommodations"] == []
    assert record["disclosures"][0]["recipient"] == "Harbor View MS"

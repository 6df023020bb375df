"""Guardian contacts, meetings, referrals and crisis entries: create and change through the workspace, validation
that writes nothing, text encrypted at rest and escaped on the page, restricted crisis entries, the timeline (order
and tiers), export and retention of casework."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import func, select

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.models import (
    AccessEvent,
    CaseNote,
    Contact,
    CrisisEntry,
    Meeting,
    Referral,
    ReferralStatusChange,
    ServiceRequirement,
    ServiceSession,
    Student,
)
from lti_app.services.casework import export, retention
from tests.support import casework_world
from tests.support.casework_world import Client, text_of

TODAY = clock.today()
D = lambda days: (TODAY - dt.timedelta(days=days)).isoformat()  # noqa: E731


def _count(s, model):
    s.expire_all()
    return s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_contact_created_edited_and_follow_up_done(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    resp = cm.post(f"{base}/contacts", {"contacted_on": D(3), "method": "phone", "direction": "out",
                                        "contact_with": "guardian", "summary": "Talked about <b>reading</b> support.",
                                        "follow_up_on": D(1)})
    assert resp.status_code == 303 and "done=contact" in resp.headers["Location"]
    contact = db_session.scalars(select(Contact)).one()
    assert b"reading" not in bytes(contact.summary_encrypted)
    assert cipher().decrypt(contact.summary_encrypted) == "Talked about <b>reading</b> support."
    html = cm.get(f"{base}/contacts").get_data(as_text=True)
    assert "Talked about &lt;b&gt;reading&lt;/b&gt; support." in html and "<b>reading</b>" not in html
    assert "overdue" in text_of(cm.get(f"{base}/contacts"))
    assert cm.post(f"{base}/contacts/{contact.id}/follow-up-done", {}).status_code == 303
    db_session.expire_all()
    assert db_session.get(Contact, contact.id).follow_up_done_at is not None
    # Issue #11: a correction says why (without a reason nothing changes), and the old state stays as revision 1.
    change = {"contacted_on": D(3), "method": "email", "direction": "in", "summary": "Guardian emailed back.",
              "follow_up_on": ""}
    no_reason = cm.post(f"{base}/contacts/{contact.id}/edit", change)
    assert no_reason.status_code == 422 and "reason for the correction" in text_of(no_reason)
    resp = cm.post(f"{base}/contacts/{contact.id}/edit", {**change, "reason": "It was an email, not a call."})
    assert resp.status_code == 303
    db_session.expire_all()
    edited = db_session.get(Contact, contact.id)
    assert edited.method == "email" and edited.follow_up_on is None and edited.follow_up_done_at is None
    assert edited.revision_no == 2
    actions = db_session.scalars(select(AccessEvent.context).where(AccessEvent.action == "update_casework")
                                 .order_by(AccessEvent.id)).all()
    assert actions == ["add guardian contact", f"contact {contact.id}: follow-up done", f"edit contact {contact.id}"]


def test_contact_with_follow_up_before_it_writes_nothing_and_keeps_what_was_typed(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    resp = cm.post(f"/casework/students/{w['ava'].id}/contacts",
                   {"contacted_on": D(2), "method": "phone", "direction": "out", "summary": "Left a message.",
                    "follow_up_on": D(5)})
    assert resp.status_code == 422
    assert "is before the contact" in text_of(resp) and "Left a message." in resp.get_data(as_text=True)
    assert _count(db_session, Contact) == 0


def test_meeting_scheduled_then_held_with_outcome_and_notice_rules(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    bad = cm.post(f"{base}/meetings", {"meeting_type": "iep_annual", "meets_on": D(-10), "participants": "Guardian",
                                       "notice_sent_on": D(-12), "status": "scheduled"})
    assert bad.status_code == 422 and "cannot be in the future" in text_of(bad)
    bad = cm.post(f"{base}/meetings", {"meeting_type": "iep_annual", "meets_on": D(10), "participants": "Guardian",
                                       "notice_sent_on": D(5), "status": "scheduled"})
    assert bad.status_code == 422 and "after the meeting" in text_of(bad)
    # The errors name the form they concern, so the page shows them inside it (issue #13), whose fields carry its name.
    html = bad.get_data(as_text=True)
    form_name = re.search(r'id="form-errors" data-result data-form="([a-z_-]+)"', html).group(1)
    assert f'id="{form_name}-meets_on"' in html
    assert _count(db_session, Meeting) == 0
    ok = cm.post(f"{base}/meetings", {"meeting_type": "iep_annual", "meets_on": D(-10), "status": "scheduled",
                                      "participants": "Guardian, general education teacher, case manager"})
    assert ok.status_code == 303 and "done=meeting" in ok.headers["Location"]
    assert ok.headers["Location"].endswith("#meetings-h")  # the confirmation goes beside the meetings
    meeting = db_session.scalars(select(Meeting)).one()
    assert "notice not sent" in text_of(cm.get(base))
    held = cm.post(f"{base}/meetings/{meeting.id}/edit",
                   {"meeting_type": "iep_annual", "meets_on": D(0), "participants": "Guardian", "notice_sent_on": D(12),
                    "status": "held", "outcome": "Services continued; reading goal revised.",
                    "reason": "Meeting held; outcome recorded."})
    assert held.status_code == 303, text_of(held)
    db_session.expire_all()
    meeting = db_session.get(Meeting, meeting.id)
    assert meeting.status == "held" and cipher().decrypt(meeting.outcome_encrypted).startswith("Services continued")


def test_referral_status_history_and_closed_states(client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    assert cm.post(f"{base}/referrals", {"referral_type": "evaluation", "referred_to": "School psychologist",
                                         "reason": "Reading fluency well below peers.", "referred_on": D(4)}
                   ).status_code == 303
    ref = db_session.scalars(select(Referral)).one()
    assert cm.post(f"{base}/referrals/{ref.id}/status", {"status": "accepted", "note": "Consent signed"}).status_code == 303
    assert cm.post(f"{base}/referrals/{ref.id}/status", {"status": "done"}).status_code == 303
    refused = cm.post(f"{base}/referrals/{ref.id}/status", {"status": "accepted"})
    assert refused.status_code == 422 and "make a new referral" in text_of(refused)
    db_session.expire_all()
    history = db_session.scalars(select(ReferralStatusChange.status).order_by(ReferralStatusChange.id)).all()
    assert history == ["pending", "accepted", "done"] and db_session.get(Referral, ref.id).status == "done"
    page = text_of(cm.get(f"{base}/contacts"))
    assert "Status history (3)" in page and "Consent signed" in page


def test_entries_of_another_student_cannot_be_changed_through_this_students_url(client, token_for, db_session):
    w = casework_world.build(db_session)
    db_session.add(Contact(student_id=w["ben"].id, contacted_on=TODAY, method="phone", direction="out",
                           contact_with="", summary_encrypted=cipher().encrypt("Ben's contact")))
    db_session.commit()
    contact = db_session.scalars(select(Contact)).one()
    resp = Client(client, token_for(w["cm"])).post(f"/casework/students/{w['ava'].id}/contacts/{contact.id}/edit",
                                                   {"contacted_on": D(0), "method": "email", "direction": "out",
                                                    "summary": "overwritten"})
    assert resp.status_code == 404
    db_session.expire_all()
    assert db_session.get(Contact, contact.id).method == "phone"


def test_crisis_entries_are_hidden_without_restricted_access_and_opened_by_a_logged_action(client, token_for,
                                                                                            db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    assert cm.post(f"{base}/crisis", {"occurred_on": D(1), "description": "Disclosed thoughts of self-harm.",
                                      "actions": "Counselor and guardian called; safety plan."}).status_code == 303
    entry = db_session.scalars(select(CrisisEntry)).one()
    assert entry.visibility == "restricted"
    page = cm.get(f"{base}/contacts").get_data(as_text=True)
    assert "Restricted crisis entry — hidden." in page and "self-harm" not in page
    opened = cm.post(f"{base}/crisis/{entry.id}/open", {})
    assert opened.status_code == 200 and "Disclosed thoughts of self-harm." in text_of(opened)
    assert db_session.scalar(select(func.count(AccessEvent.id)).where(
        AccessEvent.action == "view_restricted", AccessEvent.context == f"open crisis entry {entry.id}",
        AccessEvent.allowed.is_(True))) == 1
    for who, roles in ((w["counselor"], ()), (w["provider"], ())):
        other = Client(client, token_for(who, roles=roles))
        for tab in ("contacts", "timeline"):
            text = text_of(other.get(f"{base}/{tab}"))
            assert "Crisis entr" not in text and "self-harm" not in text
        refused = other.post(f"{base}/crisis/{entry.id}/open", {})
        assert refused.status_code == 404


def test_case_manager_without_restricted_access_records_case_team_crisis_entries_only(client, token_for, db_session):
    w = casework_world.build(db_session, cm_restricted=False)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    refused = cm.post(f"{base}/crisis", {"occurred_on": D(1), "description": "x", "visibility": "restricted"})
    assert refused.status_code == 422 and _count(db_session, CrisisEntry) == 0
    assert cm.post(f"{base}/crisis", {"occurred_on": D(1), "description": "Left class upset; calmed in the office.",
                                      "visibility": "case_team"}).status_code == 303
    assert "Left class upset" in text_of(Client(client, token_for(w["counselor"], roles=())).get(f"{base}/contacts"))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_timeline_merges_everything_newest_first_by_the_viewers_tiers(client, token_for, db_session):
    w = casework_world.build(db_session)
    ava = w["ava"].id
    enc = cipher().encrypt
    day = lambda n: TODAY - dt.timedelta(days=n)  # noqa: E731
    for n, tier, text in [(9, "team", "Team note"), (7, "case_team", "Case team note"), (5, "restricted", "Secret note")]:
        db_session.add(CaseNote(student_id=ava, author_id=w["cm"].id, note_type="observation", recorded_on=day(n),
                                visibility=tier, body_encrypted=enc(text)))
    db_session.add(Contact(student_id=ava, contacted_on=day(8), method="phone", direction="in", contact_with="",
                           summary_encrypted=enc("Guardian called")))
    db_session.add(Meeting(student_id=ava, meeting_type="504_review", meets_on=day(2), status="held",
                           participants_encrypted=enc("Team"), outcome_encrypted=enc("Plan kept")))
    db_session.add(Referral(student_id=ava, referral_type="tutoring", referred_to="Peer tutoring", referred_on=day(6),
                            reason_encrypted=enc("Algebra support"), status="pending"))
    db_session.add(CrisisEntry(student_id=ava, occurred_on=day(4), description_encrypted=enc("Crisis text")))
    req = ServiceRequirement(student_id=ava, service_type="counseling", minutes=30, period="week", provider_name="x",
                             setting="", starts_on=day(60))
    db_session.add(req)
    db_session.flush()
    db_session.add(ServiceSession(requirement_id=req.id, student_id=ava, held_on=day(3), minutes=30,
                                  attendance="delivered"))
    db_session.commit()
    cm_text = text_of(Client(client, token_for(w["cm"])).get(f"/casework/students/{ava}/timeline"))
    order = ["Plan kept", "Counseling session", "Crisis entry", "Observation note · Tamsin Larkspur · restricted",
             "Algebra support", "Case team note", "Guardian called", "Team note"]
    positions = [cm_text.index(x) for x in order]
    assert positions == sorted(positions)
    assert "Secret note" not in cm_text and "Crisis text" not in cm_text  # restricted: listed, redacted
    counselor_text = text_of(Client(client, token_for(w["counselor"], roles=())).get(f"/casework/students/{ava}/timeline"))
    assert "Case team note" in counselor_text and "Team note" in counselor_text
    assert "restricted" not in counselor_text.split("Notes and timeline", 1)[1].split("Restricted entries")[1]
    assert "Crisis entry" not in counselor_text
    only_contacts = text_of(Client(client, token_for(w["cm"])).get(f"/casework/students/{ava}/timeline", kind="contact"))
    assert "Guardian called" in only_contacts and "Team note" not in only_contacts


def _export(app, db_session, person, include_restricted):
    with app.test_request_context():
        viewer = Viewer(person.id, person.platform_id, None, ("teacher",))
        return export.export_student(db_session, viewer, person_student(db_session),
                                     export.ExportRequest("json", include_restricted=include_restricted)).record


def person_student(db_session):
    return db_session.scalars(select(Student.id).where(Student.sis_id == "S-1")).one()


def test_export_holds_casework_readably_and_crisis_entries_only_when_restricted_is_asked(app, client, token_for,
                                                                                        db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    cm.post(f"{base}/contacts", {"contacted_on": D(1), "method": "phone", "direction": "out", "summary": "Called home."})
    cm.post(f"{base}/referrals", {"referral_type": "counseling", "referred_to": "School counselor",
                                  "reason": "Anxiety before tests.", "referred_on": D(1)})
    cm.post(f"{base}/crisis", {"occurred_on": D(1), "description": "Crisis description."})
    record = _export(app, db_session, w["cm"], include_restricted=False)
    casework = record["casework"]
    assert casework["contacts"][0]["summary"] == "Called home."
    assert casework["contacts"][0]["recorded_by"] == "Tamsin Larkspur"
    assert casework["referrals"][0]["reason"] == "Anxiety before tests."
    assert [c["status"] for c in casework["referral_status_changes"]] == ["pending"]
    assert casework["crisis_entries"] == []
    record = _export(app, db_session, w["cm"], include_restricted=True)
    assert record["casework"]["crisis_entries"][0]["description"] == "Crisis description."
    json.dumps(record)  # serialisable as the JSON download


def test_retention_purges_casework(app, client, token_for, db_session):
    w = casework_world.build(db_session)
    cm = Client(client, token_for(w["cm"]))
    base = f"/casework/students/{w['ava'].id}"
    cm.post(f"{base}/referrals", {"referral_type": "tutoring", "referred_to": "Peer tutoring", "reason": "x",
                                  "referred_on": D(1)})
    cm.post(f"{base}/crisis", {"occurred_on": D(1), "description": "x"})
    cm.post(f"{base}/meetings", {"meeting_type": "other", "meets_on": D(1), "participants": "x", "status": "held"})
    cm.post(f"{base}/contacts", {"contacted_on": D(1), "method": "phone", "direction": "out", "summary": "x"})
    req = ServiceRequirement(student_id=w["ava"].id, service_type="tutoring", minutes=30, period="week",
                             provider_name="x", setting="", starts_on=TODAY - dt.timedelta(days=30))
    db_session.add(req)
    db_session.flush()
    db_session.add(ServiceSession(requirement_id=req.id, student_id=w["ava"].id, held_on=TODAY, minutes=30,
                                  attendance="delivered"))
    db_session.get(Student, w["ava"].id).departed_on = dt.date(2019, 6, 14)
    db_session.commit()
    before = retention.cutoff(TODAY, 5)
    dry = retention.run(db_session, before, dry_run=True)
    counts = dry.candidates[0].counts
    for table in ("contacts", "meetings", "referrals", "referral_status_changes", "crisis_entries",
                  "service_requirements", "service_sessions"):
        assert counts.get(table) == 1, table
    retention.run(db_session, before, dry_run=False)
    for model in (Contact, Meeting, Referral, ReferralStatusChange, CrisisEntry, ServiceRequirement, ServiceSession):
        assert _count(db_session, model) == 0, model.__tablename__

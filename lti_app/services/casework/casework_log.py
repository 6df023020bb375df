"""Guardian contacts, meetings, referrals and crisis entries: validated writes (a form is checked whole before
anything is written), decrypted read models, and the student's timeline.

Free text is encrypted at rest with the data keys. Crisis entries are restricted by default: they are listed only
to staff whose note tiers include their visibility, and a restricted entry's text is shown only after an explicit,
logged "open" (as restricted case notes are). Nothing here logs names or text: internal ids only."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.access import Action, Decision
from lti_app.domain.casework_rules import (
    CaseworkInvalid,
    change_reason,
    contact_input,
    crisis_input,
    meeting_input,
    referral_change,
    referral_input,
)
from lti_app.models import (
    Contact,
    CrisisEntry,
    Meeting,
    Person,
    Referral,
    ReferralStatusChange,
    ServiceRequirement,
    ServiceSession,
)
from lti_app.services.access import policy as access
from lti_app.services.casework import casework_access, evidence, notes
from lti_app.services.casework import deadlines as deadline_service
from lti_app.services.casework.service_minutes import ATTENDANCE_LABELS, SERVICE_LABELS

log = logging.getLogger(__name__)
F = TypeVar("F")

METHOD_LABELS = {"phone": "Phone", "email": "Email", "in_person": "In person", "video": "Video call",
                 "letter": "Letter", "message": "Message (app or text)"}
DIRECTION_LABELS = {"out": "School to guardian", "in": "Guardian to school"}
MEETING_LABELS = {"iep_annual": "Annual IEP meeting", "iep_initial": "Initial IEP meeting",
                  "iep_amendment": "IEP amendment meeting", "reevaluation": "Reevaluation meeting",
                  "eligibility": "Eligibility determination",
                  "504_review": "504 plan review", "manifestation": "Manifestation determination",
                  "parent_conference": "Parent conference", "other": "Other meeting"}
MEETING_STATUS_LABELS = {"scheduled": "Scheduled", "held": "Held", "cancelled": "Cancelled"}
REFERRAL_LABELS = {"counseling": "Counseling", "therapy": "Therapy", "tutoring": "Tutoring",
                   "outside_agency": "Outside agency", "evaluation": "Evaluation"}
REFERRAL_STATUS_LABELS = {"pending": "Pending", "accepted": "Accepted", "declined": "Declined", "done": "Done"}


def _today(today: dt.date | None) -> dt.date:
    return today or clock.today()


def _text(token: bytes | None) -> str:
    return cipher().decrypt(token) if token else ""


# ---------------------------------------------------------------------------------------------------- contacts


@dataclass(frozen=True)
class ContactView:
    id: int
    contacted_on: dt.date
    method: str
    direction: str
    contact_with: str
    summary: str
    follow_up_on: dt.date | None
    follow_up_done: bool
    recorded_by: str | None
    created_at: dt.datetime
    revision_no: int = 1
    deleted_at: dt.datetime | None = None

    def follow_up_due(self, today: dt.date) -> bool:
        return self.follow_up_on is not None and not self.follow_up_done and self.follow_up_on <= today


def create_contact(session: Session, viewer: Viewer, student_id: int, data: Mapping[str, str],
                   today: dt.date | None = None) -> Contact:
    casework_access.authorize(session, viewer, student_id, Action.EDIT_CASEWORK, "add guardian contact")
    form = contact_input(data, _today(today))
    row = Contact(student_id=student_id, contacted_on=form.contacted_on, method=form.method, direction=form.direction,
                  contact_with=form.contact_with, summary_encrypted=cipher().encrypt(form.summary),
                  follow_up_on=form.follow_up_on, recorded_by_id=viewer.person_id)
    session.add(row)
    session.flush()
    log.info("contact added id=%s student=%s actor=%s", row.id, student_id, viewer.person_id)
    return row


def _get(session: Session, model: type, row_id: int, what: str) -> object:
    row = session.get(model, row_id)
    if row is None:
        abort(404, description=f"There is no {what} with this id.")
    return row


def _not_removed(row: Contact | Meeting, what: str) -> None:
    if row.deleted_at is not None:
        raise CaseworkInvalid([("reason", f"This {what} was removed; it is kept in the history and is not changed "
                                          "again. Record a new one instead.")])


def _form_and_reason(parse: Callable[[Mapping[str, str], dt.date], F], data: Mapping[str, str],
                     today: dt.date) -> tuple[F, str]:
    """Check the entry's fields and the reason for the correction together, so every problem is reported at once."""
    problems: list[tuple[str, str]] = []
    form: F | None = None
    try:
        form = parse(data, today)
    except CaseworkInvalid as exc:
        problems += exc.problems
    reason = ""
    try:
        reason = change_reason(data, removal=False)
    except CaseworkInvalid as exc:
        problems += exc.problems
    if problems or form is None:
        raise CaseworkInvalid(problems)
    return form, reason


def update_contact(session: Session, viewer: Viewer, contact_id: int, data: Mapping[str, str],
                   today: dt.date | None = None) -> Contact:
    """Correct a contact: a new revision with who, when and why (evidence is never overwritten without a trace)."""
    row = _get(session, Contact, contact_id, "contact")
    assert isinstance(row, Contact)
    casework_access.authorize(session, viewer, row.student_id, Action.EDIT_CASEWORK, f"edit contact {row.id}")
    _not_removed(row, "contact")
    form, reason = _form_and_reason(contact_input, data, _today(today))
    before = evidence.before_change(session, row, row.student_id)
    if form.follow_up_on != row.follow_up_on:
        row.follow_up_done_at = None
    row.contacted_on, row.method, row.direction, row.contact_with = (form.contacted_on, form.method, form.direction,
                                                                     form.contact_with)
    row.summary_encrypted, row.follow_up_on, row.updated_at = cipher().encrypt(form.summary), form.follow_up_on, utcnow()
    if evidence.unchanged(before, row):
        raise CaseworkInvalid([("summary", "Nothing was changed: correct a value, or leave the contact as it is.")])
    evidence.after_change(session, viewer, row, row.student_id, reason)
    return row


def _remove(session: Session, viewer: Viewer, row: Contact | Meeting, what: str, data: Mapping[str, str]) -> None:
    """Remove an entry recorded by mistake, softly: kept in the history with who, when and why."""
    casework_access.authorize(session, viewer, row.student_id, Action.EDIT_CASEWORK, f"remove {what} {row.id}")
    _not_removed(row, what)
    reason = change_reason(data, removal=True)
    evidence.before_change(session, row, row.student_id)
    row.updated_at = utcnow()
    evidence.after_change(session, viewer, row, row.student_id, reason, action="remove")


def remove_contact(session: Session, viewer: Viewer, contact_id: int, data: Mapping[str, str]) -> Contact:
    """Remove a contact recorded by mistake, softly: kept in the history with who, when and why."""
    row = _get(session, Contact, contact_id, "contact")
    assert isinstance(row, Contact)
    _remove(session, viewer, row, "contact", data)
    return row


def complete_follow_up(session: Session, viewer: Viewer, contact_id: int) -> Contact:
    row = _get(session, Contact, contact_id, "contact")
    assert isinstance(row, Contact)
    casework_access.authorize(session, viewer, row.student_id, Action.EDIT_CASEWORK, f"contact {row.id}: follow-up done")
    if row.follow_up_on is None:
        from lti_app.domain.casework_rules import CaseworkInvalid

        raise CaseworkInvalid([("follow_up_on", "This contact has no follow-up to mark as done.")])
    if row.follow_up_done_at is None:
        row.follow_up_done_at = row.updated_at = utcnow()
    return row


def contacts_for(session: Session, student_id: int, removed: bool = False) -> list[ContactView]:
    """The student's contacts, newest first: the current ones, or (``removed``) the ones removed by mistake."""
    rows = session.execute(select(Contact, Person.name).outerjoin(Person, Person.id == Contact.recorded_by_id)
                           .where(Contact.student_id == student_id,
                                  Contact.deleted_at.is_not(None) if removed else Contact.deleted_at.is_(None))
                           .order_by(Contact.contacted_on.desc(), Contact.id.desc())).all()
    return [ContactView(c.id, c.contacted_on, c.method, c.direction, c.contact_with, _text(c.summary_encrypted),
                        c.follow_up_on, c.follow_up_done_at is not None, who, c.created_at, c.revision_no or 1,
                        c.deleted_at) for c, who in rows]


# ---------------------------------------------------------------------------------------------------- meetings


@dataclass(frozen=True)
class MeetingView:
    id: int
    meeting_type: str
    meets_on: dt.date
    participants: str
    notice_sent_on: dt.date | None
    status: str
    outcome: str
    recorded_by: str | None
    created_at: dt.datetime
    revision_no: int = 1
    deleted_at: dt.datetime | None = None


def _meeting_held(session: Session, viewer: Viewer, row: Meeting, data: Mapping[str, str], today: dt.date) -> None:
    """One entry, not two: a held annual review, reevaluation, eligibility or 504 review moves the plan's deadline
    date (``services/casework/deadlines.record_meeting_held``); late, it needs the reason (``late_reason``)."""
    from lti_app.domain.casework_rules import CaseworkInvalid as Invalid

    if row.status != "held":
        return
    try:
        deadline_service.record_meeting_held(session, viewer, row.student_id, row.meeting_type, row.meets_on, row.id,
                                             data.get("late_reason"), today)
    except deadline_service.InputsInvalid as exc:
        raise Invalid([(p.field, p.message) for p in exc.problems]) from None


def create_meeting(session: Session, viewer: Viewer, student_id: int, data: Mapping[str, str],
                   today: dt.date | None = None) -> Meeting:
    casework_access.authorize(session, viewer, student_id, Action.EDIT_CASEWORK, "add meeting")
    form = meeting_input(data, _today(today))
    row = Meeting(student_id=student_id, meeting_type=form.meeting_type, meets_on=form.meets_on,
                  participants_encrypted=cipher().encrypt(form.participants), notice_sent_on=form.notice_sent_on,
                  status=form.status, outcome_encrypted=cipher().encrypt(form.outcome) if form.outcome else None,
                  recorded_by_id=viewer.person_id)
    session.add(row)
    session.flush()
    _meeting_held(session, viewer, row, data, _today(today))
    log.info("meeting added id=%s student=%s actor=%s", row.id, student_id, viewer.person_id)
    return row


def update_meeting(session: Session, viewer: Viewer, meeting_id: int, data: Mapping[str, str],
                   today: dt.date | None = None) -> Meeting:
    """Change a meeting (its status, its outcome, a corrected date...): a new revision with who, when and why."""
    row = _get(session, Meeting, meeting_id, "meeting")
    assert isinstance(row, Meeting)
    casework_access.authorize(session, viewer, row.student_id, Action.EDIT_CASEWORK, f"edit meeting {row.id}")
    _not_removed(row, "meeting")
    form, reason = _form_and_reason(meeting_input, data, _today(today))
    was_held = (row.meeting_type, row.meets_on) if row.status == "held" else None
    before = evidence.before_change(session, row, row.student_id)
    row.meeting_type, row.meets_on, row.notice_sent_on, row.status = (form.meeting_type, form.meets_on,
                                                                      form.notice_sent_on, form.status)
    row.participants_encrypted = cipher().encrypt(form.participants)
    row.outcome_encrypted = cipher().encrypt(form.outcome) if form.outcome else None
    row.updated_at = utcnow()
    if evidence.unchanged(before, row):
        raise CaseworkInvalid([("participants", "Nothing was changed: correct a value, or leave the meeting as it is.")])
    evidence.after_change(session, viewer, row, row.student_id, reason)
    if was_held is not None and was_held != ((row.meeting_type, row.meets_on) if row.status == "held" else None):
        # Corrected date or type, or no longer held: the plan dates it set go back first, then the corrected
        # meeting (if still held) records its own.
        deadline_service.withdraw_meeting(session, viewer, row.id)
    _meeting_held(session, viewer, row, data, _today(today))
    return row


def remove_meeting(session: Session, viewer: Viewer, meeting_id: int, data: Mapping[str, str]) -> Meeting:
    """Remove a meeting recorded by mistake, softly: kept in the history with who, when and why."""
    row = _get(session, Meeting, meeting_id, "meeting")
    assert isinstance(row, Meeting)
    _remove(session, viewer, row, "meeting", data)
    if row.status == "held":
        # It did not happen after all: the plan dates it set go back, its completions are withdrawn (kept).
        deadline_service.withdraw_meeting(session, viewer, row.id)
    return row


def meetings_for(session: Session, student_id: int, removed: bool = False) -> list[MeetingView]:
    """The student's meetings, newest first: the current ones, or (``removed``) the ones removed by mistake."""
    rows = session.execute(select(Meeting, Person.name).outerjoin(Person, Person.id == Meeting.recorded_by_id)
                           .where(Meeting.student_id == student_id,
                                  Meeting.deleted_at.is_not(None) if removed else Meeting.deleted_at.is_(None))
                           .order_by(Meeting.meets_on.desc(), Meeting.id.desc())).all()
    return [MeetingView(m.id, m.meeting_type, m.meets_on, _text(m.participants_encrypted), m.notice_sent_on, m.status,
                        _text(m.outcome_encrypted), who, m.created_at, m.revision_no or 1, m.deleted_at)
            for m, who in rows]


# --------------------------------------------------------------------------------------------------- referrals


@dataclass(frozen=True)
class StatusChangeView:
    status: str
    note: str
    changed_by: str | None
    changed_at: dt.datetime


@dataclass(frozen=True)
class ReferralView:
    id: int
    referral_type: str
    referred_to: str
    reason: str
    referred_on: dt.date
    status: str
    status_changed_at: dt.datetime
    created_by: str | None
    created_at: dt.datetime
    history: list[StatusChangeView]


def create_referral(session: Session, viewer: Viewer, student_id: int, data: Mapping[str, str],
                    today: dt.date | None = None) -> Referral:
    casework_access.authorize(session, viewer, student_id, Action.EDIT_CASEWORK, "add referral")
    form = referral_input(data, _today(today))
    now = utcnow()
    row = Referral(student_id=student_id, referral_type=form.referral_type, referred_to=form.referred_to,
                   reason_encrypted=cipher().encrypt(form.reason), referred_on=form.referred_on, status="pending",
                   status_changed_at=now, created_by_id=viewer.person_id, created_at=now)
    session.add(row)
    session.flush()
    session.add(ReferralStatusChange(referral_id=row.id, status="pending", changed_by_id=viewer.person_id, changed_at=now))
    log.info("referral added id=%s student=%s actor=%s", row.id, student_id, viewer.person_id)
    return row


def change_referral(session: Session, viewer: Viewer, referral_id: int, data: Mapping[str, str]) -> Referral:
    row = _get(session, Referral, referral_id, "referral")
    assert isinstance(row, Referral)
    casework_access.authorize(session, viewer, row.student_id, Action.EDIT_CASEWORK, f"referral {row.id}: status")
    status, note = referral_change(row.status, data)
    now = utcnow()
    row.status, row.status_changed_at = status, now
    session.add(ReferralStatusChange(referral_id=row.id, status=status, changed_by_id=viewer.person_id, changed_at=now,
                                     note_encrypted=cipher().encrypt(note) if note else None))
    log.info("referral status id=%s status=%s actor=%s", row.id, status, viewer.person_id)
    return row


def referrals_for(session: Session, student_id: int) -> list[ReferralView]:
    rows = session.execute(select(Referral, Person.name).outerjoin(Person, Person.id == Referral.created_by_id)
                           .where(Referral.student_id == student_id)
                           .order_by(Referral.referred_on.desc(), Referral.id.desc())).all()
    history: dict[int, list[StatusChangeView]] = {}
    if rows:
        for ch, who in session.execute(
                select(ReferralStatusChange, Person.name).outerjoin(Person, Person.id == ReferralStatusChange.changed_by_id)
                .where(ReferralStatusChange.referral_id.in_([r.id for r, _ in rows]))
                .order_by(ReferralStatusChange.id)).all():
            history.setdefault(ch.referral_id, []).append(
                StatusChangeView(ch.status, _text(ch.note_encrypted), who, ch.changed_at))
    return [ReferralView(r.id, r.referral_type, r.referred_to, _text(r.reason_encrypted), r.referred_on, r.status,
                         r.status_changed_at, who, r.created_at, history.get(r.id, [])) for r, who in rows]


# ------------------------------------------------------------------------------------------------------ crisis


@dataclass(frozen=True)
class CrisisView:
    id: int
    occurred_on: dt.date
    visibility: str
    description: str | None
    """None while a restricted entry is not explicitly opened."""
    actions: str | None
    recorded_by: str | None
    created_at: dt.datetime


def create_crisis(session: Session, viewer: Viewer, student_id: int, data: Mapping[str, str],
                  today: dt.date | None = None) -> CrisisEntry:
    decision = casework_access.authorize(session, viewer, student_id, Action.EDIT_CASEWORK, "add crisis entry")
    form = crisis_input(data, _today(today), "restricted" in decision.note_tiers)
    row = CrisisEntry(student_id=student_id, occurred_on=form.occurred_on, visibility=form.visibility,
                      description_encrypted=cipher().encrypt(form.description),
                      actions_encrypted=cipher().encrypt(form.actions) if form.actions else None,
                      recorded_by_id=viewer.person_id)
    session.add(row)
    session.flush()
    log.info("crisis entry added id=%s student=%s actor=%s", row.id, student_id, viewer.person_id)
    return row


def open_crisis(session: Session, viewer: Viewer, entry_id: int) -> CrisisEntry:
    """The explicit, logged action that reveals one restricted crisis entry."""
    row = session.get(CrisisEntry, entry_id)
    if row is None:
        abort(404, description="There is no crisis entry with this id.")
    casework_access.authorize(session, viewer, row.student_id, Action.VIEW_CASEWORK, f"open crisis entry {row.id}")
    access.authorize(session, viewer, row.student_id, Action.VIEW_RESTRICTED, f"open crisis entry {row.id}")
    return row


def crisis_for(session: Session, student_id: int, decision: Decision, opened: int | None = None) -> list[CrisisView]:
    """Entries whose visibility is among the viewer's tiers (none at all without them); restricted text redacted
    unless ``opened``."""
    tiers = sorted(decision.note_tiers & {"restricted", "case_team"})
    if not tiers:
        return []
    rows = session.execute(select(CrisisEntry, Person.name).outerjoin(Person, Person.id == CrisisEntry.recorded_by_id)
                           .where(CrisisEntry.student_id == student_id, CrisisEntry.visibility.in_(tiers))
                           .order_by(CrisisEntry.occurred_on.desc(), CrisisEntry.id.desc())).all()
    out = []
    for c, who in rows:
        show = c.visibility != "restricted" or c.id == opened
        out.append(CrisisView(c.id, c.occurred_on, c.visibility, _text(c.description_encrypted) if show else None,
                              _text(c.actions_encrypted) if show else None, who, c.created_at))
    return out


# ---------------------------------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    """note | contact | meeting | referral | crisis | session"""
    day: dt.date
    title: str
    text: str | None
    """None when redacted (restricted note or crisis entry)."""
    who: str | None
    ref: int
    flags: tuple[str, ...] = ()
    at: dt.datetime | None = None

    @property
    def sort_key(self) -> tuple[dt.date, dt.datetime, int]:
        return (self.day, self.at or dt.datetime.min.replace(tzinfo=dt.UTC), self.ref)


def timeline(session: Session, viewer: Viewer, student_id: int, decision: Decision, limit: int = 500) -> list[TimelineEntry]:
    """Case notes (by the viewer's note tiers; restricted ones redacted), contacts, meetings, referrals, crisis
    entries (only for tiers that include them) and service sessions, newest first."""
    entries: list[TimelineEntry] = []
    for n in notes.visible_notes(session, viewer, student_id, decision):
        entries.append(TimelineEntry("note", n.recorded_on, notes.NOTE_TYPE_LABELS.get(n.note_type, n.note_type) + " note",
                                     n.body, n.author, n.id, (n.visibility,)))
    for c in contacts_for(session, student_id):
        flags = (c.direction,) + (("follow-up due",) if c.follow_up_due(clock.today()) else ())
        title = f"{METHOD_LABELS.get(c.method, c.method)} · {DIRECTION_LABELS.get(c.direction, c.direction)}"
        if c.contact_with:
            title += f" · {c.contact_with}"
        entries.append(TimelineEntry("contact", c.contacted_on, title, c.summary, c.recorded_by, c.id, flags,
                                     c.created_at))
    for m in meetings_for(session, student_id):
        entries.append(TimelineEntry("meeting", m.meets_on, f"{MEETING_LABELS.get(m.meeting_type, m.meeting_type)} · "
                                                            f"{MEETING_STATUS_LABELS.get(m.status, m.status)}",
                                     m.outcome or None, m.recorded_by, m.id, (m.status,), m.created_at))
    for r in referrals_for(session, student_id):
        entries.append(TimelineEntry("referral", r.referred_on,
                                     f"Referral: {REFERRAL_LABELS.get(r.referral_type, r.referral_type)} → {r.referred_to}"
                                     f" · {REFERRAL_STATUS_LABELS.get(r.status, r.status)}",
                                     r.reason, r.created_by, r.id, (r.status,), r.created_at))
    for e in crisis_for(session, student_id, decision):
        entries.append(TimelineEntry("crisis", e.occurred_on, "Crisis entry", e.description, e.recorded_by, e.id,
                                     (e.visibility,), e.created_at))
    for s, service_type, who in session.execute(
            select(ServiceSession, ServiceRequirement.service_type, Person.name)
            .join(ServiceRequirement, ServiceRequirement.id == ServiceSession.requirement_id)
            .outerjoin(Person, Person.id == ServiceSession.logged_by_id)
            .where(ServiceSession.student_id == student_id, ServiceSession.deleted_at.is_(None))
            .order_by(ServiceSession.held_on.desc(), ServiceSession.id.desc()).limit(limit)).all():
        entries.append(TimelineEntry("session", s.held_on, f"{SERVICE_LABELS.get(service_type, service_type)} "
                                                           f"{'make-up ' if s.kind == 'make_up' else ''}session · "
                                                           f"{s.minutes} min · "
                                                           f"{ATTENDANCE_LABELS.get(s.attendance, s.attendance)}",
                                     _text(s.note_encrypted) or None, who, s.id, (s.attendance,), s.created_at))
    entries.sort(key=lambda e: e.sort_key, reverse=True)
    return entries[:limit]

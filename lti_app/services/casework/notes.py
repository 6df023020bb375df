"""Case notes: bodies encrypted at rest, copy-on-write revisions, visibility tiers, restricted redaction.

Nothing is hard-deleted: an edit adds a revision, a retraction hides the note from lists but keeps it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import abort
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.access import Action, Decision
from lti_app.domain.vocab import NoteType, NoteVisibility
from lti_app.models import CaseNote, CaseNoteRevision, NoteDraft, Person
from lti_app.services.access import policy as access

MAX_NOTE_CHARS = 10_000
NOTE_TYPE_LABELS = {"observation": "Observation", "parent_contact": "Parent contact",
                    "academic_concern": "Academic concern", "behaviour": "Behavior", "other": "Other"}
TIER_LABELS = {"team": "Team (case manager and current teachers)",
               "case_team": "Case team (case managers and support staff only)",
               "restricted": "Restricted (only staff allowed to see restricted notes)"}


class NoteInvalid(ValueError):
    pass


@dataclass(frozen=True)
class NoteView:
    id: int
    note_type: str
    recorded_on: dt.date
    visibility: str
    author: str
    body: str | None
    """None when redacted (restricted note not explicitly opened)."""
    revision_no: int
    own: bool


def validate(note_type: str, recorded_on: str, body: str, visibility: str, decision: Decision) -> tuple[dt.date, str]:
    if note_type not in {t.value for t in NoteType}:
        raise NoteInvalid("Choose a note type.")
    if visibility not in {v.value for v in NoteVisibility}:
        raise NoteInvalid("Choose who may read the note.")
    if visibility == "restricted" and "restricted" not in decision.note_tiers:
        raise NoteInvalid("Only staff allowed to see restricted notes can write one. Choose team or case team.")
    if visibility not in decision.note_tiers:
        # A note is written only in a tier its author can read back: a teacher (tier "team") who wrote a "case team"
        # note could neither see nor correct it afterwards, and edits keep the author's own tier the same way.
        allowed = ", ".join(TIER_LABELS[t].split(" (")[0].lower() for t in ("team", "case_team", "restricted")
                            if t in decision.note_tiers)
        raise NoteInvalid(f"You can only write notes you can read back: choose {allowed or 'team'}.")
    try:
        day = dt.date.fromisoformat(recorded_on)
    except ValueError:
        raise NoteInvalid("Enter the date as YYYY-MM-DD.") from None
    if day > clock.today() + dt.timedelta(days=1):
        raise NoteInvalid("A note's date cannot be in the future.")
    text = body.strip()
    if not text:
        raise NoteInvalid("The note is empty.")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteInvalid(f"Notes are limited to {MAX_NOTE_CHARS:,} characters; this one has {len(text):,}.")
    return day, text


def create(session: Session, viewer: Viewer, student_id: int, note_type: str, recorded_on: str, body: str,
           visibility: str) -> CaseNote:
    decision = access.authorize(session, viewer, student_id, Action.CREATE_NOTE, "add note")
    day, text = validate(note_type, recorded_on, body, visibility, decision)
    encrypted = cipher().encrypt(text)
    note = CaseNote(student_id=student_id, author_id=viewer.person_id, note_type=note_type, recorded_on=day,
                    visibility=visibility, course_id=viewer.course_id, body_encrypted=encrypted, revision_no=1)
    session.add(note)
    session.flush()
    session.add(CaseNoteRevision(note_id=note.id, revision_no=1, body_encrypted=encrypted, note_type=note_type,
                                 visibility=visibility, recorded_on=day, edited_by_id=viewer.person_id))
    session.execute(delete(NoteDraft).where(NoteDraft.author_id == viewer.person_id, NoteDraft.student_id == student_id))
    return note


def edit(session: Session, viewer: Viewer, note_id: int, note_type: str, recorded_on: str, body: str,
         visibility: str, expected_revision: int) -> CaseNote:
    note = session.get(CaseNote, note_id)
    if note is None or note.author_id != viewer.person_id or note.retracted_at is not None:
        abort(404, description="There is no note of yours with this id to edit.")
    decision = access.authorize(session, viewer, note.student_id, Action.CREATE_NOTE, f"edit note {note.id}")
    if note.revision_no != expected_revision:
        raise NoteInvalid("This note was changed after you opened it. Reload to see the latest version.")
    day, text = validate(note_type, recorded_on, body, visibility, decision)
    encrypted = cipher().encrypt(text)
    note.revision_no += 1
    note.note_type, note.recorded_on, note.visibility, note.body_encrypted = note_type, day, visibility, encrypted
    note.updated_at = utcnow()
    session.add(CaseNoteRevision(note_id=note.id, revision_no=note.revision_no, body_encrypted=encrypted,
                                 note_type=note_type, visibility=visibility, recorded_on=day,
                                 edited_by_id=viewer.person_id))
    return note


def visible_notes(session: Session, viewer: Viewer, student_id: int, decision: Decision,
                  opened: int | None = None) -> list[NoteView]:
    """Notes this viewer's tiers allow, newest first. Restricted bodies stay redacted unless ``opened``."""
    rows = session.execute(
        select(CaseNote, Person.name).outerjoin(Person, Person.id == CaseNote.author_id)
        .where(CaseNote.student_id == student_id, CaseNote.retracted_at.is_(None),
               CaseNote.visibility.in_(sorted(decision.note_tiers)))
        .order_by(CaseNote.recorded_on.desc(), CaseNote.id.desc())).all()
    out = []
    for note, author in rows:
        show = note.visibility != "restricted" or note.id == opened
        out.append(NoteView(note.id, note.note_type, note.recorded_on, note.visibility, author or "—",
                            cipher().decrypt(note.body_encrypted) if show else None, note.revision_no,
                            note.author_id == viewer.person_id))
    return out


def open_restricted(session: Session, viewer: Viewer, note_id: int) -> CaseNote:
    """The explicit, logged action that reveals one restricted note."""
    note = session.get(CaseNote, note_id)
    if note is None or note.visibility != "restricted":
        abort(404, description="There is no restricted note with this id.")
    access.authorize(session, viewer, note.student_id, Action.VIEW_RESTRICTED, f"open restricted note {note.id}")
    return note


def save_draft(session: Session, viewer: Viewer, student_id: int, body: str) -> None:
    access.authorize(session, viewer, student_id, Action.CREATE_NOTE, "save note draft")
    body = body[:MAX_NOTE_CHARS]
    draft = session.scalars(select(NoteDraft).where(NoteDraft.author_id == viewer.person_id,
                                                    NoteDraft.student_id == student_id)).one_or_none()
    if not body.strip():
        if draft is not None:
            session.delete(draft)
        return
    if draft is None:
        session.add(NoteDraft(author_id=viewer.person_id, student_id=student_id, body_encrypted=cipher().encrypt(body)))
    else:
        draft.body_encrypted, draft.updated_at = cipher().encrypt(body), utcnow()


def load_draft(session: Session, viewer: Viewer, student_id: int) -> str:
    draft = session.scalars(select(NoteDraft).where(NoteDraft.author_id == viewer.person_id,
                                                    NoteDraft.student_id == student_id)).one_or_none()
    return cipher().decrypt(draft.body_encrypted) if draft else ""

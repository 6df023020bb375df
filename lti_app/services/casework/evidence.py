"""Evidence is never destroyed: progress data points, service sessions, guardian contacts and meetings are corrected
by new revisions (who, when, why) and removed only softly, with a reason and a confirmation.

The pattern is the case notes' (``CaseNoteRevision``, copy-on-write), generalised to four kinds of entry in one
table, ``evidence_revisions``: each revision holds the entry's whole state after the change as encrypted JSON. The
entry's row keeps its current state (so every reader, the minutes and the charts stay simple) plus ``revision_no``
and ``deleted_at``. Revision 1 is the entry as first recorded; it is written from the stored row, with its
recorder and recording time, at the first correction or removal, so logging a session stays one insert.

The record export reads ``evidence_revisions`` with the rest of the casework (FERPA 34 CFR 99.10: the parent may
inspect the history too); retention purges it with the student's detail (it holds ``student_id``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.crypto import DataKeyError, cipher
from lti_app.db import utcnow
from lti_app.models import Contact, EvidenceRevision, Meeting, Person, ProgressPoint, ServiceSession

log = logging.getLogger(__name__)

ENTITY_LABELS = {"progress_point": "data point", "service_session": "service session", "contact": "guardian contact",
                 "meeting": "meeting"}
FIELD_LABELS = {"measured_on": "date", "value": "value", "note": "note", "held_on": "date", "minutes": "minutes",
                "attendance": "attendance", "kind": "kind", "contacted_on": "date", "method": "method",
                "direction": "direction", "contact_with": "with whom", "summary": "summary",
                "follow_up_on": "follow-up date", "meeting_type": "type", "meets_on": "date",
                "participants": "participants", "notice_sent_on": "notice sent on", "status": "status",
                "outcome": "outcome"}
ACTION_LABELS = {"create": "recorded", "edit": "corrected", "remove": "removed"}

Evidence = ProgressPoint | ServiceSession | Contact | Meeting


def _text(token: bytes | None) -> str:
    if not token:
        return ""
    try:
        return cipher().decrypt(token)
    except DataKeyError:
        log.error("evidence: a ciphertext could not be decrypted with the configured data keys")
        return "[unreadable with the current data keys]"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 42.500 -> "42.5", 500.000 -> "500" (as the chart shows it)
    return value


def entity_of(row: Evidence) -> str:
    return {ProgressPoint: "progress_point", ServiceSession: "service_session", Contact: "contact",
            Meeting: "meeting"}[type(row)]


def state_of(row: Evidence) -> dict[str, Any]:
    """The entry's fields as plain JSON values (free text decrypted: the revision encrypts the whole state)."""
    if isinstance(row, ProgressPoint):
        return {"measured_on": _plain(row.measured_on), "value": _plain(row.value), "note": _text(row.note_encrypted)}
    if isinstance(row, ServiceSession):
        return {"held_on": _plain(row.held_on), "minutes": row.minutes, "attendance": row.attendance,
                "kind": row.kind or "session", "note": _text(row.note_encrypted)}
    if isinstance(row, Contact):
        return {"contacted_on": _plain(row.contacted_on), "method": row.method, "direction": row.direction,
                "contact_with": row.contact_with, "summary": _text(row.summary_encrypted),
                "follow_up_on": _plain(row.follow_up_on)}
    return {"meeting_type": row.meeting_type, "meets_on": _plain(row.meets_on), "participants":
            _text(row.participants_encrypted), "notice_sent_on": _plain(row.notice_sent_on), "status": row.status,
            "outcome": _text(row.outcome_encrypted)}


def _recorder(row: Evidence) -> tuple[int | None, dt.datetime | None]:
    if isinstance(row, ProgressPoint):
        return row.recorded_by_id, row.recorded_at
    if isinstance(row, ServiceSession):
        return row.logged_by_id, row.created_at
    return row.recorded_by_id, row.created_at


def before_change(session: Session, row: Evidence, student_id: int) -> dict[str, Any]:
    """Call before changing ``row``: writes revision 1 (the entry as first recorded) when the entry has no
    revision yet, and returns the state before the change."""
    state = state_of(row)
    if (row.revision_no or 1) == 1:
        by, at = _recorder(row)
        session.add(EvidenceRevision(student_id=student_id, entity=entity_of(row), entity_id=row.id, revision_no=1,
                                     action="create", state_encrypted=cipher().encrypt(json.dumps(state)),
                                     edited_by_id=by, edited_at=at or utcnow()))
        row.revision_no = 1
    return state


def after_change(session: Session, viewer: Viewer, row: Evidence, student_id: int, reason: str,
                 action: str = "edit") -> EvidenceRevision:
    """Call after changing ``row`` (or before stamping ``deleted_at`` for a removal): the new revision with who,
    when and why."""
    now = utcnow()
    row.revision_no = (row.revision_no or 1) + 1
    if action == "remove":
        row.deleted_at = now
    revision = EvidenceRevision(student_id=student_id, entity=entity_of(row), entity_id=row.id,
                                revision_no=row.revision_no, action=action,
                                state_encrypted=cipher().encrypt(json.dumps(state_of(row))),
                                reason_encrypted=cipher().encrypt(reason), edited_by_id=viewer.person_id, edited_at=now)
    session.add(revision)
    log.info("evidence %s entity=%s id=%s revision=%s actor=%s", action, revision.entity, row.id, row.revision_no,
             viewer.person_id)
    return revision


def unchanged(before: Mapping[str, Any], row: Evidence) -> bool:
    return dict(before) == state_of(row)


@dataclass(frozen=True)
class RevisionView:
    revision_no: int
    action: str
    state: dict[str, Any]
    reason: str
    by: str | None
    at: dt.datetime
    changed: tuple[str, ...]
    """Labels of the fields that differ from the revision before (empty for the first and for a removal)."""

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


def history(session: Session, student_id: int, entities: Iterable[str] | None = None
            ) -> dict[tuple[str, int], list[RevisionView]]:
    """Every revision of the student's evidence (one query), oldest first per entry, keyed (entity, entry id)."""
    query = (select(EvidenceRevision, Person.name).outerjoin(Person, Person.id == EvidenceRevision.edited_by_id)
             .where(EvidenceRevision.student_id == student_id))
    if entities is not None:
        query = query.where(EvidenceRevision.entity.in_(list(entities)))
    out: dict[tuple[str, int], list[RevisionView]] = {}
    for rev, who in session.execute(query.order_by(EvidenceRevision.entity, EvidenceRevision.entity_id,
                                                   EvidenceRevision.revision_no)).all():
        try:
            state = json.loads(_text(rev.state_encrypted) or "{}")
        except ValueError:
            state = {}
        key = (rev.entity, rev.entity_id)
        earlier = out.setdefault(key, [])
        previous = earlier[-1].state if earlier else None
        changed = tuple(FIELD_LABELS.get(k, k) for k in state if previous is not None and rev.action == "edit"
                        and previous.get(k) != state.get(k))
        earlier.append(RevisionView(rev.revision_no, rev.action, state, _text(rev.reason_encrypted), who,
                                    rev.edited_at, changed))
    return out

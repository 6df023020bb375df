"""The in-tool inbox: a person's alerts, newest first, with an unread count for the header.

An alert names a student, so showing it is a read of that student's record: each student shown goes through the
access policy and into the access log (one row per student per page), and an alert about a student the person may
no longer see (a teacher whose enrollment ended) is shown without the name or the link."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flask import abort
from sqlalchemy import Integer, String, bindparam, cast, func, null, select, union_all, update
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.db import utcnow
from lti_app.domain import alerts as rules
from lti_app.domain.access import Action, decide
from lti_app.models import Alert, RoleGrant, Section, Student
from lti_app.services.access import policy as access
from lti_app.services.access import roles
from lti_app.services.alerts import delivery, detect

log = logging.getLogger(__name__)

PAGE_SIZE = 100
HIDDEN = "An alert about a student whose record you may no longer see."


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    title: str
    lines: tuple[str, ...]
    at: dt.datetime
    """District time."""
    read: bool
    student_id: int | None
    hidden: bool

    @property
    def kind_label(self) -> str:
        return {"schedule_change": "Schedule change", "deadline": "Deadlines",
                "question_answered": "Question answered", "lms_gap": "LMS gap"}.get(self.kind, self.kind)


def unread_count(session: Session, person_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Alert).where(
        Alert.recipient_id == person_id, Alert.read_at.is_(None))) or 0)


_HEADER_FACTS = union_all(
    select(RoleGrant.role.label("role"), cast(null(), Integer).label("n")).where(
        RoleGrant.person_id == bindparam("person_id"), RoleGrant.revoked_at.is_(None)),
    select(cast(null(), String), func.count()).select_from(Alert).where(
        Alert.recipient_id == bindparam("person_id"), Alert.read_at.is_(None)))
"""Built once (every page's header runs it; building and keying it per request cost as much as running it)."""


def header_facts(session: Session, person_id: int) -> tuple[frozenset[str], int]:
    """What every page header needs, in one round trip (issue #10): the person's active role grants (the rules of
    the header's links, as ``roles.grant_roles``) and their unread alerts (``unread_count``).

    One ``UNION ALL``: a row per active grant with a null count, then one row with a null role and the count."""
    roles_held: set[str] = set()
    count = 0
    for role, n in session.connection().execute(_HEADER_FACTS, {"person_id": person_id}):
        if role is None:
            count = int(n or 0)
        else:
            roles_held.add(role)
    return frozenset(roles_held), count


def _visible(session: Session, viewer: Viewer, student_ids: Iterable[int], context: str) -> set[int]:
    """The students this person may see now, each decision written to the access log."""
    allowed: set[int] = set()
    ids = sorted(set(student_ids))
    if not ids:
        return allowed
    actor = access.actor_facts(session, viewer)  # once per page, not once per student
    for student_id in ids:
        if session.get(Student, student_id) is None:
            continue
        decision = decide(actor, access.student_facts(session, student_id), Action.VIEW_RECORD)
        access.record(session, viewer, student_id, Action.VIEW_RECORD.value, decision.allowed, decision.basis, context)
        if decision.allowed:
            allowed.add(student_id)
    return allowed


def _line_students(alert: Alert) -> set[int]:
    return {int(line[1]) for line in (alert.lines or []) if isinstance(line, list) and len(line) > 1
            and isinstance(line[1], int)}


def list_alerts(session: Session, viewer: Viewer, unread_only: bool = False) -> list[AlertView]:
    stmt = select(Alert).where(Alert.recipient_id == viewer.person_id)
    if unread_only:
        stmt = stmt.where(Alert.read_at.is_(None))
    rows = list(session.scalars(stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(PAGE_SIZE)))
    students = {a.student_id for a in rows if a.student_id} | {s for a in rows for s in _line_students(a)}
    allowed = _visible(session, viewer, students, "alerts inbox")
    live = _live_acknowledgements(session, [a for a in rows if a.student_id in allowed])
    out = []
    for a in rows:
        hidden = a.student_id is not None and a.student_id not in allowed
        lines = tuple(str(line[0]) for line in (a.lines or [])
                      if isinstance(line, list) and line and (len(line) < 2 or line[1] is None or line[1] in allowed))
        if a.id in live:
            lines = (live[a.id],)
        out.append(AlertView(a.id, a.kind, HIDDEN if hidden else a.title, () if hidden else lines,
                             clock.local(a.created_at), a.read_at is not None, None if hidden else a.student_id,
                             hidden))
    return out


def _live_acknowledgements(session: Session, rows: list[Alert]) -> dict[int, str]:
    """For "joined" alerts: who has acknowledged *now* (the stored line is as of the change, and is what e-mail
    said); the case manager follows up on what is still open."""
    joined = [a for a in rows if a.kind == rules.AlertKind.SCHEDULE_CHANGE.value and a.dedupe_key.endswith(":joined")
              and a.student_id is not None and a.course_id is not None and a.section_id is not None]
    if not joined:
        return {}
    wide = {sid: lms == "" for sid, lms in session.execute(
        select(Section.id, Section.lms_section_id).where(Section.id.in_({a.section_id for a in joined})))}
    keys = {a.id: (int(a.student_id or 0), rules.Placement(int(a.course_id or 0), int(a.section_id or 0),
                                                           wide.get(a.section_id or 0, False)))
            for a in joined if a.section_id in wide}
    status = detect.acknowledgement_status(session, set(keys.values()))
    return {alert_id: status[key] for alert_id, key in keys.items()}


def mark_read(session: Session, viewer: Viewer, alert_ids: list[int] | None) -> int:
    """Mark the given alerts (None: all) of this person read. Others' alerts are never touched."""
    stmt = update(Alert).where(Alert.recipient_id == viewer.person_id, Alert.read_at.is_(None))
    if alert_ids is not None:
        stmt = stmt.where(Alert.id.in_(alert_ids))
    result = session.execute(stmt.values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def open_alert(session: Session, viewer: Viewer, alert_id: int) -> tuple[str, dict[str, object]]:
    """Mark one alert read and say where it leads: (endpoint, values). 404 for someone else's alert."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.recipient_id != viewer.person_id:
        abort(404, description="There is no alert for you with this id.")
    if alert.read_at is None:
        alert.read_at = utcnow()
    if alert.kind == rules.AlertKind.DEADLINE.value:
        return "deadlines.caseload_deadlines", {}
    if alert.student_id is None:
        return "alerts.inbox", {}
    if alert.kind == rules.AlertKind.SCHEDULE_CHANGE.value and roles.is_support_staff(session, viewer.person_id):
        return "workspace.student", {"student_id": alert.student_id}
    return "panels.student", {"student_id": alert.student_id}


# --- preferences ------------------------------------------------------------------------------------------------

class PreferencesInvalid(ValueError):
    pass


def read_preferences(session: Session, person_id: int) -> delivery.Prefs:
    return delivery.preferences(session, [person_id])[person_id]


def save_preferences(session: Session, viewer: Viewer, form: dict[str, str]) -> None:
    """Validate the whole form before writing anything (a bad value is a 400 with a reason, nothing saved)."""
    modes = {m.value for m in rules.EmailMode}
    channels = {c.value for c in rules.Channel}
    mode = form.get("email_mode", "")
    if mode not in modes:
        raise PreferencesInvalid("Choose how e-mail is sent: immediately or once a day.")
    chosen: dict[str, str] = {}
    for kind in rules.CHOOSABLE_KINDS:
        value = form.get(kind.value, "")
        if value not in channels:
            raise PreferencesInvalid(f"Choose where {rules.KIND_LABELS[kind].lower()} go: by e-mail and in the "
                                     "inbox, in the inbox only, or not at all.")
        chosen[kind.value] = value
    row = delivery.preference_row(session, viewer.person_id)
    row.email_mode = mode
    for kind_name, value in chosen.items():
        setattr(row, kind_name, value)
    log.info("alerts: person %s changed alert preferences", viewer.person_id)


"""The two logs administrators read: the district-wide access log (every read of a student record, from
``AccessEvent``, written by ``services.access``) and the administrators' own change log (``AdminEvent``: grants,
imports, purges, deployments).

Both are append-only. The access log is the record of access IDEA 34 CFR 300.614 asks for and backs the FERPA
34 CFR 99.32 record of requests; the change log is how a district shows who changed who may see records.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from lti_app import clock
from lti_app.ids import parse_id
from lti_app.models import AccessEvent, AdminEvent, Person, Student

log = logging.getLogger(__name__)
PAGE_SIZE = 50
S = TypeVar("S", bound=Select)  # type: ignore[type-arg]


def record_admin(session: Session, actor_id: int | None, via: str, action: str, *, target_type: str = "",
                 target_id: int | None = None, summary: str = "", details: Mapping[str, Any] | None = None) -> AdminEvent:
    """Add one change-log row to the caller's transaction (it commits with the change it describes)."""
    event = AdminEvent(actor_id=actor_id, via=via, action=action, target_type=target_type, target_id=target_id,
                       summary=summary[:500], details=dict(details or {}))
    session.add(event)
    log.info("admin change action=%s target=%s:%s actor=%s via=%s", action, target_type, target_id, actor_id, via)
    return event


class FilterInvalid(ValueError):
    """A filter value the log cannot use; the message says which and how to write it."""


@dataclass(frozen=True)
class AccessFilter:
    """Filters of the district-wide access log. Text filters match names (or a SIS id / #id for students)."""

    student: str = ""
    actor: str = ""
    action: str = ""
    outcome: str = ""
    """"" (all) | "allowed" | "refused"."""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    """Inclusive, in the district's days (``CASELOAD_TIMEZONE``)."""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AccessFilter:
        """Build from query-string values, refusing what cannot be used (never a 500 for a typo)."""

        def day(name: str, label: str) -> dt.date | None:
            raw = (args.get(name) or "").strip()
            if not raw:
                return None
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                raise FilterInvalid(f"{label} must be a date written YYYY-MM-DD, not {raw[:30]!r}.") from None

        outcome = (args.get("outcome") or "").strip()
        if outcome not in ("", "allowed", "refused"):
            raise FilterInvalid("Outcome must be all, allowed or refused.")
        flt = cls(student=(args.get("student") or "").strip()[:100], actor=(args.get("actor") or "").strip()[:100],
                  action=(args.get("action") or "").strip()[:30], outcome=outcome,
                  date_from=day("from", "The 'from' date"), date_to=day("to", "The 'to' date"))
        if flt.date_from and flt.date_to and flt.date_from > flt.date_to:
            raise FilterInvalid("The 'from' date is after the 'to' date.")
        return flt

    def as_args(self) -> dict[str, str]:
        out = {"student": self.student, "actor": self.actor, "action": self.action, "outcome": self.outcome,
               "from": self.date_from.isoformat() if self.date_from else "",
               "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class AccessRow:
    id: int
    at: dt.datetime
    actor_id: int | None
    actor: str | None
    student_id: int | None
    student: str | None
    action: str
    allowed: bool
    basis: str
    context: str


@dataclass(frozen=True)
class Page:
    rows: tuple[Any, ...]
    page: int
    total: int
    page_size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(stmt: S, flt: AccessFilter, actor: Any, student: Any) -> S:
    if flt.student:
        if flt.student.startswith("#") and (student_id := parse_id(flt.student[1:])) is not None:
            stmt = stmt.where(AccessEvent.student_id == student_id)
        else:
            pattern = _like(flt.student)
            full = func.lower(student.given_name + " " + student.family_name)
            stmt = stmt.where(or_(full.like(pattern, escape="\\"),
                                  func.lower(func.coalesce(student.preferred_name, "")).like(pattern, escape="\\"),
                                  func.lower(func.coalesce(student.sis_id, "")) == flt.student.lower()))
    if flt.actor:
        stmt = stmt.where(func.lower(actor.name).like(_like(flt.actor), escape="\\"))
    if flt.action:
        stmt = stmt.where(AccessEvent.action == flt.action)
    if flt.outcome:
        stmt = stmt.where(AccessEvent.allowed.is_(flt.outcome == "allowed"))
    if flt.date_from:
        stmt = stmt.where(AccessEvent.at >= clock.day_start(flt.date_from))
    if flt.date_to:
        stmt = stmt.where(AccessEvent.at < clock.day_start(flt.date_to + dt.timedelta(days=1)))
    return stmt


def access_log(session: Session, flt: AccessFilter, page: int = 1, page_size: int = PAGE_SIZE) -> Page:
    """One page of the district-wide access log, newest first, with the total that matches the filters."""
    page = max(1, page)
    actor, student = aliased(Person), aliased(Student)
    base = select(AccessEvent.id).outerjoin(actor, actor.id == AccessEvent.actor_id).outerjoin(
        student, student.id == AccessEvent.student_id)
    total = session.scalar(select(func.count()).select_from(_filtered(base, flt, actor, student).subquery())) or 0
    stmt = (select(AccessEvent, actor.name, student.given_name, student.preferred_name, student.family_name)
            .outerjoin(actor, actor.id == AccessEvent.actor_id).outerjoin(student, student.id == AccessEvent.student_id))
    stmt = _filtered(stmt, flt, actor, student).order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
    stmt = stmt.limit(page_size).offset((page - 1) * page_size)
    rows = tuple(
        AccessRow(r[0].id, r[0].at, r[0].actor_id, r[1], r[0].student_id,
                  f"{r[3] or r[2]} {r[4]}" if r[2] is not None else None, r[0].action, r[0].allowed, r[0].basis,
                  r[0].context)
        for r in session.execute(stmt))
    return Page(rows, page, int(total), page_size)


def access_actions(session: Session) -> list[str]:
    """The action names present in the log (for the filter's choices)."""
    return sorted(a for a in session.scalars(select(AccessEvent.action).distinct()) if a)


@dataclass(frozen=True)
class ChangeRow:
    id: int
    at: dt.datetime
    actor: str | None
    via: str
    action: str
    target_type: str
    target_id: int | None
    summary: str
    details: dict[str, Any]


def changes(session: Session, action_prefix: str = "", page: int = 1, page_size: int = PAGE_SIZE) -> Page:
    """The administrators' change log, newest first; ``action_prefix`` "import." lists imports only, etc."""
    page = max(1, page)
    stmt = select(AdminEvent, Person.name).outerjoin(Person, Person.id == AdminEvent.actor_id)
    count = select(func.count(AdminEvent.id))
    if action_prefix:
        stmt = stmt.where(AdminEvent.action.startswith(action_prefix))
        count = count.where(AdminEvent.action.startswith(action_prefix))
    total = session.scalar(count) or 0
    stmt = stmt.order_by(AdminEvent.at.desc(), AdminEvent.id.desc()).limit(page_size).offset((page - 1) * page_size)
    rows = tuple(ChangeRow(e.id, e.at, name, e.via, e.action, e.target_type, e.target_id, e.summary, dict(e.details))
                 for e, name in session.execute(stmt))
    return Page(rows, page, int(total), page_size)

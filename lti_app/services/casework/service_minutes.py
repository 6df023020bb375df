"""Services on a plan and their sessions: minutes delivered against required per week or month, shortfalls and
make-up minutes owed (rules in ``domain/service_minutes.py``), and the caseload home's shortfall column in two
aggregate queries whatever the caseload size."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain import service_minutes as rules
from lti_app.domain.access import Action
from lti_app.domain.casework_rules import CaseworkInvalid, requirement_input, session_input
from lti_app.models import Person, Plan, RoleGrant, ServiceRequirement, ServiceSession
from lti_app.services.casework import casework_access

log = logging.getLogger(__name__)

SERVICE_LABELS = {"speech_language": "Speech-language", "occupational_therapy": "Occupational therapy",
                  "physical_therapy": "Physical therapy", "counseling": "Counseling",
                  "specialized_instruction": "Specialized instruction", "tutoring": "Tutoring", "other": "Other service"}
ATTENDANCE_LABELS = {"delivered": "Delivered", "student_absent": "Student absent",
                     "provider_absent": "Provider absent (make-up owed)"}
PERIOD_LABELS = {"week": "per week", "month": "per month"}


@dataclass(frozen=True)
class SessionView:
    id: int
    held_on: dt.date
    minutes: int
    attendance: str
    note: str | None
    logged_by: str | None


@dataclass(frozen=True)
class ServiceView:
    id: int
    service_type: str
    minutes: int
    period: str
    provider: str
    provider_id: int | None
    setting: str
    starts_on: dt.date
    ends_on: dt.date | None
    plan_type: str | None
    history: list[rules.PeriodMinutes]
    """Newest period first (the current one, then completed ones)."""
    sessions: list[SessionView]
    """The most recent sessions, newest first."""
    active: bool

    @property
    def label(self) -> str:
        return SERVICE_LABELS.get(self.service_type, self.service_type)

    @property
    def last_completed(self) -> rules.PeriodMinutes | None:
        return next((p for p in self.history if p.complete), None)

    @property
    def short(self) -> bool:
        last = self.last_completed
        return bool(last and last.short)

    @property
    def make_up_owed(self) -> int:
        return sum(p.make_up_owed for p in self.history if p.complete)


@dataclass(frozen=True)
class ServiceStatus:
    """The caseload home's column: services active, how many were short in their last completed period, by how many
    minutes, and make-up minutes owed there."""

    services: int = 0
    short: int = 0
    minutes_short: int = 0
    make_up_owed: int = 0


def services_for(session: Session, student_id: int, today: dt.date, periods: int = 6,
                 recent_sessions: int = 10) -> list[ServiceView]:
    """Every service of the student (active first) with its period history and recent sessions: three queries."""
    rows = session.execute(
        select(ServiceRequirement, Person.name, Plan.plan_type)
        .outerjoin(Person, Person.id == ServiceRequirement.provider_id)
        .outerjoin(Plan, Plan.id == ServiceRequirement.plan_id)
        .where(ServiceRequirement.student_id == student_id)
        .order_by(ServiceRequirement.starts_on.desc(), ServiceRequirement.id.desc())).all()
    if not rows:
        return []
    oldest = min(rules.period_bounds(today, r.period)[0] for r, _, _ in rows) - dt.timedelta(days=31 * periods)
    sessions = session.execute(
        select(ServiceSession, Person.name).outerjoin(Person, Person.id == ServiceSession.logged_by_id)
        .where(ServiceSession.student_id == student_id, ServiceSession.held_on >= oldest)
        .order_by(ServiceSession.held_on.desc(), ServiceSession.id.desc())).all()
    by_req: dict[int, list[tuple[ServiceSession, str | None]]] = {}
    for s, who in sessions:
        by_req.setdefault(s.requirement_id, []).append((s, who))
    out = []
    for req, provider, plan_type in rows:
        mine = by_req.get(req.id, [])
        facts = [rules.SessionFact(s.held_on, s.minutes, s.attendance) for s, _ in mine]
        views = [SessionView(s.id, s.held_on, s.minutes, s.attendance,
                             cipher().decrypt(s.note_encrypted) if s.note_encrypted else None, who)
                 for s, who in mine[:recent_sessions]]
        active = req.starts_on <= today and (req.ends_on is None or req.ends_on >= today)
        out.append(ServiceView(req.id, req.service_type, req.minutes, req.period,
                               provider or req.provider_name or "—", req.provider_id, req.setting, req.starts_on,
                               req.ends_on, plan_type,
                               rules.history(req.minutes, req.period, req.starts_on, req.ends_on, facts, today, periods),
                               views, active))
    out.sort(key=lambda v: not v.active)
    return out


def shortfalls(session: Session, student_ids: Sequence[int], today: dt.date) -> dict[int, ServiceStatus]:
    """Per student: the services active in their last completed period and which of those fell short. Two queries:
    the requirements, and the delivered/provider-absent minutes of every requirement in its own last period."""
    if not student_ids:
        return {}
    week = rules.last_completed(today, "week")
    month = rules.last_completed(today, "month")
    window = {"week": week, "month": month}
    in_window = or_(and_(ServiceRequirement.period == "week", ServiceRequirement.starts_on <= week[1],
                         or_(ServiceRequirement.ends_on.is_(None), ServiceRequirement.ends_on >= week[0])),
                    and_(ServiceRequirement.period == "month", ServiceRequirement.starts_on <= month[1],
                         or_(ServiceRequirement.ends_on.is_(None), ServiceRequirement.ends_on >= month[0])))
    reqs = session.execute(
        select(ServiceRequirement.id, ServiceRequirement.student_id, ServiceRequirement.minutes,
               ServiceRequirement.period, ServiceRequirement.starts_on, ServiceRequirement.ends_on)
        .where(ServiceRequirement.student_id.in_(list(student_ids)), in_window)).all()
    if not reqs:
        return {}
    sums = {rid: (int(d or 0), int(p or 0)) for rid, d, p in session.execute(
        select(ServiceSession.requirement_id,
               func.sum(_minutes_if("delivered")), func.sum(_minutes_if("provider_absent")))
        .join(ServiceRequirement, ServiceRequirement.id == ServiceSession.requirement_id)
        .where(ServiceSession.student_id.in_(list(student_ids)), in_window,
               or_(and_(ServiceRequirement.period == "week", ServiceSession.held_on.between(*week)),
                   and_(ServiceRequirement.period == "month", ServiceSession.held_on.between(*month))))
        .group_by(ServiceSession.requirement_id)).all()}
    out: dict[int, ServiceStatus] = {}
    for rid, sid, minutes, period, starts_on, ends_on in reqs:
        start, end = window[period]
        required = rules.required_minutes(minutes, start, end, starts_on, ends_on)
        got, provider_absent = sums.get(rid, (0, 0))
        figures = rules.PeriodMinutes(start, end, required, got, 0, provider_absent, True)
        cur = out.get(sid, ServiceStatus())
        out[sid] = ServiceStatus(cur.services + 1, cur.short + int(figures.short), cur.minutes_short + figures.missing,
                                 cur.make_up_owed + figures.make_up_owed)
    return out


def _minutes_if(attendance: str) -> Any:
    return case((ServiceSession.attendance == attendance, ServiceSession.minutes), else_=0)


def providers(session: Session) -> list[tuple[int, str]]:
    """Staff who may be named as providers: active provider and counselor grants (and case managers)."""
    rows = session.execute(
        select(Person.id, Person.name).join(RoleGrant, RoleGrant.person_id == Person.id)
        .where(RoleGrant.revoked_at.is_(None), RoleGrant.role.in_(["provider", "counselor", "case_manager"]))
        .distinct().order_by(Person.name)).all()
    return [(pid, name or f"#{pid}") for pid, name in rows]


def add_requirement(session: Session, viewer: Viewer, student_id: int, data: Mapping[str, str]) -> ServiceRequirement:
    casework_access.authorize(session, viewer, student_id, Action.EDIT_CASEWORK, "add service")
    form = requirement_input(data)
    problems = []
    if form.provider_id is not None and session.scalar(
            select(Person.id).where(Person.id == form.provider_id, Person.kind == "staff")) is None:
        problems.append(("provider_id", "Choose the provider from the list."))
    if form.plan_id is not None and session.scalar(
            select(Plan.id).where(Plan.id == form.plan_id, Plan.student_id == student_id)) is None:
        problems.append(("plan_id", "Choose one of this student's plans."))
    if problems:
        raise CaseworkInvalid(problems)
    req = ServiceRequirement(student_id=student_id, plan_id=form.plan_id, service_type=form.service_type,
                             minutes=form.minutes, period=form.period, provider_id=form.provider_id,
                             provider_name=form.provider_name or None, setting=form.setting, starts_on=form.starts_on,
                             ends_on=form.ends_on, created_by_id=viewer.person_id)
    session.add(req)
    session.flush()
    log.info("service added id=%s student=%s actor=%s", req.id, student_id, viewer.person_id)
    return req


def end_requirement(session: Session, viewer: Viewer, requirement_id: int, data: Mapping[str, str]) -> ServiceRequirement:
    """Set (or change) the last day of a service; sessions after it must not exist."""
    req = _requirement(session, viewer, requirement_id)
    casework_access.authorize(session, viewer, req.student_id, Action.EDIT_CASEWORK, f"end service {req.id}")
    raw = (data.get("ends_on") or "").strip()
    try:
        ends_on = dt.date.fromisoformat(raw)
    except ValueError:
        raise CaseworkInvalid([("ends_on", "Enter the service's last day as YYYY-MM-DD.")]) from None
    if ends_on < req.starts_on:
        raise CaseworkInvalid([("ends_on", f"The last day ({ends_on.isoformat()}) is before the service starts "
                                           f"({req.starts_on.isoformat()}).")])
    later = session.scalar(select(func.max(ServiceSession.held_on)).where(ServiceSession.requirement_id == req.id))
    if later is not None and later > ends_on:
        raise CaseworkInvalid([("ends_on", f"A session was logged on {later.isoformat()}, after that day.")])
    req.ends_on, req.updated_at = ends_on, utcnow()
    return req


def _requirement(session: Session, viewer: Viewer, requirement_id: int) -> ServiceRequirement:
    from flask import abort

    req = session.get(ServiceRequirement, requirement_id)
    if req is None:
        abort(404, description="There is no service with this id.")
    return req


def log_session(session: Session, viewer: Viewer, requirement_id: int, data: Mapping[str, str],
                today: dt.date | None = None) -> ServiceSession:
    """The case manager, or the provider of this very service, logs one session."""
    req = _requirement(session, viewer, requirement_id)
    decision = casework_access.authorize(session, viewer, req.student_id, Action.LOG_SERVICE,
                                         f"log session of service {req.id}")
    if decision.relationship != "case_manager" and req.provider_id != viewer.person_id:
        session.rollback()
        casework_access.refuse_not_provider(session, viewer, req.student_id, req.id)
    form = session_input(data, today or clock.today(), req.starts_on, req.ends_on)
    row = ServiceSession(requirement_id=req.id, student_id=req.student_id, held_on=form.held_on, minutes=form.minutes,
                         attendance=form.attendance, note_encrypted=cipher().encrypt(form.note) if form.note else None,
                         logged_by_id=viewer.person_id)
    session.add(row)
    session.flush()
    log.info("service session logged id=%s service=%s actor=%s", row.id, req.id, viewer.person_id)
    return row

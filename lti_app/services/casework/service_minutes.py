"""Services on a plan and their sessions: minutes delivered against required per week or month, the running ledger
of minutes owed from each service's start (rules in ``domain/service_minutes.py``), make-up sessions, corrections
and soft removals of sessions (``evidence.py``), the caseload home's column and the caseload-wide *services owed*
view, each in a fixed number of queries whatever the caseload size.

School closures (``school_closures``: district-wide ones and the student's school's) reduce the minutes required:
a closed week requires none, a partly closed week its share by school days."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Executable, Integer, String, any_, bindparam, case, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain import service_minutes as rules
from lti_app.domain.access import Action, decide
from lti_app.domain.access import StudentFacts as PolicyStudentFacts
from lti_app.domain.casework_rules import CaseworkInvalid, change_reason, requirement_input, session_input
from lti_app.domain.dates import shown_day
from lti_app.domain.deadlines import SchoolCalendar
from lti_app.models import Person, Plan, RoleGrant, SchoolClosure, ServiceRequirement, ServiceSession, Student
from lti_app.services.access import policy as access
from lti_app.services.casework import casework_access, evidence

log = logging.getLogger(__name__)

SERVICE_LABELS = {"speech_language": "Speech-language", "occupational_therapy": "Occupational therapy",
                  "physical_therapy": "Physical therapy", "counseling": "Counseling",
                  "specialized_instruction": "Specialized instruction", "tutoring": "Tutoring", "other": "Other service"}
ATTENDANCE_LABELS = {"delivered": "Delivered", "student_absent": "Student absent",
                     "provider_absent": "Provider absent (minutes owed)"}
KIND_LABELS = {"session": "Regular session", "make_up": "Make-up (pays down minutes owed)"}
PERIOD_LABELS = {"week": "per week", "month": "per month"}


@dataclass(frozen=True)
class SessionView:
    id: int
    held_on: dt.date
    minutes: int
    attendance: str
    note: str | None
    logged_by: str | None
    kind: str = "session"
    revision_no: int = 1
    deleted_at: dt.datetime | None = None


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
    """The most recent sessions, newest first (removed ones are in ``removed``)."""
    active: bool
    ledger: rules.Ledger = rules.Ledger()
    """Every period from the service's start: the running balance of minutes owed."""
    removed: list[SessionView] = field(default_factory=list)

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
    def still_owed(self) -> int:
        return self.ledger.still_owed

    @property
    def make_up_owed(self) -> int:
        """The minutes still owed (the ledger's balance; the name the pages used before the ledger)."""
        return self.ledger.still_owed


@dataclass(frozen=True)
class ServiceStatus:
    """The caseload home's column: services active in their last completed week or month, how many were short
    there and by how many minutes, and the minutes still owed (the ledgers' balance, from each service's start)."""

    services: int = 0
    short: int = 0
    minutes_short: int = 0
    still_owed: int = 0
    owing: int = 0
    """Services with minutes still owed."""

    @property
    def make_up_owed(self) -> int:
        return self.still_owed


def closed_days(session: Session, schools: Iterable[str | None]) -> dict[str, frozenset[dt.date]]:
    """Closed weekdays per school (``""`` = no school recorded), district-wide closures included: one query."""
    keys = sorted({s or "" for s in schools} | {""})
    ranges: dict[str, list[tuple[dt.date, dt.date]]] = {k: [] for k in keys}
    for school, first, last in session.execute(
            select(SchoolClosure.school, SchoolClosure.starts_on, SchoolClosure.ends_on)
            .where(SchoolClosure.school.in_(keys))).all():
        ranges.setdefault(school or "", []).append((first, last))
    district = ranges.get("", [])
    return {k: rules.closed_weekdays(district + (ranges[k] if k else [])) for k in keys}


def _facts(rows: Iterable[ServiceSession]) -> list[rules.SessionFact]:
    return [rules.SessionFact(s.held_on, s.minutes, s.attendance, s.kind or rules.SESSION) for s in rows
            if s.deleted_at is None]


def services_for(session: Session, student_id: int, today: dt.date, periods: int = 6,
                 recent_sessions: int | None = 10) -> list[ServiceView]:
    """Every service of the student (active first) with its ledger, its last ``periods`` periods and its sessions
    (``recent_sessions`` of them, or all with None): four queries."""
    rows = session.execute(
        select(ServiceRequirement, Person.name, Plan.plan_type)
        .outerjoin(Person, Person.id == ServiceRequirement.provider_id)
        .outerjoin(Plan, Plan.id == ServiceRequirement.plan_id)
        .where(ServiceRequirement.student_id == student_id)
        .order_by(ServiceRequirement.starts_on.desc(), ServiceRequirement.id.desc())).all()
    if not rows:
        return []
    school = session.scalar(select(Student.school).where(Student.id == student_id)) or ""
    closed = closed_days(session, [school])[school]
    sessions = session.execute(
        select(ServiceSession, Person.name).outerjoin(Person, Person.id == ServiceSession.logged_by_id)
        .where(ServiceSession.student_id == student_id)
        .order_by(ServiceSession.held_on.desc(), ServiceSession.id.desc())).all()
    by_req: dict[int, list[tuple[ServiceSession, str | None]]] = {}
    for s, who in sessions:
        by_req.setdefault(s.requirement_id, []).append((s, who))
    out = []
    for req, provider, plan_type in rows:
        mine = by_req.get(req.id, [])
        ledger = rules.ledger(req.minutes, req.period, req.starts_on, req.ends_on, _facts(s for s, _ in mine), today,
                              closed)
        views = [SessionView(s.id, s.held_on, s.minutes, s.attendance,
                             cipher().decrypt(s.note_encrypted) if s.note_encrypted else None, who,
                             s.kind or rules.SESSION, s.revision_no or 1, s.deleted_at) for s, who in mine]
        live = [v for v in views if v.deleted_at is None]
        active = req.starts_on <= today and (req.ends_on is None or req.ends_on >= today)
        out.append(ServiceView(req.id, req.service_type, req.minutes, req.period,
                               provider or req.provider_name or "—", req.provider_id, req.setting, req.starts_on,
                               req.ends_on, plan_type, [r.period for r in reversed(ledger.rows)][:periods],
                               live if recent_sessions is None else live[:recent_sessions], active, ledger,
                               [v for v in views if v.deleted_at is not None]))
    out.sort(key=lambda v: not v.active)
    return out


def _period_start(dialect: str) -> Any:
    """SQL for the first day of the session's week (Monday) or calendar month, by its service's period: the
    database adds the sessions up per period, so a caseload sends one row per service and period, not per session."""
    held = ServiceSession.held_on
    week: Any
    month: Any
    if dialect == "postgresql":
        week = cast(func.date_trunc("week", held), Date)  # ISO weeks start on Monday
        month = cast(func.date_trunc("month", held), Date)
    else:  # SQLite: %w is 0 on Sunday
        week = func.date(held, literal("-") + cast((cast(func.strftime("%w", held), Integer) + 6) % 7, String)
                         + literal(" days"))
        month = func.date(held, "start of month")
    return type_coerce(case((ServiceRequirement.period == "week", week), else_=month), Date)


def _sum_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, ServiceSession.minutes), else_=0)), 0)


def student_totals(services: Sequence[ServiceView]) -> rules.LedgerTotals:
    """The student's services added up (the Services tab's "all services" row)."""
    totals = rules.LedgerTotals()
    for view in services:
        totals.add(view.id, view.ledger)
    return totals


def closed_days_of(calendars: Mapping[str | None, SchoolCalendar]) -> dict[str, frozenset[dt.date]]:
    """``closed_days`` from school calendars already read (``deadlines.load_calendars``: district-wide closures merged
    into each school's, ``None`` for no school), keyed as ``closed_days`` keys them (``""`` = no school recorded):
    the caseload home reads the closures once for its deadlines and its service minutes."""
    return {school or "": rules.closed_weekdays((c.starts_on, c.ends_on) for c in calendar.closures)
            for school, calendar in calendars.items()}


def ledger_summaries(session: Session, student_ids: Sequence[int], today: dt.date, *,
                     closed: Mapping[str, frozenset[dt.date]] | None = None) -> dict[int, rules.LedgerTotals]:
    """Per student, every service's ledger added up (required, delivered, missed by the student, missed by the
    provider, made up, still owed), in three queries whatever the number of students: the services, the closures
    of the students' schools (none when ``closed`` already holds every school's closed days, ``closed_days_of``),
    and the sessions added up per service and week or month by the database. For the caseload home and the
    services-owed view; ``LedgerTotals.by_service`` keeps each service's ledger (totals and its last completed
    period, without the per-period rows)."""
    if not student_ids:
        return {}
    params = {"ids": list(student_ids), "today": today}
    requirements, period_sums = _ledger_statements(session.get_bind().dialect.name)
    reqs = session.execute(requirements, params).all()  # through the session: it flushes pending sessions first
    if not reqs:
        return {}
    conn = session.connection()
    schools = {r[6] or "" for r in reqs}
    if closed is None or not schools <= closed.keys():
        closed = closed_days(session, schools)
    sums: dict[int, dict[dt.date, rules.Sums]] = {}
    # Core rows fetched at once (not ORM rows, not one fetch per row): this is the one query whose size grows with
    # the caseload's history (2,700 rows for 200 students). SUM of an integer column is an integer on both databases.
    for rid, start, delivered, student_absent, provider_absent, made_up in conn.execute(period_sums, params).all():
        by_period = sums.get(rid)
        if by_period is None:
            by_period = sums[rid] = {}
        by_period[start] = (delivered, student_absent, provider_absent, made_up)
    out: dict[int, rules.LedgerTotals] = {}
    no_sums: dict[dt.date, rules.Sums] = {}
    for rid, sid, minutes, period, starts_on, ends_on, school in reqs:
        led = rules.ledger_totals(minutes, period, starts_on, ends_on, sums.get(rid, no_sums), today,
                                  closed[school or ""])
        totals = out.get(sid)
        if totals is None:
            totals = out[sid] = rules.LedgerTotals()
        totals.add(rid, led)
    return out


@functools.cache
def _ledger_statements(dialect: str) -> tuple[Executable, Executable]:
    """``ledger_summaries``'s two statements (the services; the sessions added up per service and period), built
    once per database kind with the students (``ids``) and ``today`` as bound parameters: building them on every
    caseload page cost about a millisecond of CPU. The ids are one array parameter on PostgreSQL (the statement
    text is the same whatever the caseload size, see ``db.in_ids``) and an expanding ``IN`` on SQLite."""
    today = bindparam("today", type_=Date)

    def of_students(column: Any) -> Any:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == any_(bindparam("ids", type_=ARRAY(Integer)))
        return column.in_(bindparam("ids", expanding=True))

    requirements = (
        select(ServiceRequirement.id, ServiceRequirement.student_id, ServiceRequirement.minutes,
               ServiceRequirement.period, ServiceRequirement.starts_on, ServiceRequirement.ends_on, Student.school)
        .join(Student, Student.id == ServiceRequirement.student_id)
        .where(of_students(ServiceRequirement.student_id), ServiceRequirement.starts_on <= today)
        .order_by(ServiceRequirement.student_id, ServiceRequirement.id))
    regular = ServiceSession.kind == rules.SESSION
    bucket = _period_start(dialect).label("bucket")
    period_sums = (
        select(ServiceSession.requirement_id, bucket,
               _sum_if(regular & (ServiceSession.attendance == rules.DELIVERED)),
               _sum_if(regular & (ServiceSession.attendance == rules.STUDENT_ABSENT)),
               _sum_if(regular & (ServiceSession.attendance == rules.PROVIDER_ABSENT)),
               _sum_if((ServiceSession.kind == rules.MAKE_UP) & (ServiceSession.attendance == rules.DELIVERED)))
        .join(ServiceRequirement, ServiceRequirement.id == ServiceSession.requirement_id)
        .where(of_students(ServiceSession.student_id), ServiceSession.deleted_at.is_(None),
               ServiceSession.held_on <= today)
        .group_by(ServiceSession.requirement_id, bucket))
    return requirements, period_sums


def shortfalls(session: Session, student_ids: Sequence[int], today: dt.date, *,
               closed: Mapping[str, frozenset[dt.date]] | None = None) -> dict[int, ServiceStatus]:
    """Per student (the caseload home's column): the services active in their last completed week or month, which
    of those fell short there and by how much, and the minutes still owed from every service's ledger. The
    queries of ``ledger_summaries`` (``closed`` as there)."""
    out: dict[int, ServiceStatus] = {}
    windows = {rules.last_completed(today, "week"), rules.last_completed(today, "month")}
    for sid, totals in ledger_summaries(session, student_ids, today, closed=closed).items():
        services = short = minutes_short = 0
        for led in totals.by_service.values():
            last = led.last_complete
            if last is None:
                continue
            if (last.start, last.end) not in windows:
                continue  # the service was not running in its last completed week or month
            services += 1
            short += int(last.short)
            minutes_short += last.missing
        out[sid] = ServiceStatus(services, short, minutes_short, totals.still_owed, totals.owing)
    return out


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
        raise CaseworkInvalid([("ends_on", f"The last day ({shown_day(ends_on)}) is before the service starts "
                                           f"({shown_day(req.starts_on)}).")])
    later = session.scalar(select(func.max(ServiceSession.held_on)).where(ServiceSession.requirement_id == req.id,
                                                                           ServiceSession.deleted_at.is_(None)))
    if later is not None and later > ends_on:
        raise CaseworkInvalid([("ends_on", f"A session was logged on {shown_day(later)}, after that day.")])
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
                         logged_by_id=viewer.person_id, kind=form.kind)
    session.add(row)
    session.flush()
    log.info("service session logged id=%s service=%s kind=%s actor=%s", row.id, req.id, form.kind, viewer.person_id)
    return row


def _session_for_change(session: Session, viewer: Viewer, session_id: int, what: str) -> tuple[ServiceSession,
                                                                                                  ServiceRequirement]:
    """The session and its service, once the viewer may change it: the case manager, or the provider of this very
    service (who logs its sessions). A removed session is not changed again."""
    from flask import abort

    row = session.get(ServiceSession, session_id)
    if row is None:
        abort(404, description="There is no session with this id.")
    req = session.get(ServiceRequirement, row.requirement_id)
    assert req is not None
    decision = casework_access.authorize(session, viewer, row.student_id, Action.LOG_SERVICE,
                                         f"{what} session {row.id} of service {req.id}")
    if decision.relationship != "case_manager" and req.provider_id != viewer.person_id:
        session.rollback()
        casework_access.refuse_not_provider(session, viewer, row.student_id, req.id)
    if row.deleted_at is not None:
        raise CaseworkInvalid([("reason", "This session was removed; it is kept in the history and is not changed "
                                          "again. Log a new session instead.")])
    return row, req


def correct_session(session: Session, viewer: Viewer, session_id: int, data: Mapping[str, str],
                    today: dt.date | None = None) -> ServiceSession:
    """Correct a logged session: a new revision (who, when, why); the old state stays in the history."""
    row, req = _session_for_change(session, viewer, session_id, "correct")
    problems: list[tuple[str, str]] = []
    try:
        form = session_input(data, today or clock.today(), req.starts_on, req.ends_on)
    except CaseworkInvalid as exc:
        problems += exc.problems
    try:
        reason = change_reason(data, removal=False)
    except CaseworkInvalid as exc:
        problems += exc.problems
    if problems:
        raise CaseworkInvalid(problems)
    before = evidence.state_of(row)
    after = {"held_on": form.held_on.isoformat(), "minutes": form.minutes, "attendance": form.attendance,
             "kind": form.kind, "note": form.note}
    if before == after:
        raise CaseworkInvalid([("minutes", "Nothing was changed: correct a value, or leave the session as it is.")])
    evidence.before_change(session, row, req.student_id)
    row.held_on, row.minutes, row.attendance, row.kind = form.held_on, form.minutes, form.attendance, form.kind
    row.note_encrypted = cipher().encrypt(form.note) if form.note else None
    evidence.after_change(session, viewer, row, req.student_id, reason)
    return row


def remove_session(session: Session, viewer: Viewer, session_id: int, data: Mapping[str, str]) -> ServiceSession:
    """Remove a session logged by mistake, softly: it leaves the minutes and the lists, and stays in the history
    with who removed it, when and why (a reason and a ticked confirmation are required)."""
    row, req = _session_for_change(session, viewer, session_id, "remove")
    reason = change_reason(data, removal=True)
    evidence.before_change(session, row, req.student_id)
    evidence.after_change(session, viewer, row, req.student_id, reason, action="remove")
    return row


# --------------------------------------------------------------------------------------------- services owed


@dataclass(frozen=True)
class OwedRow:
    student_id: int
    student: str
    school: str
    requirement_id: int
    service_type: str
    minutes: int
    period: str
    provider: str
    starts_on: dt.date
    ends_on: dt.date | None
    ledger: rules.Ledger

    @property
    def label(self) -> str:
        return SERVICE_LABELS.get(self.service_type, self.service_type)


@dataclass(frozen=True)
class OwedView:
    rows: list[OwedRow]
    """One per service (owing services only, unless every service was asked for), most owed first."""
    students: int
    """Students on the caseload (checked and logged)."""
    owing_students: int
    totals: rules.LedgerTotals


CSV_COLUMNS = ("student_id", "student", "school", "service", "minutes_required", "per", "provider", "starts_on",
               "ends_on", "required", "delivered", "missed_by_student", "missed_by_provider", "made_up", "still_owed")


def services_owed(session: Session, viewer: Viewer, today: dt.date, *, every_service: bool = False,
                  context: str = "services owed") -> OwedView:
    """The case manager's caseload-wide view of minutes owed (compensatory services, 34 CFR 300.151(b)(1)): every
    service of every student whose active plan names the viewer as case manager, with its running ledger.

    Each student is decided by the access policy (``view_casework``) with facts loaded for the whole caseload in one
    query (the case managers of each student's active plans; enrollments are not loaded, which can only narrow
    access, never widen it), and every decision, allowed or refused, is written to the access log in one insert.
    Five queries whatever the caseload size."""
    students = session.execute(
        select(Student.id, Student.given_name, Student.family_name, Student.preferred_name, Student.school)
        .join(Plan, Plan.student_id == Student.id)
        .where(Plan.case_manager_id == viewer.person_id, Plan.status == "active", Student.purged_at.is_(None))
        .distinct()).all()
    ids = [s.id for s in students]
    managers: dict[int, set[int]] = {}
    for sid, manager in session.execute(select(Plan.student_id, Plan.case_manager_id).where(
            Plan.student_id.in_(ids or [-1]), Plan.status == "active", Plan.case_manager_id.is_not(None))).all():
        if manager is not None:
            managers.setdefault(sid, set()).add(manager)
    actor = access.actor_facts(session, viewer)
    allowed: dict[int, str] = {}
    for sid in ids:
        decision = decide(actor, PolicyStudentFacts(sid, frozenset(managers.get(sid, ())), ()), Action.VIEW_CASEWORK)
        if decision.allowed:
            allowed[sid] = decision.basis
        else:
            access.record(session, viewer, sid, Action.VIEW_CASEWORK.value, False, decision.basis, context)
    access.record_many(session, viewer, allowed, Action.VIEW_CASEWORK.value, context)
    return owed_view(session, students, list(allowed), today, every_service=every_service)


def owed_view(session: Session, students: Sequence[Any], allowed: list[int], today: dt.date, *,
              every_service: bool) -> OwedView:
    """The services-owed table of the ``allowed`` students (rows of ``students``: id, given, family and preferred
    name, school), most owed first; owing services only unless ``every_service``. Shared by the case manager's page
    and the administrators' (``services_owed_admin``); the access decisions are the caller's."""
    names = {s.id: (f"{s.preferred_name or s.given_name} {s.family_name}", s.school or "") for s in students}
    summaries = ledger_summaries(session, allowed, today)
    reqs = {r.id: r for r in session.execute(
        select(ServiceRequirement.id, ServiceRequirement.service_type, ServiceRequirement.minutes,
               ServiceRequirement.period, ServiceRequirement.starts_on, ServiceRequirement.ends_on,
               func.coalesce(Person.name, ServiceRequirement.provider_name).label("provider"))
        .outerjoin(Person, Person.id == ServiceRequirement.provider_id)
        .where(ServiceRequirement.student_id.in_(allowed or [-1]))).all()}
    rows: list[OwedRow] = []
    totals = rules.LedgerTotals()
    owing_students = 0
    for sid, student_totals in summaries.items():
        owing_students += int(student_totals.still_owed > 0)
        for rid, led in student_totals.by_service.items():
            totals.add(rid, led)
            if led.still_owed <= 0 and not every_service:
                continue
            r = reqs[rid]
            rows.append(OwedRow(sid, names[sid][0], names[sid][1], rid, r.service_type, r.minutes, r.period,
                                r.provider or "—", r.starts_on, r.ends_on, led))
    rows.sort(key=lambda r: (-r.ledger.still_owed, r.student.lower(), r.requirement_id))
    return OwedView(rows, len(allowed), owing_students, totals)


def owed_csv_rows(view: OwedView) -> list[list[object]]:
    """The services-owed view as CSV rows (``CSV_COLUMNS``), for a spreadsheet or the district's compensatory
    services plan."""
    out: list[list[object]] = [list(CSV_COLUMNS)]
    for r in view.rows:
        led = r.ledger
        out.append([r.student_id, r.student, r.school, r.label, r.minutes, r.period, r.provider, r.starts_on.isoformat(),
                    r.ends_on.isoformat() if r.ends_on else "", led.required, led.delivered, led.missed_by_student,
                    led.missed_by_provider, led.made_up, led.still_owed])
    return out

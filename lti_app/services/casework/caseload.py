"""The case manager's caseload: every student whose active plan they manage, with the next deadline, how
many current teachers have acknowledged the active version, and open teacher questions — in a fixed number
of aggregate queries whatever the caseload size."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, String, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.domain.access import TEACHING_ROLES
from lti_app.domain.vocab import GrantRole
from lti_app.models import Acknowledgement, Enrollment, Plan, PlanVersion, Question, Section, Student, StudentLink
from lti_app.services.access import policy as access
from lti_app.services.access import roles
from lti_app.services.casework import deadlines as deadline_service
from lti_app.services.casework import service_minutes
from lti_app.services.casework.service_minutes import ServiceStatus


@dataclass(frozen=True)
class CaseloadRow:
    student_id: int
    name: str
    plan_type: str
    next_deadline: dt.date | None
    deadline_label: str
    teachers: int
    acknowledged: int
    open_questions: int
    services: ServiceStatus = ServiceStatus()
    """Service minutes in each service's last completed week or month (``services/service_minutes.py``)."""
    window_days: int = 30
    """``CASELOAD_DEADLINE_WINDOW_DAYS``: a deadline this close is "soon"."""

    def urgency(self, today: dt.date) -> str:
        if self.next_deadline is None:
            return "none"
        days = (self.next_deadline - today).days
        return "overdue" if days < 0 else "soon" if days <= self.window_days else "later"


def acknowledgement_counts(session: Session, case_manager_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per student whose active plan names ``case_manager_id``: the teachers who teach them (an active teacher/TA
    enrollment in the student's own section, or a course-wide one on either side, as the teacher's panel lists them)
    and how many of those acknowledged the active version for every section they teach the student in, made since
    they began teaching that section (the panel re-opens older acknowledgements). A course's other teachers, and
    acknowledgements by people no longer teaching the student, do not count (IDEA 34 CFR 300.323(d): each teacher
    responsible for implementing the IEP). One aggregate statement whatever the caseload size."""
    teachers: dict[int, int] = {}
    acknowledged: dict[int, int] = {}
    for student_id, total, done in session.execute(_acknowledgement_count_statement(),
                                                   {"case_manager_id": case_manager_id}).all():
        teachers[student_id], acknowledged[student_id] = int(total), int(done or 0)
    return teachers, acknowledged


@functools.cache
def _acknowledgement_count_statement() -> Select[Any]:
    """``acknowledgement_counts``'s statement, built once per process with the case manager as a bound parameter:
    building it (five aliases, three subqueries) on every page cost CPU and left about 1,300 objects in reference
    cycles per page, which the garbage collector then freed in one pause of 40-70 ms every twenty-odd pages (the
    page's p95 in issue #11's benchmark). The compiled SQL is the same for every case manager.

    The fixed values (statuses, roles, the course-wide section's empty id) are written into the SQL rather than bound
    (``_fixed``), so the case manager is the statement's only parameter: PostgreSQL then settles on one generic plan
    for the prepared statement after its fifth use instead of planning this nine-table query again on every page
    (about 2-3 ms of planning; with the fixed values as parameters it judged every generic plan worse)."""
    manager = bindparam("case_manager_id", type_=Integer)
    active = _fixed("active")
    # The caseload and its versions in force as subqueries rather than 200-value IN lists: the statement text stays
    # short and the same for every case manager (psycopg parses long statements again on every execution).
    student_ids = select(Plan.student_id).where(Plan.case_manager_id == manager, Plan.status == active)
    version_ids = (select(PlanVersion.id).join(Plan, Plan.id == PlanVersion.plan_id)
                   .where(Plan.case_manager_id == manager, Plan.status == active, PlanVersion.status == active))
    mine, theirs = aliased(Enrollment), aliased(Enrollment)
    mine_section, their_section = aliased(Section), aliased(Section)
    roles = bindparam("teaching_roles", sorted(TEACHING_ROLES), type_=String, literal_execute=True)
    # (student, teacher, the student's section, course, when that teacher began teaching there): one row per way a
    # teacher teaches the student; "began" is their earliest teaching enrollment that reaches the student's section.
    pairs = (select(StudentLink.student_id, theirs.person_id.label("teacher_id"),
                    mine.section_id.label("section_id"), func.min(theirs.created_at).label("started"))
             .join(mine, mine.person_id == StudentLink.person_id)
             .join(mine_section, mine_section.id == mine.section_id)
             .join(theirs, theirs.course_id == mine.course_id)
             .join(their_section, their_section.id == theirs.section_id)
             .where(StudentLink.student_id.in_(student_ids), mine.state == active, mine.role == _fixed("student"),
                    theirs.state == active, theirs.role.in_(roles),
                    or_(theirs.section_id == mine.section_id, their_section.lms_section_id == _fixed(""),
                        mine_section.lms_section_id == _fixed("")))
             .group_by(StudentLink.student_id, theirs.person_id, mine.section_id).subquery())
    ack = aliased(Acknowledgement)
    missing = func.sum(case((or_(ack.id.is_(None), ack.acknowledged_at < pairs.c.started), 1), else_=0))
    per_teacher = (select(pairs.c.student_id, pairs.c.teacher_id, missing.label("missing"))
                   .select_from(pairs)
                   .outerjoin(ack, (ack.student_id == pairs.c.student_id) & (ack.staff_person_id == pairs.c.teacher_id)
                              & (ack.section_id == pairs.c.section_id)
                              & ack.plan_version_id.in_(version_ids))
                   .group_by(pairs.c.student_id, pairs.c.teacher_id).subquery())
    return (select(per_teacher.c.student_id, func.count(), func.sum(case((per_teacher.c.missing == 0, 1), else_=0)))
            .group_by(per_teacher.c.student_id))


def _fixed(value: str) -> Any:
    """A constant of the statement written into its SQL (typed, quoted by the dialect), not a bound parameter."""
    return literal(value, type_=String, literal_execute=True)


@functools.cache
def _open_question_statement() -> Select[int, int]:
    """Open teacher questions per student of the case manager's caseload (built once, like the count above)."""
    manager = bindparam("case_manager_id", type_=Integer)
    mine = select(Plan.student_id).where(Plan.case_manager_id == manager, Plan.status == "active")
    return (select(Question.student_id, func.count())
            .where(Question.student_id.in_(mine), Question.status == "open").group_by(Question.student_id))


@functools.cache
def _plans_statement() -> Select[Plan, Student]:
    manager = bindparam("case_manager_id", type_=Integer)
    return (select(Plan, Student).join(Student, Student.id == Plan.student_id)
            .where(Plan.case_manager_id == manager, Plan.status == "active"))


def caseload(session: Session, viewer: Viewer, sort: str = "deadline", *,
             grants: frozenset[str] | None = None) -> list[CaseloadRow]:
    """``grants``: the viewer's active grants when the caller has just read them for this request
    (``roles.grant_roles``), so the page reads them once; read here otherwise."""
    if grants is None:
        grants = roles.grant_roles(session, viewer.person_id)
    if GrantRole.CASE_MANAGER.value not in grants:
        # The caseload basis needs the case manager grant (domain.access): a person still named on plans whose
        # grant was revoked (or who holds another support grant only) has no caseload to list or log.
        return []
    manager = {"case_manager_id": viewer.person_id}
    plans = session.execute(_plans_statement(), manager).all()
    if not plans:
        return []
    student_ids = [s.id for _, s in plans]
    teacher_counts, ack_counts = acknowledgement_counts(session, viewer.person_id)
    questions: dict[int, int] = dict(session.execute(_open_question_statement(), manager).all())
    # The schools' calendars (reporting periods, closures) read once, for the deadlines and the service minutes.
    calendars = deadline_service.load_calendars(session, {s.school for _, s in plans})
    services = service_minutes.shortfalls(session, student_ids, clock.today(),
                                          closed=service_minutes.closed_days_of(calendars))
    # Compliance deadlines from the deadlines domain (annual review, reevaluation unless waived, initial evaluation,
    # 504 review, progress reports): two more set-based queries whatever the caseload size.
    window = deadline_service.policy().upcoming_window_days
    upcoming = deadline_service.next_by_plan(session, [(p, s) for p, s in plans], clock.today(), calendars=calendars)
    rows = []
    for plan, student in plans:
        due = upcoming.get(plan.id)
        candidates = ([(due.due_on, due.label)] if due else []) + ([(plan.end_on, "plan ends")] if plan.end_on else [])
        nxt = min(candidates) if candidates else (None, "")
        teachers = teacher_counts.get(student.id, 0)
        rows.append(CaseloadRow(student.id, student.display_name, plan.plan_type, nxt[0], nxt[1], teachers,
                                min(ack_counts.get(student.id, 0), teachers), questions.get(student.id, 0),
                                services.get(student.id, ServiceStatus()), window))
    access.record_many(session, viewer, {r.student_id: "caseload (case manager)" for r in rows}, "view",
                       "caseload home")
    keys = {"name": lambda r: r.name.lower(), "plan": lambda r: (r.plan_type, r.name.lower()),
            "acks": lambda r: (r.acknowledged - r.teachers, r.name.lower()),
            "questions": lambda r: (-r.open_questions, r.name.lower()),
            "services": lambda r: (-r.services.short, -r.services.minutes_short, -r.services.still_owed, r.name.lower()),
            "deadline": lambda r: (r.next_deadline or dt.date.max, r.name.lower())}
    return sorted(rows, key=keys.get(sort, keys["deadline"]))

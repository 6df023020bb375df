"""The case manager's caseload: every student whose active plan they manage, with the next deadline, how
many current teachers have acknowledged the active version, and open teacher questions — in a fixed number
of aggregate queries whatever the caseload size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.models import Acknowledgement, Enrollment, Plan, PlanVersion, Question, Student, StudentLink
from lti_app.services.access import policy as access
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


def caseload(session: Session, viewer: Viewer, sort: str = "deadline") -> list[CaseloadRow]:
    plans = session.execute(
        select(Plan, Student).join(Student, Student.id == Plan.student_id)
        .where(Plan.case_manager_id == viewer.person_id, Plan.status == "active")).all()
    if not plans:
        return []
    student_ids = [s.id for _, s in plans]
    versions = dict(session.execute(select(PlanVersion.plan_id, PlanVersion.id).where(
        PlanVersion.plan_id.in_([p.id for p, _ in plans]), PlanVersion.status == "active")).all())
    # Current teachers: active teacher/ta enrollments in courses where the student is actively enrolled.
    student_enr = (select(StudentLink.student_id, Enrollment.course_id, Enrollment.section_id)
                   .join(Enrollment, Enrollment.person_id == StudentLink.person_id)
                   .where(StudentLink.student_id.in_(student_ids), Enrollment.state == "active",
                          Enrollment.role == "student").subquery())
    teacher_counts: dict[int, int] = dict(session.execute(
        select(student_enr.c.student_id, func.count(func.distinct(Enrollment.person_id)))
        .join(Enrollment, Enrollment.course_id == student_enr.c.course_id)
        .where(Enrollment.state == "active", Enrollment.role.in_(["teacher", "ta"]))
        .group_by(student_enr.c.student_id)).all())
    ack_counts = dict(session.execute(
        select(Acknowledgement.student_id, func.count(func.distinct(Acknowledgement.staff_person_id)))
        .where(Acknowledgement.plan_version_id.in_(list(versions.values())))
        .group_by(Acknowledgement.student_id)).all())
    questions = dict(session.execute(
        select(Question.student_id, func.count()).where(Question.student_id.in_(student_ids),
                                                         Question.status == "open")
        .group_by(Question.student_id)).all())
    services = service_minutes.shortfalls(session, student_ids, clock.today())
    # Compliance deadlines from the deadlines domain (annual review, reevaluation unless waived, initial evaluation,
    # 504 review, progress reports): four more set-based queries whatever the caseload size.
    window = deadline_service.policy().upcoming_window_days
    upcoming = deadline_service.next_by_plan(session, [(p, s) for p, s in plans], clock.today())
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
            "services": lambda r: (-r.services.short, -r.services.minutes_short, r.name.lower()),
            "deadline": lambda r: (r.next_deadline or dt.date.max, r.name.lower())}
    return sorted(rows, key=keys.get(sort, keys["deadline"]))

"""Alerts in the demo district and the practice LMS's "schedule change" button.

``seed`` records the seeded classes as the alerts job's starting point (so the demo begins without a flood of
"joined" alerts) and makes today's deadline reminders, so a case manager's inbox shows one from the start.

``next_change`` / ``enrol``: the practice LMS enrols a student with a plan into a teacher's section they are not in,
the way an LMS's roster change reaches Caseload: through the roster primitive every source ends in
(``services/roster/primitives.apply_enrollment``), nothing alert-specific. The alerts job (beat, ``caseload alerts
run`` or the page's "Run the alerts job now") then finds the change like any other."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.db import utcnow
from lti_app.demo.common import DemoDistrict
from lti_app.domain.vocab import EnrollmentState, RosterSource
from lti_app.models import AlertState, Course, Enrollment, Person, Plan, Section, Student, StudentLink
from lti_app.services.alerts import detect, reminders
from lti_app.services.roster import primitives as roster


def seed(session: Session, district: DemoDistrict) -> None:
    now = utcnow()
    state = session.get(AlertState, 1)
    if state is None:
        state = AlertState(id=1, started_at=now)
        session.add(state)
        session.flush()
    detect.detect_schedule_changes(session, now)  # the seeded classes: a baseline, no alerts
    today = clock.today()
    windows = current_app.config["CASELOAD"].reminder_windows_days if has_app_context() else [7, 30]
    detect.store(session, reminders.deadline_reminders(session, today, windows), now)
    state.reminders_on, state.last_run_at = today, now
    session.flush()


@dataclass(frozen=True)
class ScheduleChange:
    person_id: int
    student_name: str
    plan_type: str
    course_id: int
    section_id: int
    place: str
    teacher: str

    @property
    def label(self) -> str:
        return f"Enrol {self.student_name} ({self.plan_type}) into {self.place} — teacher {self.teacher}"


def next_change(session: Session, platform_id: int) -> ScheduleChange | None:
    """The first (plan student, teacher's section) pair where the student is not yet in that course."""
    sections = session.execute(
        select(Section.id, Section.name, Course.id, Course.title, Person.name)
        .join(Course, Course.id == Section.course_id)
        .join(Enrollment, Enrollment.section_id == Section.id).join(Person, Person.id == Enrollment.person_id)
        .where(Course.platform_id == platform_id, Section.lms_section_id != "", Enrollment.role == "teacher",
               Enrollment.state == "active").order_by(Course.id, Section.id)).all()
    students = session.execute(
        select(Person.id, Student.given_name, Student.preferred_name, Student.family_name, Plan.plan_type)
        .join(StudentLink, StudentLink.person_id == Person.id).join(Student, Student.id == StudentLink.student_id)
        .join(Plan, Plan.student_id == Student.id)
        .where(Person.platform_id == platform_id, Plan.status == "active").order_by(Student.family_name, Person.id)
    ).all()
    enrolled = {(pid, cid) for pid, cid in session.execute(
        select(Enrollment.person_id, Enrollment.course_id).where(Enrollment.role == "student",
                                                                 Enrollment.state == "active"))}
    for section_id, section_name, course_id, title, teacher in sections:
        for person_id, given, preferred, family, plan_type in students:
            if (person_id, course_id) not in enrolled:
                place = section_name if section_name.startswith(title) else f"{title} — {section_name}"
                return ScheduleChange(person_id, f"{preferred or given} {family}", plan_type, course_id, section_id,
                                      place, teacher)
    return None


def enrol(session: Session, platform_id: int, person_id: int, section_id: int) -> bool:
    """Enrol a plan student of the practice platform into one of its sections. False: not such a pair (a stale or
    forged form). Caller commits."""
    person, section = session.get(Person, person_id), session.get(Section, section_id)
    if person is None or section is None or person.platform_id != platform_id:
        return False
    if section.course.platform_id != platform_id or person.kind != "student":
        return False
    roster.apply_enrollment(session, person=person, course=section.course, section=section, role="student",
                            state=EnrollmentState.ACTIVE.value, source=RosterSource.DEMO.value,
                            source_time=dt.datetime.now(dt.UTC))
    return True

"""What starts a reconcile, and for which (course, students). A teacher does nothing: Caseload re-applies
when the plan changes, when the student joins a course, when quizzes change, and in a nightly repair sweep.

- ``student_courses``: plan activation → every course the student is actively enrolled in, on an LMS where
  applying is switched on;
- ``new_enrollments``: student enrollments created or re-activated since the last look (from launches, webhooks,
  NRPS or OneRoster alike), per switched-on LMS, with a watermark so each change is looked at once;
- ``sweep_courses``: every course with a plan student (or with a value Caseload set that may have to be
  withdrawn) on a switched-on LMS. The sweep catches what no event reports (Canvas has no event for practice
  quizzes; a lost webhook; an LMS that was down).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.domain.lms_actions import CANVAS_QUIZ_EVENTS, MOODLE_QUIZ_EVENTS, quiz_event_course
from lti_app.models import (
    AppliedAccommodation,
    Course,
    Enrollment,
    InboundEvent,
    LmsActionLedger,
    LmsConnection,
    Plan,
    PlanVersion,
    StudentLink,
)

ENROLLMENT_LOOKBACK = dt.timedelta(seconds=5)
"""Rows committed while the previous look ran can carry an updated_at slightly before its watermark."""


def _enabled_platforms(session: Session) -> list[int]:
    return list(session.scalars(select(LmsConnection.platform_id).where(LmsConnection.enabled.is_(True))))


def student_courses(session: Session, student_id: int) -> list[tuple[int, int]]:
    """(course_id, person_id) of the student's active enrollments on switched-on LMSs."""
    platforms = _enabled_platforms(session)
    if not platforms:
        return []
    rows = session.execute(
        select(Enrollment.course_id, Enrollment.person_id).distinct()
        .join(StudentLink, StudentLink.person_id == Enrollment.person_id)
        .join(Course, Course.id == Enrollment.course_id)
        .where(StudentLink.student_id == student_id, Enrollment.role == "student", Enrollment.state == "active",
               Course.platform_id.in_(platforms)))
    return [(c, p) for c, p in rows]


def _plan_students(session: Session) -> Select[Any]:
    return (select(Plan.student_id).join(PlanVersion, PlanVersion.plan_id == Plan.id)
            .join(AppliedAccommodation, AppliedAccommodation.plan_version_id == PlanVersion.id)
            .where(Plan.status == "active", PlanVersion.status == "active"))


def new_enrollments(session: Session) -> list[tuple[int, int]]:
    """(course_id, person_id) of plan students' enrollments that became active since the last look; advances
    the watermark of each switched-on connection (the caller commits)."""
    out: set[tuple[int, int]] = set()
    now = utcnow()
    for conn in session.scalars(select(LmsConnection).where(LmsConnection.enabled.is_(True))):
        since = (conn.enrollments_checked_at or conn.enabled_at or now) - ENROLLMENT_LOOKBACK
        rows = session.execute(
            select(Enrollment.course_id, Enrollment.person_id).distinct()
            .join(StudentLink, StudentLink.person_id == Enrollment.person_id)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Course.platform_id == conn.platform_id, Enrollment.role == "student",
                   Enrollment.state == "active", Enrollment.updated_at >= since,
                   StudentLink.student_id.in_(_plan_students(session))))
        out.update((c, p) for c, p in rows)
        conn.enrollments_checked_at = now
    return sorted(out)


def sweep_courses(session: Session, platform_ids: list[int] | None = None) -> list[int]:
    """Courses to reconcile: with a plan student, or with a value Caseload set. ``platform_ids`` None: every
    switched-on LMS; the preview passes the platform it is about to switch on."""
    platforms = _enabled_platforms(session) if platform_ids is None else platform_ids
    if not platforms:
        return []
    with_plans = set(session.scalars(
        select(Enrollment.course_id).distinct()
        .join(StudentLink, StudentLink.person_id == Enrollment.person_id)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Course.platform_id.in_(platforms), Enrollment.role == "student", Enrollment.state == "active",
               StudentLink.student_id.in_(_plan_students(session)))))
    with_history = set(session.scalars(
        select(LmsActionLedger.course_id).distinct()
        .where(LmsActionLedger.platform_id.in_(platforms), LmsActionLedger.course_id.is_not(None))))
    return sorted(with_plans | {c for c in with_history if c is not None})


QUIZ_EVENT_TYPES = tuple(CANVAS_QUIZ_EVENTS | set(MOODLE_QUIZ_EVENTS.values()))


def quiz_event_courses(session: Session) -> list[tuple[int, str]]:
    """(course_id, event label) of courses whose quizzes changed according to webhook events received since the
    last look (the inbox keeps them, as events the roster does not apply); advances the watermark. The caller
    commits. Courses Caseload does not know are skipped: nobody with a plan is in them yet."""
    out: dict[int, str] = {}
    now = utcnow()
    for conn in session.scalars(select(LmsConnection).where(LmsConnection.enabled.is_(True))):
        since = (conn.events_checked_at or conn.enabled_at or now) - ENROLLMENT_LOOKBACK
        rows = session.execute(select(InboundEvent.source, InboundEvent.event_type, InboundEvent.payload)
                               .where(InboundEvent.platform_id == conn.platform_id,
                                      InboundEvent.event_type.in_(QUIZ_EVENT_TYPES),
                                      InboundEvent.received_at >= since))
        lms_ids: dict[str, str] = {}
        for source, event_type, payload in rows:
            lms_course = quiz_event_course(source, event_type, payload)
            if lms_course is not None:
                lms_ids.setdefault(lms_course, event_type)
        if lms_ids:
            for course_id, lms_course_id in session.execute(
                    select(Course.id, Course.lms_course_id).where(Course.platform_id == conn.platform_id,
                                                                  Course.lms_course_id.in_(list(lms_ids)))):
                out[course_id] = lms_ids[str(lms_course_id)]
        conn.events_checked_at = now
    return sorted(out.items())

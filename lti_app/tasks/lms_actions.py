"""Celery tasks that apply accommodations in the LMS (registered with ``@shared_task``; see ``__init__.py``).

- ``caseload.lms.reconcile_course``: one course (optionally only some students). An LMS that is down is retried
  with a growing delay (the work is delayed, never lost; the nightly sweep repeats anything still missing); so is
  a database that cannot be reached (a crash or restart mid-sweep): without that the failed task would be
  acknowledged and its course left to the next night.
- ``caseload.lms.apply_student``: after a plan version is activated, every course of the student.
- ``caseload.lms.enrollments``: beat, every few minutes: plan students newly active in a course, courses whose
  quizzes changed, and requests left pending (``services/lms_actions/requests``: every reconcile asked for is
  recorded in PostgreSQL before its message is sent, so a Redis that loses its data delays the work minutes, not
  until the nightly sweep).
- ``caseload.lms.sweep``: beat, nightly (02:15 district time): every course with a plan student, staggered.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from celery.schedules import crontab
from sqlalchemy.exc import OperationalError

from lti_app.db import utcnow
from lti_app.services.dispatch import LMS_APPLY_STUDENT, LMS_ENROLLMENTS, LMS_RECONCILE_COURSE, LMS_SWEEP
from lti_app.services.lms_actions import requests, triggers
from lti_app.services.lms_actions.reconcile import LmsUnavailable, reconcile_course
from lti_app.services.uow import UnitOfWork

log = logging.getLogger(__name__)

SWEEP_SPREAD_SECONDS = 2 * 3600
"""The nightly sweep's courses are spread over two hours: the LMS sees a trickle, not a burst."""
MAX_RETRIES = 8
LMS_RETRY_MAX_SECONDS = int(requests.LMS_RETRY_MAX.total_seconds())
"""Shared with ``requests.stale``: a course waiting on a down LMS is queued again only once its retry is overdue."""
LONGEST_COUNTDOWN_SECONDS = max(SWEEP_SPREAD_SECONDS, LMS_RETRY_MAX_SECONDS)
"""The longest delay these tasks are queued with; Redis's visibility timeout must exceed it (``broker_resilience``),
or Redis hands a waiting message to a second worker while the first still holds it."""
DATABASE_RETRY_SECONDS = 5
"""First delay after the database could not be reached; doubled each time (a restart takes seconds)."""


def _retry_when_the_database_is_down(task: Any, exc: OperationalError, what: str) -> Exception:
    """The database went away under the task (``OperationalError``: connection refused, closed mid-statement):
    queue the task again with a growing delay instead of failing, which would acknowledge its message and lose it.
    Anything already committed stays; the redo resumes from there (``reconcile``'s module docstring)."""
    if task.request.is_eager or task.request.retries >= MAX_RETRIES:
        raise exc
    log.warning("%s: the database could not be reached; retrying (%s)", what, type(exc.orig).__name__)
    return task.retry(countdown=min(600, DATABASE_RETRY_SECONDS * 2 ** task.request.retries))  # type: ignore[no-any-return]


def beat_schedule(enrollment_poll_seconds: float = 300.0) -> dict[str, dict[str, Any]]:
    """Nightly at 02:15 in the district's zone (Celery's ``timezone`` is ``CASELOAD_TIMEZONE``, so a crontab is
    district wall-clock time, the same hour on both sides of a daylight-saving change), and the enrollment look-up."""
    return {
        "lms-sweep": {"task": LMS_SWEEP, "schedule": crontab(hour=2, minute=15)},
        "lms-enrollments": {"task": LMS_ENROLLMENTS, "schedule": enrollment_poll_seconds},
    }


@shared_task(name=LMS_RECONCILE_COURSE, bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def reconcile_course_task(self: Any, course_id: int, person_ids: list[int] | None = None, reason: str = "sweep",
                          event: str = "") -> dict[str, Any]:
    try:
        with UnitOfWork() as uow:
            try:
                result = reconcile_course(uow.session, course_id, person_ids=person_ids, reason=reason, event=event)
            except LmsUnavailable:
                if self.request.is_eager or self.request.retries >= MAX_RETRIES:
                    log.warning("LMS reconcile course=%s: the LMS is unavailable; the nightly sweep repeats it",
                                course_id)
                    return {"status": "unavailable"}
                raise self.retry(countdown=min(LMS_RETRY_MAX_SECONDS, 30 * 2 ** self.request.retries)) from None
    except OperationalError as exc:
        raise _retry_when_the_database_is_down(self, exc, f"LMS reconcile course={course_id}") from None
    return {"status": result.status, "reads": result.reads, "writes": result.writes, "changes": result.applied}


@shared_task(name=LMS_APPLY_STUDENT, bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def apply_student_task(self: Any, student_id: int, reason: str = "plan", version_id: int | None = None) -> int:
    try:
        with UnitOfWork() as uow:
            pairs = triggers.student_courses(uow.session, student_id)
            for course_id, person_id in pairs:
                requests.record(uow.session, course_id, [person_id], reason)
            uow.commit()
    except OperationalError as exc:
        raise _retry_when_the_database_is_down(self, exc, f"LMS apply student={student_id}") from None
    for course_id, person_id in pairs:
        reconcile_course_task.delay(course_id, [person_id], reason, f"plan_version:{version_id}" if version_id else "")
    return len(pairs)


@shared_task(name=LMS_ENROLLMENTS, ignore_result=True)
def enrollments_task() -> int:
    """Every few minutes: plan students newly active in a course, and courses whose quizzes changed (quiz events
    from Canvas Live Events or the Moodle plugin), and requests left pending longer than ``requests.STALE`` (their
    message was lost with Redis's data). Each is recorded in the same transaction as the watermarks it follows from,
    before it is queued. Returns how many reconciles were queued."""
    with UnitOfWork() as uow:
        pairs = triggers.new_enrollments(uow.session)
        quiz_courses = triggers.quiz_event_courses(uow.session)
        lost = requests.stale(uow.session)
        by_course: dict[int, list[int]] = {}
        for course_id, person_id in pairs:
            by_course.setdefault(course_id, []).append(person_id)
        changed = dict(quiz_courses)
        for course_id, person_ids in by_course.items():
            if course_id not in changed:
                requests.record(uow.session, course_id, person_ids, "enrollment")
        for course_id, _event in quiz_courses:
            requests.record(uow.session, course_id, None, "quiz")
        uow.commit()
    for course_id, person_ids in by_course.items():
        if course_id not in changed:
            reconcile_course_task.delay(course_id, person_ids, "enrollment", "")
    for course_id, event in quiz_courses:
        reconcile_course_task.delay(course_id, None, "quiz", event)
    fresh = {c for c in by_course if c not in changed} | changed.keys()
    again = [r for r in lost if r.course_id not in fresh]
    for r in again:
        log.info("LMS reconcile course=%s queued again: its request was still pending", r.course_id)
        reconcile_course_task.delay(r.course_id, r.person_ids, r.reason, "")
    return len(by_course.keys() - changed.keys()) + len(quiz_courses) + len(again)


@shared_task(name=LMS_SWEEP, bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def sweep_task(self: Any) -> int:
    try:
        with UnitOfWork() as uow:
            course_ids = triggers.sweep_courses(uow.session)
            step = SWEEP_SPREAD_SECONDS / max(len(course_ids), 1)
            now = utcnow()
            for i, course_id in enumerate(course_ids):
                requests.record(uow.session, course_id, None, "sweep", now + dt.timedelta(seconds=int(i * step)))
            uow.commit()
    except OperationalError as exc:
        raise _retry_when_the_database_is_down(self, exc, "LMS sweep") from None
    for i, course_id in enumerate(course_ids):
        reconcile_course_task.apply_async(args=(course_id, None, "sweep", ""), countdown=int(i * step))
    log.info("LMS sweep queued %s courses", len(course_ids))
    return len(course_ids)

"""LMS work asked for and not done yet, kept in PostgreSQL (issue #12 "Reliability": queued work survives Redis
losing its data).

A reconcile request (a plan activation's ``apply_student``, a new enrollment, a quiz event, *Apply now*, the nightly
sweep's spread) is recorded on the course's backlog row (``LmsCourseBacklog.requested_*``) in the same transaction as
what it follows from, *before* its Celery message is sent (``record``). The reconcile that does it clears it
(``clear``), unless a newer request arrived meanwhile (compared by the recorded instant, with a conditional UPDATE,
so a request committed while the reconcile ran is never erased). The 5-minute beat job queues again every request
older than ``STALE`` (``stale``): a Redis restarted without persistence loses its messages, not the work.

It does not fight the backoff: a course *waiting* on an LMS that is down is queued again only when its retry is
overdue (the task's longest retry delay and ``STALE`` have passed since its last attempt, so the retry message was
lost or the retries ran out); one waiting for an administrator's new authorization is left to the nightly sweep.
Queuing work that is still queued is harmless: the reconcile is idempotent and one runs per course at a time, so a
duplicate only reads the course again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import Course, LmsConnection, LmsCourseBacklog

STALE = dt.timedelta(minutes=10)
"""A request still there this long after it was due is taken as lost with its message: the beat job queues it again.
Two beat periods: a reconcile queued normally has started by then (or is running, and a duplicate only re-reads)."""
LMS_RETRY_MAX = dt.timedelta(hours=1)
"""The reconcile task's longest delay between two attempts on an LMS that is down (``tasks.lms_actions``)."""
SWEEP = "sweep"


@dataclass(frozen=True)
class Request:
    course_id: int
    person_ids: list[int] | None
    reason: str


@dataclass(frozen=True)
class Seen:
    """A course's pending request as a reconcile found it when it started (``seen``)."""

    requested_at: dt.datetime
    person_ids: list[int] | None


def record(session: Session, course_id: int, person_ids: Sequence[int] | None, reason: str,
           due: dt.datetime | None = None) -> None:
    """Record that ``reason`` asked for a reconcile of the course (``person_ids`` None: every student), due at
    ``due`` (now by default). Merged with a pending one: the students add up (None wins), the later instant and a
    reason other than the sweep's (which trusts recent checks) are kept. The caller commits, then queues."""
    row = session.scalar(select(LmsCourseBacklog).where(LmsCourseBacklog.course_id == course_id).with_for_update())
    if row is None:
        course = session.get(Course, course_id)
        if course is None:
            return
        row = LmsCourseBacklog(platform_id=course.platform_id, course_id=course_id, waiting_reason="", attempts=0,
                               failed_changes=0, last_error="", requested_reason="")
        session.add(row)
    at = due or utcnow()
    if row.requested_at is None:
        row.requested_at, row.requested_reason = at, reason
        row.requested_person_ids = None if person_ids is None else sorted(set(person_ids))
        return
    if row.requested_person_ids is not None:
        row.requested_person_ids = (None if person_ids is None
                                    else sorted(set(row.requested_person_ids) | set(person_ids)))
    row.requested_at = max(_aware(row.requested_at), at)
    if reason != SWEEP or not row.requested_reason:
        row.requested_reason = reason


def seen(session: Session, course_id: int) -> Seen | None:
    """The course's pending request now (a reconcile reads it before it reads anything else)."""
    row = session.execute(select(LmsCourseBacklog.requested_at, LmsCourseBacklog.requested_person_ids)
                          .where(LmsCourseBacklog.course_id == course_id)).first()
    if row is None or row.requested_at is None:
        return None
    return Seen(_aware(row.requested_at), None if row.requested_person_ids is None else list(row.requested_person_ids))


def clear(session: Session, course_id: int, found: Seen | None, started_at: dt.datetime,
          person_ids: Sequence[int] | None) -> bool:
    """A reconcile of the course (of ``person_ids``; None: every student) that started at ``started_at`` and found
    ``found`` pending has done its work: clear the request, unless it is not done by this run (other students; due
    later than the run started) or a newer one arrived since (its instant changed). The caller commits."""
    if found is None or found.requested_at > started_at:
        return False
    if found.person_ids is None and person_ids is not None:
        return False
    if found.person_ids is not None and person_ids is not None and not set(found.person_ids) <= set(person_ids):
        return False
    done = session.execute(
        update(LmsCourseBacklog)
        .where(LmsCourseBacklog.course_id == course_id, LmsCourseBacklog.requested_at == found.requested_at)
        .values(requested_at=None, requested_reason="", requested_person_ids=None)
        .execution_options(synchronize_session=False))
    return bool(getattr(done, "rowcount", 0))


def stale(session: Session, now: dt.datetime | None = None) -> list[Request]:
    """Requests on switched-on LMSs still pending ``STALE`` after they were due, except a course waiting on the
    LMS whose retry is not overdue yet or that waits for a new authorization. Each is marked as requested again now
    (so it is not queued again before ``STALE`` has passed once more); the caller commits, then queues them."""
    now = now or utcnow()
    rows = session.scalars(
        select(LmsCourseBacklog)
        .join(LmsConnection, and_(LmsConnection.platform_id == LmsCourseBacklog.platform_id,
                                  LmsConnection.enabled.is_(True)))
        .where(LmsCourseBacklog.requested_at.is_not(None), LmsCourseBacklog.requested_at < now - STALE)
        .where(or_(LmsCourseBacklog.waiting_since.is_(None),
                   and_(LmsCourseBacklog.waiting_reason == "down",
                        or_(LmsCourseBacklog.last_attempt_at.is_(None),
                            LmsCourseBacklog.last_attempt_at < now - LMS_RETRY_MAX - STALE))))
        .order_by(LmsCourseBacklog.requested_at, LmsCourseBacklog.id)
        .with_for_update(of=LmsCourseBacklog, skip_locked=True)).all()
    out = []
    for row in rows:
        out.append(Request(row.course_id, None if row.requested_person_ids is None else list(row.requested_person_ids),
                           row.requested_reason or SWEEP))
        row.requested_at = now
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

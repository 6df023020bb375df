"""The administrator's page for accommodations applied in the LMS: each platform's connection (kind, health,
scopes), the switch, "Test connection", the preview of what switching on would change, and "Apply now".

The preview is the reconcile in ``dry_run`` over every course with a plan student: it reads the LMS (quizzes and
what each student has) and writes nothing, neither to the LMS nor to the ledger. Switching on is refused until a
connection test has passed, so a mistyped token is found before the first sweep, not by it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations.canvas.client import CanvasError, ReauthorizationRequired
from lti_app.auth import Viewer
from lti_app.db import utcnow
from lti_app.models import Course, LmsActionLedger, LmsConnection, LmsQuiz, LmsQuizState, Person, Platform, Student
from lti_app.services.access.audit_log import record_admin
from lti_app.services.dispatch import LMS_RECONCILE_COURSE, enqueue
from lti_app.services.lms_actions import connections, requests, triggers
from lti_app.services.lms_actions.reconcile import Change, LmsUnavailable, reconcile_course

log = logging.getLogger(__name__)

PREVIEW_MAX_COURSES = 200
"""The preview reads the LMS course by course; beyond this many courses it shows the first ones and says so."""


class SwitchRefused(ValueError):
    """The switch cannot be turned on (no connection, or its test fails); the message says what to do."""


@dataclass
class PlatformCard:
    platform: Platform
    connection: LmsConnection | None
    changes_24h: int = 0
    failed_now: int = 0


def overview(session: Session, platform_ids: list[int]) -> list[PlatformCard]:
    cards = []
    since = utcnow() - dt.timedelta(hours=24)
    # Canvas and Moodle platforms, and any other platform that has a connection: the connection's kind says how
    # Caseload talks to the LMS's API (the practice LMS is a generic LTI platform whose quizzes answer Moodle's
    # web service functions).
    connected = select(LmsConnection.platform_id)
    for platform in session.scalars(select(Platform).where(Platform.id.in_(platform_ids),
                                                           Platform.lms.in_(("canvas", "moodle"))
                                                           | Platform.id.in_(connected))
                                    .order_by(Platform.name)):
        conn = connections.connection_for(session, platform.id)
        card = PlatformCard(platform, conn)
        if conn is not None:
            card.changes_24h = session.scalar(select(func.count(LmsActionLedger.id)).where(
                LmsActionLedger.platform_id == platform.id, LmsActionLedger.outcome.in_(("applied", "withdrawn")),
                LmsActionLedger.at >= since)) or 0
            card.failed_now = session.scalar(select(func.count(LmsQuizState.id)).where(
                LmsQuizState.status == "failed",
                LmsQuizState.quiz_id.in_(select(LmsQuiz.id).where(LmsQuiz.platform_id == platform.id)))) or 0
        cards.append(card)
    return cards


def test_connection(session: Session, conn: LmsConnection) -> tuple[bool, str]:
    """Moodle: the token and the service's functions; Canvas: the refresh token still gives an access token."""
    if conn.kind == connections.MOODLE:
        ok, detail = connections.check_moodle(session, conn)
    else:
        client = connections.canvas_client(conn)
        try:
            client.check_authorization()
        except ReauthorizationRequired as exc:
            connections.mark_health(conn, "reauthorize", str(exc))
            ok, detail = False, str(exc)
        except CanvasError as exc:
            connections.mark_health(conn, "down", str(exc))
            ok, detail = False, str(exc)
        else:
            connections.mark_health(conn, "ok", "Canvas gave Caseload an access token.")
            ok, detail = True, conn.health_detail
    session.commit()
    return ok, detail


def switch(session: Session, viewer: Viewer, platform_id: int, on: bool) -> None:
    conn = connections.connection_for(session, platform_id)
    if conn is None:
        raise SwitchRefused("This LMS has no connection yet: connect it first (see the README, “Accommodations "
                            "applied in the LMS”).")
    if on:
        ok, detail = test_connection(session, conn)
        if not ok:
            raise SwitchRefused(f"The connection test failed, so applying stays off: {detail}")
    connections.set_enabled(session, conn, on, viewer.person_id)
    if on and conn.enrollments_checked_at is None:
        conn.enrollments_checked_at = utcnow()
    record_admin(session, viewer.person_id, "web", "lms_actions_on" if on else "lms_actions_off",
                 target_type="platform", target_id=platform_id,
                 summary=f"Accommodations applied in the LMS switched {'on' if on else 'off'}")
    session.commit()
    log.info("LMS actions platform=%s switched %s by %s", platform_id, "on" if on else "off", viewer.person_id)


def apply_now(session: Session, platform_id: int) -> int:
    """Queue a reconcile of every course of the platform with a plan student (the nightly sweep, now)."""
    course_ids = triggers.sweep_courses(session, [platform_id])
    for course_id in course_ids:  # kept in PostgreSQL too: a Redis that loses its data loses no work
        requests.record(session, course_id, None, "manual")
    # End the read before queueing: in the embedded (eager) mode the reconciles run right here, in sessions of their
    # own, and may call this very server's LMS (the practice LMS) over HTTP.
    session.commit()
    for course_id in course_ids:
        enqueue(LMS_RECONCILE_COURSE, course_id, None, "manual", "")
    return len(course_ids)


@dataclass
class PreviewLine:
    course: Course
    changes: list[tuple[Change, str]] = field(default_factory=list)
    """(change, student name)"""
    status: str = "done"
    detail: str = ""


@dataclass
class Preview:
    lines: list[PreviewLine]
    students: set[int]
    truncated: bool
    reads: int


def preview(session: Session, platform_id: int) -> Preview:
    course_ids = triggers.sweep_courses(session, [platform_id])
    truncated = len(course_ids) > PREVIEW_MAX_COURSES
    out: list[PreviewLine] = []
    students: set[int] = set()
    reads = 0
    for course_id in course_ids[:PREVIEW_MAX_COURSES]:
        course = session.get(Course, course_id)
        assert course is not None
        try:
            result = reconcile_course(session, course_id, reason="preview", dry_run=True)
        except LmsUnavailable as exc:
            out.append(PreviewLine(course, status="down", detail=str(exc)))
            session.rollback()
            continue
        reads += result.reads
        line = PreviewLine(course, status=result.status, detail=result.detail)
        ids = {c.student_id for c in result.changes}
        names = {s.id: s.display_name for s in session.scalars(select(Student).where(Student.id.in_(ids)))
                 } if ids else {}
        for change in result.changes:
            line.changes.append((change, names.get(change.student_id, f"student {change.student_id}")))
            students.add(change.student_id)
        if line.changes or line.status != "done":
            out.append(line)
    return Preview(out, students, truncated, reads)


def person_names(session: Session, ids: set[int]) -> dict[int, str]:
    return {p.id: p.display_name for p in session.scalars(select(Person).where(Person.id.in_(ids)))} if ids else {}

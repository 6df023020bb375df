"""The LMS work backlog (issue #12: "an LMS that is down delays, never loses, the work; the sync health page shows
it"): per course, whether the last reconcile could not reach the LMS (waiting, since when, how many attempts) or
ran but had some students' changes refused (failing, since when), and when one last ran through.

``reconcile_course`` records each outcome here (``waiting`` / ``ran``); the sync health page reads every platform's
backlog in a fixed number of statements (``backlogs``), whatever the number of platforms or courses. Errors are
kept and shown in words, without tokens or URLs' query strings (``in_words``)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.domain.lms_actions import Outcome
from lti_app.models import Course, LmsActionLedger, LmsConnection, LmsCourseBacklog

BACKLOG_COURSE_LIMIT = 50
"""Courses listed per platform (waiting first, then failing, oldest first); the totals count them all."""
HEALTH_WORDS = {"ok": "working", "down": "down: Caseload could not reach the LMS",
                "reauthorize": "needs a new authorization by an LMS administrator",
                "unknown": "not checked yet"}
WAITING_WORDS = {"down": "the LMS could not be reached", "reauthorize": "the LMS refused Caseload's authorization"}

_SECRETS = [
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [hidden]"),
    (re.compile(r"(?i)\b(wstoken|access_token|refresh_token|token|client_secret|code|key|password)=([^&\s]+)"),
     r"\1=[hidden]"),
    (re.compile(r"(?i)\b(https?://[^\s?#]+)\?[^\s#)]*"), r"\1"),
]


def in_words(error: str | None, limit: int = 500) -> str:
    """An error as it can be shown and stored: tokens and query strings removed, one line, at most ``limit``
    characters. The messages the LMS clients raise already avoid them; this is the belt to their braces."""
    text = " ".join((error or "").split())
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _row(session: Session, platform_id: int, course_id: int) -> LmsCourseBacklog:
    row = session.scalar(select(LmsCourseBacklog).where(LmsCourseBacklog.course_id == course_id))
    if row is None:
        row = LmsCourseBacklog(platform_id=platform_id, course_id=course_id, waiting_reason="", attempts=0,
                               failed_changes=0, last_error="")
        session.add(row)
    return row


def waiting(session: Session, platform_id: int, course_id: int, reason: str, error: str) -> None:
    """A reconcile could not run: the LMS is down (the task retries with backoff, the nightly sweep repeats it) or
    refused Caseload's authorization (until an administrator authorizes again). The caller commits."""
    now = utcnow()
    row = _row(session, platform_id, course_id)
    if row.waiting_since is None:
        row.waiting_since, row.attempts = now, 0
    row.waiting_reason, row.attempts = reason, (row.attempts or 0) + 1
    row.last_error, row.last_attempt_at = in_words(error), now


def ran(session: Session, platform_id: int, course_id: int, failed_changes: int, error: str = "") -> None:
    """A reconcile ran through: nothing waits any more; ``failed_changes`` the LMS refused (per student) keep the
    course *failing* until a run has none. The caller commits."""
    now = utcnow()
    row = _row(session, platform_id, course_id)
    row.waiting_since, row.waiting_reason, row.attempts = None, "", 0
    row.last_attempt_at, row.last_ok_at = now, now
    row.failed_changes = failed_changes
    if failed_changes:
        row.failing_since = row.failing_since or now
        row.last_error = in_words(error) or f"The LMS refused {failed_changes} change(s); see the course's ledger."
    else:
        row.failing_since, row.last_error = None, ""


@dataclass(frozen=True)
class CourseBacklog:
    course_id: int
    title: str
    waiting_since: dt.datetime | None
    waiting_reason: str
    attempts: int
    failing_since: dt.datetime | None
    failed_changes: int
    last_error: str
    last_attempt_at: dt.datetime | None
    last_ok_at: dt.datetime | None

    @property
    def state(self) -> str:
        return "waiting" if self.waiting_since is not None else "failing"

    @property
    def since(self) -> dt.datetime | None:
        return self.waiting_since or self.failing_since

    @property
    def waiting_words(self) -> str:
        return WAITING_WORDS.get(self.waiting_reason, self.waiting_reason)


@dataclass
class LmsBacklog:
    """One platform's LMS accommodations connection and its work backlog."""

    platform_id: int
    kind: str
    enabled: bool
    health: str
    health_detail: str
    checked_at: dt.datetime | None
    waiting: int = 0
    failing: int = 0
    oldest_waiting: dt.datetime | None = None
    last_applied_at: dt.datetime | None = None
    """The last change Caseload made in this LMS (the ledger's newest applied or withdrawn value)."""
    last_ok_at: dt.datetime | None = None
    """The last reconcile of any course that ran through."""
    courses: list[CourseBacklog] = field(default_factory=list)

    @property
    def health_words(self) -> str:
        return HEALTH_WORDS.get(self.health, self.health)

    @property
    def last_error(self) -> str:
        """The connection's own error, else the newest course error, in words."""
        if self.health != "ok" and self.health_detail:
            return in_words(self.health_detail)
        newest = max((c for c in self.courses if c.last_error), key=lambda c: c.last_attempt_at or dt.datetime.min
                     .replace(tzinfo=dt.UTC), default=None)
        return newest.last_error if newest else ""


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def backlogs(session: Session, platform_ids: list[int]) -> dict[int, LmsBacklog]:
    """The backlog of every platform with an LMS accommodations connection, in four statements whatever the number
    of platforms and courses: the connections, the totals, the courses waiting or failing (listed up to
    ``BACKLOG_COURSE_LIMIT`` per platform) and the newest applied change."""
    if not platform_ids:
        return {}
    out = {c.platform_id: LmsBacklog(c.platform_id, c.kind, bool(c.enabled), c.health or "unknown",
                                     c.health_detail or "", _aware(c.checked_at))
           for c in session.scalars(select(LmsConnection).where(LmsConnection.platform_id.in_(platform_ids)))}
    if not out:
        return out
    ids = sorted(out)
    open_row = or_(LmsCourseBacklog.waiting_since.is_not(None), LmsCourseBacklog.failing_since.is_not(None))
    for platform_id, waiting_n, failing_n, oldest, last_ok in session.execute(
            select(LmsCourseBacklog.platform_id,
                   func.count(LmsCourseBacklog.waiting_since),
                   func.sum(case((and_(LmsCourseBacklog.waiting_since.is_(None),
                                       LmsCourseBacklog.failing_since.is_not(None)), 1), else_=0)),
                   func.min(LmsCourseBacklog.waiting_since), func.max(LmsCourseBacklog.last_ok_at))
            .where(LmsCourseBacklog.platform_id.in_(ids)).group_by(LmsCourseBacklog.platform_id)):
        item = out[platform_id]
        item.waiting, item.failing = int(waiting_n or 0), int(failing_n or 0)
        item.oldest_waiting, item.last_ok_at = _aware(oldest), _aware(last_ok)
    ranked = (select(LmsCourseBacklog.id, func.row_number().over(
        partition_by=LmsCourseBacklog.platform_id,
        order_by=(LmsCourseBacklog.waiting_since.is_(None), func.coalesce(LmsCourseBacklog.waiting_since,
                                                                          LmsCourseBacklog.failing_since),
                  LmsCourseBacklog.id)).label("n"))
              .where(LmsCourseBacklog.platform_id.in_(ids), open_row).subquery())
    rows = session.execute(
        select(LmsCourseBacklog, Course.title, Course.lti_context_id)
        .join(ranked, and_(ranked.c.id == LmsCourseBacklog.id, ranked.c.n <= BACKLOG_COURSE_LIMIT))
        .join(Course, Course.id == LmsCourseBacklog.course_id)
        .order_by(LmsCourseBacklog.platform_id, ranked.c.n)).all()
    for row, title, context_id in rows:
        out[row.platform_id].courses.append(CourseBacklog(
            row.course_id, title or context_id or f"course {row.course_id}", _aware(row.waiting_since),
            row.waiting_reason, row.attempts, _aware(row.failing_since), row.failed_changes, in_words(row.last_error),
            _aware(row.last_attempt_at), _aware(row.last_ok_at)))
    for platform_id, last in session.execute(
            select(LmsActionLedger.platform_id, func.max(LmsActionLedger.at))
            .where(LmsActionLedger.platform_id.in_(ids),
                   LmsActionLedger.outcome.in_((Outcome.APPLIED.value, Outcome.WITHDRAWN.value)))
            .group_by(LmsActionLedger.platform_id)):
        out[platform_id].last_applied_at = _aware(last)
    return out

"""The sync health page's data: per platform, inbox counts, parked events, the courses whose NRPS pulls failed or
are oldest, and the last NRPS and OneRoster runs, in a fixed number of queries per platform."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, InboundEvent, Platform, SyncRun
from lti_app.services.roster.oneroster import describe
from lti_app.services.roster.reconcile import RunStatus, _aware

HEALTH_COURSE_LIMIT = 50
HEALTH_PARKED_LIMIT = 50
HEALTH_RUN_LIMIT = 10


@dataclass(frozen=True)
class RunView:
    id: int
    kind: str
    trigger: str
    course_id: int | None
    course_title: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    added: int
    updated: int
    removed: int
    error: str | None


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    source: str
    event_type: str
    received_at: dt.datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class CourseSync:
    course_id: int
    title: str
    lti_context_id: str
    last_roster_sync_at: dt.datetime | None
    last_run: RunView | None


@dataclass(frozen=True)
class PlatformHealth:
    platform_id: int
    name: str
    lms: str
    status: str
    last_event_at: dt.datetime | None
    events: dict[str, int]
    """applied / waiting (pending + waiting) / failed (parked) / ignored."""
    last_run: RunView | None
    recent_runs: list[RunView]
    parked: list[ParkedEvent]
    parked_total: int
    courses: list[CourseSync]
    courses_total: int
    oneroster: dict[str, Any] | None
    last_oneroster_run: RunView | None


def _run_view(run: SyncRun, titles: dict[int, str]) -> RunView:
    return RunView(id=run.id, kind=run.kind, trigger=run.trigger, course_id=run.course_id,
                   course_title=titles.get(run.course_id) if run.course_id else None,
                   started_at=_aware(run.started_at),
                   finished_at=_aware(run.finished_at) if run.finished_at else None, status=run.status,
                   added=run.added, updated=run.updated, removed=run.removed, error=run.error)


def sync_health(session: Session, platform_ids: Sequence[int]) -> list[PlatformHealth]:
    """Everything the sync health page shows, per platform, in a fixed number of queries per platform."""
    out: list[PlatformHealth] = []
    for platform in session.scalars(select(Platform).where(Platform.id.in_(platform_ids)).order_by(Platform.name)):
        counts = dict.fromkeys(("applied", "waiting", "failed", "ignored"), 0)
        for status, n in session.execute(select(InboundEvent.status, func.count())
                                         .where(InboundEvent.platform_id == platform.id)
                                         .group_by(InboundEvent.status)):
            key = "waiting" if status in ("pending", "waiting") else status
            counts[key] = counts.get(key, 0) + int(n)
        last_event_at = session.scalar(select(func.max(InboundEvent.received_at))
                                       .where(InboundEvent.platform_id == platform.id))
        parked_rows = session.scalars(select(InboundEvent)
                                      .where(InboundEvent.platform_id == platform.id, InboundEvent.status == "failed")
                                      .order_by(InboundEvent.received_at.desc()).limit(HEALTH_PARKED_LIMIT))
        parked = [ParkedEvent(id=e.id, source=e.source, event_type=e.event_type, received_at=_aware(e.received_at),
                              attempts=e.attempts, last_error=e.last_error) for e in parked_rows]
        courses_q = select(Course).where(Course.platform_id == platform.id, Course.nrps_url.is_not(None))
        courses_total = session.scalar(select(func.count()).select_from(courses_q.subquery())) or 0
        last_run_ids = (select(func.max(SyncRun.id)).where(SyncRun.platform_id == platform.id,
                                                           SyncRun.course_id.is_not(None))
                        .group_by(SyncRun.course_id))
        last_course_runs = {r.course_id: r
                            for r in session.scalars(select(SyncRun).where(SyncRun.id.in_(last_run_ids)))}
        # Problems first (last run failed), then the courses synced longest ago.
        failed_ids = [cid for cid, r in last_course_runs.items() if r.status == RunStatus.FAILED]
        courses = list(session.scalars(courses_q.order_by(
            case((Course.id.in_(failed_ids or [0]), 0), else_=1), Course.last_roster_sync_at.asc().nulls_first(),
            Course.title).limit(HEALTH_COURSE_LIMIT)))
        titles = {c.id: c.title or c.lti_context_id for c in courses}
        recent = list(session.scalars(select(SyncRun).where(SyncRun.platform_id == platform.id)
                                      .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
                                      .limit(HEALTH_RUN_LIMIT)))
        missing = {r.course_id for r in recent if r.course_id and r.course_id not in titles}
        if missing:
            titles.update({c.id: c.title or c.lti_context_id
                           for c in session.scalars(select(Course).where(Course.id.in_(missing)))})
        recent_views = [_run_view(r, titles) for r in recent]
        oneroster_runs = [r for r in recent if r.kind.startswith("oneroster")]
        out.append(PlatformHealth(
            platform_id=platform.id, name=platform.name, lms=platform.lms, status=platform.status,
            last_event_at=_aware(last_event_at) if last_event_at else None, events=counts,
            last_run=recent_views[0] if recent_views else None, recent_runs=recent_views, parked=parked,
            parked_total=counts.get("failed", 0),
            courses=[CourseSync(course_id=c.id, title=c.title or c.lti_context_id, lti_context_id=c.lti_context_id,
                                last_roster_sync_at=_aware(c.last_roster_sync_at) if c.last_roster_sync_at else None,
                                last_run=_run_view(last_course_runs[c.id], titles) if c.id in last_course_runs
                                else None) for c in courses],
            courses_total=int(courses_total), oneroster=describe(platform),
            last_oneroster_run=_run_view(oneroster_runs[0], titles) if oneroster_runs else None,
        ))
    return out

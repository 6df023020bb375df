"""Celery tasks for roster reconciliation (registered with ``@shared_task``; see ``lti_app/tasks/__init__.py``).

- ``caseload.reconcile.course``: one course's NRPS reconcile (after a launch, from "Sync now", or scheduled).
- ``caseload.reconcile.schedule_nrps``: the beat entry: every course with an NRPS URL, spread over the interval so
  the LMS sees a steady trickle rather than a burst (``settings.reconcile_interval_seconds``).
- ``caseload.reconcile.oneroster``: one platform's OneRoster pull (delta, or full when due).
- ``caseload.reconcile.schedule_oneroster``: the beat entry: every platform with OneRoster configured.

Each task opens its own unit of work; the services commit. In eager mode (no broker) countdowns are ignored and
the tasks run in-process one after another.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from flask import current_app

from lti_app.services.dispatch import (
    RECONCILE_COURSE,
    RECONCILE_ONEROSTER,
    RECONCILE_SCHEDULE_NRPS,
    RECONCILE_SCHEDULE_ONEROSTER,
)
from lti_app.services.roster.oneroster import configured_platforms, pull
from lti_app.services.roster.reconcile import courses_to_reconcile, reconcile_course, schedule_plan
from lti_app.services.uow import UnitOfWork

log = logging.getLogger(__name__)

COURSE_TASK = RECONCILE_COURSE
SCHEDULE_NRPS_TASK = RECONCILE_SCHEDULE_NRPS
ONEROSTER_TASK = RECONCILE_ONEROSTER
SCHEDULE_ONEROSTER_TASK = RECONCILE_SCHEDULE_ONEROSTER


def beat_schedule(interval_seconds: int) -> dict[str, dict[str, Any]]:
    """The beat entries of roster reconciliation, for ``lti_app/tasks/__init__.py`` to merge into its schedule."""
    return {
        "reconcile-nrps": {"task": SCHEDULE_NRPS_TASK, "schedule": float(interval_seconds)},
        "reconcile-oneroster": {"task": SCHEDULE_ONEROSTER_TASK, "schedule": float(interval_seconds)},
    }


@shared_task(name=COURSE_TASK, ignore_result=True)
def reconcile_course_task(course_id: int, trigger: str = "schedule") -> dict[str, Any]:
    with UnitOfWork() as uow:
        outcome = reconcile_course(uow.session, course_id, trigger=trigger)
    return {"status": outcome.status, "added": outcome.added, "updated": outcome.updated, "removed": outcome.removed}


@shared_task(name=SCHEDULE_NRPS_TASK, ignore_result=True)
def schedule_nrps_task() -> int:
    """Queue every course's reconcile, staggered over the interval. Returns how many were queued."""
    window = int(current_app.config["CASELOAD"].reconcile_interval_seconds * 0.8)
    with UnitOfWork() as uow:
        course_ids = courses_to_reconcile(uow.session)
    plan = schedule_plan(course_ids, window)
    for course_id, countdown in plan:
        reconcile_course_task.apply_async(args=(course_id, "schedule"), countdown=countdown)
    log.info("scheduled NRPS reconcile of %s courses over %ss", len(plan), window)
    return len(plan)


@shared_task(name=ONEROSTER_TASK, ignore_result=True)
def oneroster_task(platform_id: int, full: bool | None = None, trigger: str = "schedule") -> dict[str, Any]:
    with UnitOfWork() as uow:
        outcome = pull(uow.session, platform_id, full=full, trigger=trigger)
    return {"status": outcome.status, "added": outcome.added, "updated": outcome.updated, "removed": outcome.removed}


@shared_task(name=SCHEDULE_ONEROSTER_TASK, ignore_result=True)
def schedule_oneroster_task() -> int:
    with UnitOfWork() as uow:
        platform_ids = configured_platforms(uow.session)
    for platform_id in platform_ids:
        oneroster_task.delay(platform_id)
    return len(platform_ids)

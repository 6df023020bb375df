"""The one seam between services and background work: services ask for a task *by name*; they never import
``lti_app.tasks`` (which imports services). The task registry of the app's Celery instance (wired by
``lti_app.tasks.init_app``) resolves the name, so the embedded (eager) mode runs the task in-process and a broker
set-up queues it, with the same call. An import-linter contract in ``pyproject.toml`` keeps it so."""

from __future__ import annotations

from typing import Any

from flask import current_app

INBOX_DRAIN = "caseload.inbox.drain"
INBOX_RETRY_DUE = "caseload.inbox.retry_due"
INBOX_PURGE = "caseload.inbox.purge"
RECONCILE_COURSE = "caseload.reconcile.course"
RECONCILE_SCHEDULE_NRPS = "caseload.reconcile.schedule_nrps"
RECONCILE_ONEROSTER = "caseload.reconcile.oneroster"
RECONCILE_SCHEDULE_ONEROSTER = "caseload.reconcile.schedule_oneroster"
PURGE_LAUNCH_STATE = "caseload.maintenance.purge_launch_state"
LMS_APPLY_STUDENT = "caseload.lms.apply_student"
LMS_RECONCILE_COURSE = "caseload.lms.reconcile_course"
LMS_SWEEP = "caseload.lms.sweep"
LMS_ENROLLMENTS = "caseload.lms.enrollments"
ALERTS_RUN = "caseload.alerts.run"


def enqueue(task_name: str, *args: Any, countdown: float | None = None, retry: bool = True) -> None:
    """Run ``task_name`` with ``args`` in the background (eagerly, in-process, without a broker). Raises what the
    broker raises: callers that must not fail decide how to degrade. ``retry=False``: fail at the first refusal
    instead of retrying the publish (for callers that have a fallback and must not keep a request waiting)."""
    celery = current_app.extensions["celery"]
    celery.tasks[task_name].apply_async(args=args, countdown=countdown, retry=retry)

"""Celery tasks of the inbox (registered with ``@shared_task``; see ``lti_app/tasks/__init__.py``).

- ``caseload.inbox.drain``: apply every due event (sent after each accepted webhook, debounced per process).
- ``caseload.inbox.retry_due``: the beat entry, every ``settings.inbox_poll_seconds``: drains events whose
  backoff has elapsed, and anything a lost kick left behind.
- ``caseload.inbox.purge``: daily, deletes applied and ignored events older than ``settings.inbox_keep_days``.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from flask import current_app

from lti_app.services.dispatch import INBOX_DRAIN, INBOX_PURGE, INBOX_RETRY_DUE
from lti_app.services.roster.inbox import purge_old_events, run_drain
from lti_app.services.uow import UnitOfWork


def beat_schedule(poll_seconds: int) -> dict[str, dict[str, Any]]:
    return {
        "inbox-retry-due": {"task": INBOX_RETRY_DUE, "schedule": float(poll_seconds)},
        "inbox-purge": {"task": INBOX_PURGE, "schedule": 86400.0},
    }


@shared_task(name=INBOX_DRAIN, ignore_result=True)
def drain_task() -> int:
    return run_drain().total


@shared_task(name=INBOX_RETRY_DUE, ignore_result=True)
def retry_due_task() -> int:
    return run_drain().total


@shared_task(name=INBOX_PURGE, ignore_result=True)
def purge_task() -> int:
    with UnitOfWork() as uow:
        return purge_old_events(uow.session, current_app.config["CASELOAD"].inbox_keep_days)

"""Celery tasks of the inbox (registered with ``@shared_task``; see ``lti_app/tasks.py``).

- ``caseload.inbox.drain``: apply every due event (sent after each accepted webhook, debounced per process).
- ``caseload.inbox.retry_due``: the beat entry, every ``settings.inbox_poll_seconds``: drains events whose
  backoff has elapsed, and anything a lost kick left behind.
- ``caseload.inbox.purge``: daily, deletes applied and ignored events older than ``settings.inbox_keep_days``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from flask import current_app
from sqlalchemy import delete

from lti_app.db import utcnow
from lti_app.domain.vocab import InboundStatus
from lti_app.models import InboundEvent

log = logging.getLogger(__name__)

DRAIN_TASK = "caseload.inbox.drain"
RETRY_DUE_TASK = "caseload.inbox.retry_due"
PURGE_TASK = "caseload.inbox.purge"


def beat_schedule(poll_seconds: int) -> dict[str, dict[str, Any]]:
    return {
        "inbox-retry-due": {"task": RETRY_DUE_TASK, "schedule": float(poll_seconds)},
        "inbox-purge": {"task": PURGE_TASK, "schedule": 86400.0},
    }


@shared_task(name=DRAIN_TASK, ignore_result=True)
def drain_task() -> int:
    from lti_app.services.inbox import run_drain

    return run_drain().total


@shared_task(name=RETRY_DUE_TASK, ignore_result=True)
def retry_due_task() -> int:
    from lti_app.services.inbox import run_drain

    return run_drain().total


def purge_old_events(session: Any, keep_days: int, now: dt.datetime | None = None) -> int:
    """Delete applied and ignored events received more than ``keep_days`` ago. Commits; returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(days=keep_days)
    result = session.execute(delete(InboundEvent).where(
        InboundEvent.status.in_((InboundStatus.APPLIED.value, InboundStatus.IGNORED.value)),
        InboundEvent.received_at < cutoff))
    session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    log.info("purged %s old inbound events", count)
    return count


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_task() -> int:
    from lti_app.services.uow import UnitOfWork

    with UnitOfWork() as uow:
        return purge_old_events(uow.session, current_app.config["CASELOAD"].inbox_keep_days)

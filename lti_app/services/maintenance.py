"""Housekeeping: expired OIDC launch state, used nonces past their token's lifetime, and stale keyset copies
are deleted so the launch tables stay small. Runs on the beat schedule (and in tests directly)."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from sqlalchemy import delete
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import LaunchStateEntry, UsedNonce

log = logging.getLogger(__name__)
PURGE_TASK = "caseload.maintenance.purge_launch_state"


def purge_launch_state(session: Session, now: dt.datetime | None = None) -> int:
    """Delete expired launch-state rows and nonces. Commits; returns how many rows went."""
    now = now or utcnow()
    removed = 0
    for model in (LaunchStateEntry, UsedNonce):
        result = session.execute(delete(model).where(model.expires_at < now))
        removed += int(getattr(result, "rowcount", 0) or 0)
    session.commit()
    log.info("purged %s expired launch-state rows", removed)
    return removed


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_launch_state_task() -> int:
    from lti_app.services.uow import UnitOfWork

    with UnitOfWork() as uow:
        return purge_launch_state(uow.session)

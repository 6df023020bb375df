"""Housekeeping: expired OIDC launch state, used nonces past their token's lifetime, and stale keyset copies
are deleted so the launch tables stay small. Runs hourly on the beat schedule (``lti_app/tasks/maintenance.py``)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import LaunchStateEntry, UsedNonce

log = logging.getLogger(__name__)


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

"""The inbox's state machine for stored roster events (``InboundEvent``): parked (failed) events can be put
back in the queue by an administrator, with their attempt count reset.

Receiving and applying pushed events (Canvas Live Events, the Moodle companion plugin) is not built yet; the
table, these operations and the sync health page that shows them are ready for it."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.domain.vocab import InboundStatus
from lti_app.models import InboundEvent

log = logging.getLogger(__name__)


def retry_event(session: Session, event_id: int) -> bool:
    """Put one parked event back in the queue. Returns False if it was not parked. Commits."""
    event = session.get(InboundEvent, event_id)
    if event is None or event.status != InboundStatus.FAILED.value:
        return False
    event.status = InboundStatus.PENDING.value
    event.attempts = 0
    event.next_attempt_at = utcnow()
    session.commit()
    log.info("inbound event %s re-queued by an administrator", event_id)
    return True


def requeue_failed(session: Session, platform_id: int) -> int:
    """Put every parked event of a platform back in the queue. Returns how many. Commits."""
    result = session.execute(
        update(InboundEvent)
        .where(InboundEvent.platform_id == platform_id, InboundEvent.status == InboundStatus.FAILED.value)
        .values(status=InboundStatus.PENDING.value, attempts=0, next_attempt_at=utcnow()))
    session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    log.info("re-queued %s parked events of platform %s", count, platform_id)
    return count

"""Which Canvas root account a platform is: learned from its launches, checked on every Live Event.

Canvas signs Live Events ("Sign Payload") with a key set Instructure may share across the Canvas instances it
hosts, so a signature that verifies says "Canvas sent this", not "this district's Canvas sent this". Every Live
Event names its root account (``metadata.root_account_uuid``); Caseload accepts an event only when that is the
root account of the platform whose URL it was posted to. The root account is learned from the platform's own
validated launches (the developer key's custom field ``canvas_root_account_uuid=$vnd.Canvas.root_account.uuid``,
Canvas variable substitution), the first one wins, or is set by an administrator
(``caseload platform webhooks --canvas-root-account-uuid``).
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.models import Platform

log = logging.getLogger(__name__)

_UUID = re.compile(r"[A-Za-z0-9]{16,64}")
"""Canvas account uuids are 40 random letters and digits; anything else is not one."""


def clean_uuid(value: object) -> str | None:
    """The root account uuid in ``value``, or None when it is missing, unsubstituted (``$vnd...``) or malformed."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if _UUID.fullmatch(text) else None


def learn_from_launch(session: Session, platform_id: int, lms_family: str, custom: dict[str, str]) -> None:
    """Record the root account of a Canvas platform from a validated launch, once (an UPDATE that changes nothing
    after the first launch). A launch naming another root account is logged, never recorded: the first account
    stays the one whose events are accepted until an administrator changes it."""
    if lms_family != "canvas":
        return
    uuid = clean_uuid(custom.get("canvas_root_account_uuid"))
    if uuid is None:
        return
    done = session.execute(update(Platform).where(Platform.id == platform_id,
                                                  Platform.canvas_root_account_uuid.is_(None))
                           .values(canvas_root_account_uuid=uuid).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0):
        log.info("platform %s: Canvas root account learned from a launch", platform_id)
        return
    known = session.scalar(select(Platform.canvas_root_account_uuid).where(Platform.id == platform_id))
    if known != uuid:
        log.warning("platform %s: a launch named another Canvas root account than the recorded one", platform_id)

"""One run of the alerts job: detect, remember, deliver. Idempotent: the snapshot only moves forward, every alert
has a dedupe key unique per recipient, and e-mail is claimed before it is sent, so a rerun (or a second worker
started by an overlapping beat tick) sends nothing twice. Runs on Celery beat every ``CASELOAD_ALERTS_POLL_SECONDS``
and from ``caseload alerts run`` (the embedded mode's cron entry)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.db import utcnow
from lti_app.domain import alerts as rules
from lti_app.models import AlertState
from lti_app.services.alerts import delivery, detect, reminders
from lti_app.settings import Settings

log = logging.getLogger(__name__)

QUESTION_LOOKBACK = dt.timedelta(days=1)
"""Answered questions are looked for since the previous run less this margin (the dedupe key makes overlap free)."""


@dataclass
class RunReport:
    joined: int = 0
    left: int = 0
    baselined: int = 0
    questions: int = 0
    reminders: int = 0
    new_alerts: int = 0
    delivery: delivery.DeliveryReport = field(default_factory=delivery.DeliveryReport)
    seconds: float = 0.0

    def summary(self) -> str:
        d = self.delivery
        text = (f"{self.new_alerts} new alerts (schedule changes: {self.joined} joined, {self.left} left; "
                f"{self.questions} answered questions; {self.reminders} deadline reminders); "
                f"{d.sent_messages} e-mails sent for {d.sent_alerts} alerts, {d.waiting} waiting for a daily digest")
        if self.baselined:
            text += f"; {self.baselined} placements recorded as the starting point"
        if d.error:
            text += f"; e-mail failed: {d.error}"
        return text


def _lock_state(session: Session, now: dt.datetime) -> AlertState:
    """Take the job's lock: the state row, locked for update. A second run waits here until the first commits,
    then sees its snapshot (PostgreSQL row lock; SQLite serialises writers, and the first write is this one)."""
    for _ in range(2):
        state = session.scalars(select(AlertState).where(AlertState.id == 1).with_for_update()).one_or_none()
        if state is not None:
            # SQLite has no FOR UPDATE: this no-op UPDATE takes its write lock at once.
            session.execute(update(AlertState).where(AlertState.id == 1).values(id=1)
                            .execution_options(synchronize_session=False))
            return state
        try:
            with session.begin_nested():
                session.add(AlertState(id=1, started_at=now))
        except IntegrityError:
            continue  # another first run created it: lock that one
    raise RuntimeError("the alert_state row could not be locked")


def run(session: Session, settings: Settings, now: dt.datetime | None = None,
        send: delivery.Sender | None = None) -> RunReport:
    started = time.perf_counter()
    now = now or utcnow()
    report = RunReport()
    state = _lock_state(session, now)
    schedule = detect.detect_schedule_changes(session, now)
    report.joined, report.left, report.baselined = schedule.joined, schedule.left, schedule.baselined
    since = max(state.started_at, (state.last_run_at or now) - QUESTION_LOOKBACK)
    answered = detect.detect_answered_questions(session, since)
    made: list[detect.NewAlert] = []
    local_now = clock.local(now)
    if rules.reminders_due(local_now, settings.alerts_daily_hour, state.reminders_on):
        made = reminders.deadline_reminders(session, local_now.date(), settings.reminder_windows_days)
        state.reminders_on = local_now.date()
    new_alerts = schedule.alerts + answered + made
    inserted = detect.store(session, new_alerts, now)
    report.new_alerts = sum(inserted.values())
    report.questions = inserted.get(rules.AlertKind.QUESTION_ANSWERED.value, 0)
    report.reminders = inserted.get(rules.AlertKind.DEADLINE.value, 0)
    state.last_run_at = now
    session.commit()
    report.delivery = delivery.deliver(session, settings, now, send or delivery.default_sender)
    report.seconds = time.perf_counter() - started
    log.info("alerts run: %d new alerts in %.2f s", report.new_alerts, report.seconds)
    return report

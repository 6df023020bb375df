"""The inbox of pushed roster events (``InboundEvent``): applying what is due, retrying what cannot be applied
yet, parking what keeps failing, and the administrator's retry.

States: ``pending`` (stored, not applied yet) -> ``applied``; or ``waiting`` (the course, the person or the
enrollment it names is not known to Caseload yet; retried with exponential backoff) -> ``applied``, or after
``settings.inbox_max_attempts`` -> ``failed`` (parked, shown on the sync health page with its reason, re-queued
by an administrator). ``ignored`` events (types Caseload does not use) are stored and never applied.

Draining takes due events oldest ``event_time`` first in batches of ``BATCH``, one transaction per batch. One
drainer at a time: each batch transaction first takes a PostgreSQL transaction-level advisory lock, and a drain
that cannot get it stops at once (the drainer holding it looks again for due events after every batch, so an
event committed meanwhile is not left behind). A single drainer never deadlocks with itself, and an event is
applied exactly once. Ordering across batches is not needed for correctness anyway: every enrollment write is
guarded by the event time it reflects (``services/roster.py``), so an older event never overwrites a newer one,
whatever the order of arrival.

A batch is applied optimistically, without a savepoint per event: an event that cannot be applied yet is found
out by lookups before it writes anything. If anything unexpected fails, the batch is rolled back and applied
again with a savepoint per event, so one bad event is parked and the others are applied.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.domain import roster_events as ev
from lti_app.domain.vocab import EnrollmentState, InboundStatus, PersonKind, RosterSource
from lti_app.models import Course, Enrollment, InboundEvent, Person
from lti_app.services.dispatch import INBOX_DRAIN, enqueue
from lti_app.services.roster import primitives as roster

log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_SECONDS = 3600


class NotYet(Exception):
    """The event names something Caseload does not know yet; retry later. ``sync_course`` asks for an NRPS
    reconcile of that course (which is how Caseload learns a Canvas user it has never seen)."""

    def __init__(self, reason: str, sync_course: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sync_course = sync_course


@dataclass
class DrainResult:
    applied: int = 0
    waiting: int = 0
    failed: int = 0
    courses_to_sync: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.applied + self.waiting + self.failed


def backoff_seconds(attempts: int, base: float) -> float:
    """Delay before retry number ``attempts`` (1, 2, ...): base, 2*base, 4*base ... capped at an hour."""
    return float(min(base * (2 ** max(0, attempts - 1)), MAX_BACKOFF_SECONDS))


# ---------------------------------------------------------------------------------------------------------------
# Draining
# ---------------------------------------------------------------------------------------------------------------

DRAIN_LOCK = 0x4341534C  # "CASL": the advisory lock key of the drainer


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _take_drain_lock(session: Session) -> bool:
    """Take the drainer's lock for this transaction (PostgreSQL). SQLite needs none: it serialises writers."""
    if not _is_pg(session):
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(DRAIN_LOCK))))


def _due(session: Session, now: dt.datetime, limit: int) -> list[InboundEvent]:
    stmt = (select(InboundEvent)
            .where(InboundEvent.status.in_((InboundStatus.PENDING.value, InboundStatus.WAITING.value)),
                   InboundEvent.next_attempt_at <= now)
            .order_by(InboundEvent.event_time, InboundEvent.id)
            .limit(limit))
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True, of=InboundEvent)
    return list(session.scalars(stmt))


def due_count(session: Session, now: dt.datetime | None = None) -> int:
    return int(session.scalar(select(func.count()).select_from(InboundEvent).where(
        InboundEvent.status.in_((InboundStatus.PENDING.value, InboundStatus.WAITING.value)),
        InboundEvent.next_attempt_at <= (now or utcnow()))) or 0)


def drain(session: Session, *, max_batches: int | None = None, now: dt.datetime | None = None,
          batch: int = BATCH) -> DrainResult:
    """Apply every due event (commits per batch). Returns what happened. Stops at once if another drainer is
    at work (it will apply what is due)."""
    settings = current_app.config["CASELOAD"]
    result = DrainResult()
    batches = idle = 0
    while max_batches is None or batches < max_batches:
        moment = now or utcnow()
        if not _take_drain_lock(session):
            session.rollback()
            break
        events = _due(session, moment, batch)
        if not events:
            session.commit()
            # Look once more after releasing the lock: an event committed while another drain gave up on the
            # lock is ours to apply.
            idle += 1
            if now is not None or idle > 2 or due_count(session) == 0:
                break
            continue
        idle = 0
        _apply_batch(session, events, moment, settings.inbox_max_attempts, settings.inbox_retry_base_seconds,
                     result)
        batches += 1
        if now is not None:
            # A fixed clock (tests): events put back to wait stay due, so one pass is all there is.
            break
    session.commit()
    if result.total:
        log.info("inbox drained: %s applied, %s waiting, %s parked", result.applied, result.waiting, result.failed)
    return result


def _apply_batch(session: Session, events: list[InboundEvent], now: dt.datetime, max_attempts: int, base: float,
                 result: DrainResult) -> None:
    ids = [e.id for e in events]
    trial = DrainResult()
    try:
        lookups = _Lookups()
        _prefetch(session, events, lookups)
        for event in events:
            _apply_one(session, event, now, max_attempts, base, trial, lookups, careful=False)
        session.commit()
    except Exception:  # noqa: BLE001 - redo the batch one event at a time, so one bad event cannot stop the rest
        log.warning("an inbox batch failed; applying its %s events one at a time", len(ids))
        session.rollback()
        if not _take_drain_lock(session):
            session.rollback()
            return
        trial = DrainResult()
        lookups = _Lookups()
        again = list(session.scalars(select(InboundEvent).where(InboundEvent.id.in_(ids)).order_by(
            InboundEvent.event_time, InboundEvent.id).with_for_update(of=InboundEvent)))
        for event in again:
            if event.status in (InboundStatus.PENDING.value, InboundStatus.WAITING.value):
                _apply_one(session, event, now, max_attempts, base, trial, lookups, careful=True)
        session.commit()
    result.applied += trial.applied
    result.waiting += trial.waiting
    result.failed += trial.failed
    result.courses_to_sync |= trial.courses_to_sync


def _apply_one(session: Session, event: InboundEvent, now: dt.datetime, max_attempts: int, base: float,
               result: DrainResult, lookups: _Lookups, careful: bool = True) -> None:
    try:
        if careful:
            with session.begin_nested():
                apply_event(session, event, lookups)
        else:
            apply_event(session, event, lookups, flush=False)
    except NotYet as exc:
        event.attempts += 1
        event.last_error = exc.reason[:1000]
        if exc.sync_course is not None:
            result.courses_to_sync.add(exc.sync_course)
        if event.attempts >= max_attempts:
            event.status = InboundStatus.FAILED.value
            event.next_attempt_at = None
            result.failed += 1
        else:
            event.status = InboundStatus.WAITING.value
            event.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(event.attempts, base))
            result.waiting += 1
        return
    except ev.EventInvalid as exc:
        # Stored events were parsed before they were stored; this only happens if the rules changed since.
        event.attempts += 1
        event.status = InboundStatus.FAILED.value
        event.last_error = f"cannot be parsed: {exc}"[:1000]
        event.next_attempt_at = None
        result.failed += 1
        return
    except Exception as exc:
        if not careful:
            raise
        log.exception("inbound event %s could not be applied", event.id)
        lookups.clear()
        event.attempts += 1
        event.last_error = f"unexpected error ({type(exc).__name__}); see the server log"
        terminal = event.attempts >= max_attempts
        event.status = InboundStatus.FAILED.value if terminal else InboundStatus.WAITING.value
        event.next_attempt_at = None if terminal else now + dt.timedelta(seconds=backoff_seconds(event.attempts, base))
        result.failed += int(terminal)
        result.waiting += int(not terminal)
        return
    event.status = InboundStatus.APPLIED.value
    event.applied_at = now
    event.attempts += 1
    event.last_error = None
    event.next_attempt_at = None
    result.applied += 1


def parse_stored(event: InboundEvent) -> ev.ParsedEvent:
    # The stored event was accepted at received_at; judge its time against that moment, not today.
    if event.source == "canvas":
        return ev.parse_canvas(event.payload, event.received_at)
    return ev.parse_moodle(event.payload, event.received_at)


# ---------------------------------------------------------------------------------------------------------------
# Applying one event's commands
# ---------------------------------------------------------------------------------------------------------------

class _Lookups:
    """Courses and people already found in this batch (found ones only: what is missing may appear). Sections are
    remembered by ``roster.ensure_section`` itself, per session."""

    def __init__(self) -> None:
        self.courses: dict[tuple[int, str], Course] = {}
        self.people: dict[tuple[int, str], Person] = {}
        self.parsed: dict[int, ev.ParsedEvent] = {}
        self.enrollments: roster.KnownEnrollments | None = None
        """Set by ``_prefetch``: every enrollment of the batch's people in the batch's courses, locked."""

    def clear(self) -> None:
        self.courses.clear()
        self.people.clear()
        self.enrollments = None


def _prefetch(session: Session, events: list[InboundEvent], lookups: _Lookups) -> None:
    """Look up, in a few statements for the whole batch, what its events name: courses, people, and (locked) the
    enrollments of those people in those courses. Applying an event then reads from these instead of asking the
    database once per event; what is not found here is looked up (and created) as before."""
    course_refs: dict[tuple[int, bool], set[str]] = {}
    user_refs: dict[tuple[int, bool], set[str]] = {}
    for event in events:
        try:
            parsed = parse_stored(event)
        except ev.EventInvalid:
            continue  # parked when applied
        lookups.parsed[event.id] = parsed
        key = (event.platform_id, parsed.lms == "canvas")
        for command in parsed.commands:
            if isinstance(command, ev.EnrollmentObserved):
                course_refs.setdefault(key, set()).add(command.course_ref)
                user_refs.setdefault(key, set()).add(command.user_ref)
    for (platform_id, canvas), refs in course_refs.items():
        column = _ref_columns(canvas)[0]
        for course in session.scalars(select(Course).where(Course.platform_id == platform_id, column.in_(refs))
                                      .order_by(Course.id)):
            lookups.courses.setdefault((platform_id, str(getattr(course, column.key))), course)
    for (platform_id, canvas), refs in user_refs.items():
        column = _ref_columns(canvas)[1]
        for person in session.scalars(select(Person).where(Person.platform_id == platform_id, column.in_(refs))
                                      .order_by(Person.id)):
            lookups.people.setdefault((platform_id, str(getattr(person, column.key))), person)
    course_ids = {c.id for c in lookups.courses.values()}
    person_ids = {p.id for p in lookups.people.values()}
    lookups.enrollments = roster.KnownEnrollments.load(session, course_ids, person_ids)


def _ref_columns(canvas: bool) -> tuple[Any, Any]:
    """The columns an event's course and user references match: Canvas numeric ids, or (Moodle) the LTI context id
    and ``sub``. The batch prefetch and the per-event lookups both match on these (first row by id)."""
    if canvas:
        return Course.lms_course_id, Person.lms_user_id
    return Course.lti_context_id, Person.lti_sub


class _Ids:
    """Finds courses and people by the ids the event uses (Canvas numeric ids, or Moodle's LTI identities)."""

    def __init__(self, session: Session, platform_id: int, lms: str, lookups: _Lookups) -> None:
        self.session, self.platform_id, self.canvas = session, platform_id, lms == "canvas"
        self.lookups = lookups
        self._course_column, self._person_column = _ref_columns(self.canvas)

    def course(self, ref: str) -> Course | None:
        key = (self.platform_id, ref)
        found = self.lookups.courses.get(key)
        if found is None:
            found = self.session.scalars(select(Course).where(Course.platform_id == self.platform_id,
                                                              self._course_column == ref)
                                         .order_by(Course.id).limit(1)).first()
            if found is not None:
                self.lookups.courses[key] = found
        return found

    def person(self, ref: str) -> Person | None:
        key = (self.platform_id, ref)
        found = self.lookups.people.get(key)
        if found is None:
            found = self.session.scalars(select(Person).where(Person.platform_id == self.platform_id,
                                                              self._person_column == ref)
                                         .order_by(Person.id).limit(1)).first()
            if found is not None:
                self.lookups.people[key] = found
        return found

    def remember_person(self, ref: str, person: Person) -> None:
        self.lookups.people[(self.platform_id, ref)] = person

    def describe_course(self, ref: str) -> str:
        return f"{'Canvas' if self.canvas else 'Moodle'} course {ref}"

    def describe_user(self, ref: str) -> str:
        return f"{'Canvas' if self.canvas else 'Moodle'} user {ref}"


def apply_event(session: Session, event: InboundEvent, lookups: _Lookups | None = None, flush: bool = True) -> None:
    lookups = lookups or _Lookups()
    parsed = lookups.parsed.get(event.id) or parse_stored(event)
    ids = _Ids(session, event.platform_id, parsed.lms, lookups)
    when = event.event_time or event.received_at
    # Everything the event needs must be known before anything is written (see the module docstring).
    for command in parsed.commands:
        if isinstance(command, ev.EnrollmentObserved) and command.create_missing or \
                isinstance(command, ev.SectionObserved):
            _known_course(ids, command.course_ref)
    for command in parsed.commands:
        _apply_command(session, ids, command, when)
    if flush:  # a batch applied optimistically flushes once, at its commit
        session.flush()


def _known_course(ids: _Ids, ref: str) -> Course:
    course = ids.course(ref)
    if course is None:
        raise NotYet(f"{ids.describe_course(ref)} is not known to Caseload yet (it becomes known when Caseload is "
                     "launched in it or a roster sync finds it)")
    return course


def _apply_command(session: Session, ids: _Ids, command: ev.Command, when: dt.datetime) -> None:
    if isinstance(command, ev.EnrollmentObserved):
        _enrollment(session, ids, command, when)
    elif isinstance(command, ev.EnrollmentStateObserved):
        enrollment = session.scalars(
            select(Enrollment).join(Course, Course.id == Enrollment.course_id)
            .where(Course.platform_id == ids.platform_id, Enrollment.lms_enrollment_id == command.lms_enrollment_id)
            .with_for_update(of=Enrollment)).first()
        if enrollment is None:
            raise NotYet(f"enrollment {command.lms_enrollment_id} is not known to Caseload yet")
        _set_state([enrollment], command.state, when)
    elif isinstance(command, ev.UserEnrollmentsEnded):
        person = ids.person(command.user_ref)
        if person is None:
            return  # nothing of theirs to end
        stmt = select(Enrollment).where(Enrollment.person_id == person.id)
        if command.course_ref is not None:
            course = ids.course(command.course_ref)
            if course is None:
                return
            stmt = stmt.where(Enrollment.course_id == course.id)
        _set_state(list(session.scalars(stmt.with_for_update())), command.state, when)
    elif isinstance(command, ev.UserObserved):
        _user(session, ids, command)
    elif isinstance(command, ev.SectionObserved):
        course = _known_course(ids, command.course_ref)
        section = roster.ensure_section(session, course, command.section_ref, name=command.name, sis_id=command.sis_id)
        if command.ended:
            in_section = session.scalars(select(Enrollment).where(Enrollment.section_id == section.id)
                                         .with_for_update())
            _set_state(list(in_section), EnrollmentState.DELETED.value, when)
    elif isinstance(command, ev.CourseObserved):
        course = ids.course(command.course_ref)
        if course is None:
            return  # a course nobody launched Caseload in: nothing to keep
        if command.title:
            course.title = command.title[:500]
        if command.enrollments_state:
            in_course = session.scalars(select(Enrollment).where(Enrollment.course_id == course.id).with_for_update())
            _set_state(list(in_course), command.enrollments_state, when)


def _user(session: Session, ids: _Ids, command: ev.UserObserved) -> Person | None:
    facts = command.facts
    person = ids.person(command.user_ref)
    kind = PersonKind.STAFF.value if command.staff else None
    if person is None:
        if not command.create or ids.canvas:
            return None
        person = roster.upsert_person(session, ids.platform_id, command.user_ref, name=facts.name,
                                      given_name=facts.given_name, family_name=facts.family_name, email=facts.email,
                                      sis_id=facts.sis_id, kind=kind or PersonKind.STUDENT.value)
        ids.remember_person(command.user_ref, person)
        return person
    fields: dict[str, Any] = {"name": facts.name, "given_name": facts.given_name, "family_name": facts.family_name,
                              "email": facts.email, "sis_id": facts.sis_id}
    for key, value in fields.items():
        if value is not None and getattr(person, key) != value:
            setattr(person, key, value)
    if kind and person.kind != kind:
        person.kind = kind
    return person


def _enrollment(session: Session, ids: _Ids, command: ev.EnrollmentObserved, when: dt.datetime) -> None:
    course = _known_course(ids, command.course_ref)
    person = ids.person(command.user_ref)
    if person is None:
        if not command.create_missing:
            return
        if ids.canvas:
            raise NotYet(f"{ids.describe_user(command.user_ref)} is not known to Caseload yet; a roster sync of the "
                         "course has been asked for", sync_course=course.id if course.nrps_url else None)
        person = roster.upsert_person(session, ids.platform_id, command.user_ref,
                                      kind=PersonKind.STAFF.value if command.staff else PersonKind.STUDENT.value)
        ids.remember_person(command.user_ref, person)
    if command.staff and person.kind != PersonKind.STAFF.value:
        person.kind = PersonKind.STAFF.value
    if not command.create_missing:
        rows = session.scalars(select(Enrollment).where(Enrollment.person_id == person.id,
                                                        Enrollment.course_id == course.id,
                                                        Enrollment.role == command.role).with_for_update())
        _set_state(list(rows), command.state, when)
        return
    section = roster.ensure_section(session, course, command.section_ref or roster.COURSE_WIDE)
    if command.section_ref is None and command.state != EnrollmentState.ACTIVE.value:
        # Moodle knows no sections: a role that ends, ends wherever Caseload placed it (NRPS or a launch may have
        # put it in a real section).
        elsewhere = list(session.scalars(select(Enrollment).where(
            Enrollment.person_id == person.id, Enrollment.course_id == course.id, Enrollment.role == command.role,
            Enrollment.section_id != section.id).with_for_update()))
        _set_state(elsewhere, command.state, when)
    roster.apply_enrollment(session, person=person, course=course, section=section, role=command.role,
                            state=command.state, source=RosterSource.WEBHOOK.value, source_time=when,
                            lms_enrollment_id=command.lms_enrollment_id, known=ids.lookups.enrollments)


def _set_state(rows: list[Enrollment], state: str, when: dt.datetime) -> int:
    """Set the state of these enrollments unless something newer was applied to them."""
    changed = 0
    for row in rows:
        if row.source_time > when:
            continue
        if row.state != state:
            row.state = state
            row.source = RosterSource.WEBHOOK.value
            changed += 1
        row.source_time = when
    return changed


# ---------------------------------------------------------------------------------------------------------------
# Asking for a drain
# ---------------------------------------------------------------------------------------------------------------

KICK_INTERVAL = 0.25
"""A process asks for a drain at most this often (seconds); a drain applies everything due, not one event."""
BROKER_BACKOFF = 2.0
"""After the broker refused a kick, the process stops asking for this long (seconds): during a broker outage each
request would otherwise wait on the broker again, and the events are safe in the database meanwhile."""


class _Kicker:
    """Per-process state of the kick: when the last drain was asked for, whether a trailing one is armed, and
    whether the broker is refusing (so that an outage is logged once, not once per event)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = 0.0
        self.timer: threading.Timer | None = None
        self.broker_down_since: float | None = None
        self.refused = 0

    def send(self, app: Any) -> None:
        """Send one drain task. Never raises: a refusal is logged once per outage and the periodic drain
        (``caseload.inbox.retry_due``) applies what was stored meanwhile."""
        now = time.monotonic()
        with self.lock:
            if self.broker_down_since is not None and now - self.last < BROKER_BACKOFF:
                self.refused += 1
                return
            self.last = now
        try:
            with app.app_context():
                enqueue(INBOX_DRAIN, retry=False)
        except Exception as exc:  # noqa: BLE001 - the event is stored; the periodic drain will apply it
            with self.lock:
                first = self.broker_down_since is None
                if first:
                    self.broker_down_since = now
                self.refused += 1
                self.last = time.monotonic()  # the back-off runs from the refusal, however long it took
            if first:
                log.warning("could not ask for an inbox drain (%s: %s); stored events wait for the periodic drain "
                            "until the broker is back", type(exc).__name__, str(exc)[:200])
            return
        with self.lock:
            down_since, refused = self.broker_down_since, self.refused
            self.broker_down_since, self.refused = None, 0
        if down_since is not None:
            log.warning("the broker takes inbox drains again after %.1f s (%d kicks not sent)",
                        now - down_since, refused)

    def kick(self, app: Any) -> None:
        """Send a drain now if none was sent in the last ``KICK_INTERVAL``; otherwise make sure one is sent when
        the interval ends (a trailing drain that starts after this commit). The trailing drain is sent by this
        process from a timer thread, not queued with a countdown: a delayed message would sit unacknowledged in
        the worker (and in Redis's ``unacked`` set), which is what made a broker outage fatal to the worker."""
        now = time.monotonic()
        with self.lock:
            due = now - self.last >= KICK_INTERVAL
            if not due:
                if self.timer is not None:
                    return  # a trailing drain is already armed and will start after this commit
                delay = self.last + KICK_INTERVAL - now
                self.timer = threading.Timer(delay, self._trailing, args=(app,))
                self.timer.daemon = True
                self.timer.start()
                return
        self.send(app)

    def _trailing(self, app: Any) -> None:
        with self.lock:
            self.timer = None
        self.send(app)


_kicker = _Kicker()


def kick() -> None:
    """Ask for the inbox to be drained; called after an event was committed. Never raises, never waits on the
    broker for more than its connect timeout.

    Embedded mode (no broker): drain here, in-process. With a broker: send the drain task, at most once per
    ``KICK_INTERVAL`` per process, with a trailing one after the interval so that every committed event is followed
    by a drain that starts after its commit. If the broker is down, one warning says so and the periodic drain
    applies the stored events once it is back."""
    try:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if app.config["CASELOAD"].eager_tasks:
            run_drain()
            return
        _kicker.kick(app)
    except Exception:  # noqa: BLE001 - the event is stored; the periodic drain will apply it
        log.exception("could not ask for an inbox drain")


def run_drain(max_batches: int | None = None) -> DrainResult:
    """Drain in a unit of work of its own, then ask for the roster syncs that waiting events need."""
    from lti_app.services.roster.reconcile import request_course_sync
    from lti_app.services.uow import UnitOfWork

    with UnitOfWork() as uow:
        result = drain(uow.session, max_batches=max_batches)
    for course_id in sorted(result.courses_to_sync):
        request_course_sync(course_id, trigger="webhook")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Administrators
# ---------------------------------------------------------------------------------------------------------------

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



def purge_old_events(session: Session, keep_days: int, now: dt.datetime | None = None) -> int:
    """Delete applied and ignored events received more than ``keep_days`` ago. Commits; returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(days=keep_days)
    result = session.execute(delete(InboundEvent).where(
        InboundEvent.status.in_((InboundStatus.APPLIED.value, InboundStatus.IGNORED.value)),
        InboundEvent.received_at < cutoff))
    session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    log.info("purged %s old inbound events", count)
    return count

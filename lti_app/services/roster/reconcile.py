"""Roster reconciliation: pull a course's roster through NRPS and make Caseload's enrollments agree with it.

Rules (the same as every roster source, see ``services/roster.py``):
- An observation carries a time; an enrollment row remembers the newest time applied (``source_time``) and an
  older observation changes nothing. An NRPS roster is observed at the moment the first page is requested, so any
  webhook event that happened after that moment wins over it.
- NRPS lists only the members who are active now (NRPS 2.0 §2.2; Moodle leaves suspended and unenrolled users
  out, other platforms may send ``status: Inactive``/``Deleted``). Removals are therefore found by set difference:
  an active enrollment in the course whose (person, role) is not among the active members ends (``inactive``, or
  ``deleted`` when the platform said Deleted), unless something newer was applied to it.
- NRPS knows courses, not sections. A member who already has an active enrollment for that role in any section of
  the course is simply confirmed; only members with none get an enrollment in the course-wide section. Once a
  real section enrollment exists (Canvas Live Events, Canvas launches), a course-wide row that NRPS created is
  retired, so a Canvas teacher limited to a section is not given the whole course by NRPS.
- The whole roster is read before anything is written, and written in one transaction: a failure on page 7 of 50
  changes nothing, and is recorded as a failed ``SyncRun`` with a reason an admin can act on.
- A roster with no active member at all for a course that has active enrollments is refused (not applied): an
  LMS permission glitch must not end every enrollment of a class.

Writes are bulk (a 5,000-member course is a handful of statements): ``INSERT ... ON CONFLICT`` on PostgreSQL
and SQLite, set-based updates guarded by ``source_time``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Table, and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from integrations.http import HttpClient
from integrations.lti_token import LtiTokenClient, SigningKey, TokenCache, TokenRequestError
from integrations.nrps import NRPS_SCOPE, Membership, NrpsClient, NrpsError, NrpsMember
from lti_app.db import dialect_insert, utcnow
from lti_app.domain.canvas import local_id
from lti_app.domain.vocab import EnrollmentState, LmsFamily, PersonKind, PlatformStatus, RosterSource
from lti_app.ids import parse_id
from lti_app.models import Course, Enrollment, Person, Platform, SyncRun
from lti_app.services.dispatch import RECONCILE_COURSE, enqueue
from lti_app.services.roster import primitives as roster

log = logging.getLogger(__name__)

CHUNK = 500
"""Rows per statement for IN lists and multi-row inserts (well under SQLite's variable limit)."""
PLACEHOLDER_SUB_PREFIX = "oneroster:"
"""``Person.lti_sub`` of people first seen in the SIS, before the LMS told us their real ``sub``."""
SYNC_KIND_NRPS = "nrps"


class RunStatus:
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class SyncOutcome:
    """What one reconciliation did (also returned to the CLI and the admin page)."""

    status: str
    course_id: int | None = None
    platform_id: int | None = None
    run_id: int | None = None
    added: int = 0
    updated: int = 0
    removed: int = 0
    error: str | None = None
    members: int = 0

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.OK


# ---------------------------------------------------------------------------------------------------------------
# Plumbing: HTTP wrapper, token cache, tool key
# ---------------------------------------------------------------------------------------------------------------

def http_client() -> HttpClient:
    """The one HTTP wrapper (timeouts, typed errors, 429/5xx retries)."""
    return HttpClient()


def token_cache() -> TokenCache:
    """One access-token cache per app (per process): tokens are reused across courses and tasks."""
    cache = current_app.extensions.get("caseload.lti_token_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("caseload.lti_token_cache", TokenCache())
    return cache  # type: ignore[no-any-return]


def _signing_key(session: Session) -> SigningKey:
    from lti_app.services.platforms.keys import current_key

    kid, pem = current_key(session)
    return SigningKey(kid=kid, private_pem=pem)


def token_client(session: Session, platform: Platform, http: HttpClient) -> LtiTokenClient:
    key = _signing_key(session)
    return LtiTokenClient(http, token_url=platform.auth_token_url, client_id=platform.client_id,
                          audience=platform.auth_audience or None, key_provider=lambda: key, cache=token_cache())


def nrps_client(session: Session, platform: Platform, http: HttpClient) -> NrpsClient:
    tokens = token_client(session, platform, http)

    def token(*, fresh: bool = False) -> str:
        return tokens.token([NRPS_SCOPE], fresh=fresh)

    return NrpsClient(http, token)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _table(model: Any) -> Table:
    """The Core table of a mapped class (typed as a Table for ``update()``/``insert()``)."""
    return model.__table__  # type: ignore[no-any-return]


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    return dialect_insert(session, table)


# ---------------------------------------------------------------------------------------------------------------
# Bulk person upsert
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonFacts:
    """What a roster source says about a person; None means "not said" (keeps what Caseload has)."""

    lti_sub: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    sis_id: str | None = None
    lms_user_id: str | None = None
    staff: bool = False


_PERSON_FIELDS = ("name", "given_name", "family_name", "email", "sis_id", "lms_user_id")


def upsert_people(session: Session, platform_id: int, facts: Iterable[PersonFacts]) -> tuple[dict[str, int], int]:
    """Create or update people in bulk. Returns ({lti_sub: person id}, how many existing people changed).

    Same rules as ``roster.upsert_person``: only given fields change, and a person once staff stays staff. People
    first created from the SIS (placeholder ``sub``) are adopted when the LMS reports them with the same SIS id.
    """
    by_sub: dict[str, PersonFacts] = {}
    for fact in facts:
        by_sub[fact.lti_sub] = fact
    subs = list(by_sub)
    existing: dict[str, dict[str, Any]] = {}
    table = _table(Person)
    cols = [table.c.id, table.c.lti_sub, table.c.kind, *(table.c[f] for f in _PERSON_FIELDS)]
    for chunk in _chunks(subs):
        for row in session.execute(select(*cols).where(table.c.platform_id == platform_id,
                                                       table.c.lti_sub.in_(chunk))):
            existing[row.lti_sub] = dict(row._mapping)
    _adopt_placeholders(session, platform_id, [by_sub[s] for s in subs if s not in existing], existing, cols)

    ids: dict[str, int] = {}
    changed_rows: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    now = utcnow()
    for sub, fact in by_sub.items():
        known = existing.get(sub)
        kind = PersonKind.STAFF.value if fact.staff else PersonKind.STUDENT.value
        if known is None:
            new_rows.append({"platform_id": platform_id, "lti_sub": sub, "name": fact.name or "",
                             "given_name": fact.given_name or "", "family_name": fact.family_name or "",
                             "email": fact.email, "sis_id": fact.sis_id, "lms_user_id": fact.lms_user_id,
                             "kind": kind, "created_at": now, "updated_at": now})
            continue
        ids[sub] = known["id"]
        changes = {f: getattr(fact, f) for f in _PERSON_FIELDS
                   if getattr(fact, f) is not None and getattr(fact, f) != known[f]}
        if fact.staff and known["kind"] != PersonKind.STAFF.value:
            changes["kind"] = PersonKind.STAFF.value
        if changes:
            changed_rows.append({"b_id": known["id"], **{f"b_{k}": v for k, v in changes.items()}})
    # Updates, grouped by the set of columns that change (one executemany per shape).
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for change in changed_rows:
        shapes[tuple(sorted(k[2:] for k in change if k != "b_id"))].append(change)
    for columns, params in shapes.items():
        stmt = (update(table).where(table.c.id == bindparam("b_id"))
                .values(updated_at=now, **{c: bindparam(f"b_{c}") for c in columns}))
        session.execute(stmt, params)
    if new_rows:
        insert = _insert(session, table)
        excluded = insert.excluded
        stmt = insert.on_conflict_do_update(
            index_elements=[table.c.platform_id, table.c.lti_sub],
            set_={
                # A concurrent launch inserted this person first: keep what it wrote unless we know more.
                "name": func.coalesce(func.nullif(excluded.name, ""), table.c.name),
                "given_name": func.coalesce(func.nullif(excluded.given_name, ""), table.c.given_name),
                "family_name": func.coalesce(func.nullif(excluded.family_name, ""), table.c.family_name),
                "email": func.coalesce(excluded.email, table.c.email),
                "sis_id": func.coalesce(excluded.sis_id, table.c.sis_id),
                "lms_user_id": func.coalesce(excluded.lms_user_id, table.c.lms_user_id),
                "kind": case((table.c.kind == PersonKind.STAFF.value, PersonKind.STAFF.value), else_=excluded.kind),
            },
        ).returning(table.c.id, table.c.lti_sub)
        for chunk in _chunks(new_rows):
            for row in session.execute(stmt, list(chunk)):
                ids[row.lti_sub] = row.id
    return ids, len(changed_rows)


def _adopt_placeholders(session: Session, platform_id: int, new: list[PersonFacts], existing: dict[str, dict[str, Any]],
                        cols: list[Any]) -> None:
    """A person created from the SIS before the LMS reported them becomes the LMS's person (same SIS id)."""
    by_sis = {f.sis_id: f for f in new if f.sis_id}
    if not by_sis:
        return
    table = _table(Person)
    for chunk in _chunks(list(by_sis)):
        rows = session.execute(select(*cols).where(table.c.platform_id == platform_id,
                                                   table.c.lti_sub.like(PLACEHOLDER_SUB_PREFIX + "%"),
                                                   table.c.sis_id.in_(chunk))).all()
        for row in rows:
            fact = by_sis.get(row.sis_id)
            if fact is None or fact.lti_sub in existing:
                continue
            session.execute(update(table).where(table.c.id == row.id).values(lti_sub=fact.lti_sub))
            existing[fact.lti_sub] = {**row._mapping, "lti_sub": fact.lti_sub}
            log.info("person %s adopted by the LMS identity (was first seen in the SIS)", row.id)


# ---------------------------------------------------------------------------------------------------------------
# Bulk enrollment writer
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class _Row:
    id: int
    course_id: int
    person_id: int
    section_id: int
    role: str
    state: str
    source: str
    source_time: dt.datetime


@dataclass
class Tally:
    added: int = 0
    removed: int = 0
    updated: int = 0
    stale: int = 0


@dataclass
class RosterWriter:
    """Loads a course's enrollments once, decides every change in memory, then writes them in bulk.

    Every update is guarded in SQL by ``source_time <= observation time``, so an event applied by a webhook
    between the load and the write still wins."""

    session: Session
    course_ids: Sequence[int]
    tally: Tally = field(default_factory=Tally)

    def __post_init__(self) -> None:
        self.rows: dict[tuple[int, int, str], list[_Row]] = defaultdict(list)
        table = _table(Enrollment)
        for chunk in _chunks(list(self.course_ids)):
            for r in self.session.execute(select(table.c.id, table.c.course_id, table.c.person_id, table.c.section_id,
                                                 table.c.role, table.c.state, table.c.source, table.c.source_time)
                                          .where(table.c.course_id.in_(chunk))):
                row = _Row(r.id, r.course_id, r.person_id, r.section_id, r.role, r.state, r.source,
                           _aware(r.source_time))
                self.rows[(row.course_id, row.person_id, row.role)].append(row)
        self._inserts: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._touches: dict[dt.datetime, list[int]] = defaultdict(list)

    # -- decisions -----------------------------------------------------------------------------------------------
    def _set_state(self, row: _Row, state: str, source: str, when: dt.datetime) -> None:
        self._updates.append({"b_id": row.id, "b_state": state, "b_source": source, "b_time": when})
        if row.state != EnrollmentState.ACTIVE.value and state == EnrollmentState.ACTIVE.value:
            self.tally.added += 1
        elif row.state == EnrollmentState.ACTIVE.value and state != EnrollmentState.ACTIVE.value:
            self.tally.removed += 1
        row.state, row.source, row.source_time = state, source, when

    def _touch(self, row: _Row, when: dt.datetime) -> None:
        if row.source_time < when:
            self._touches[when].append(row.id)
            row.source_time = when

    def _insert_row(self, course_id: int, person_id: int, section_id: int, role: str, state: str, source: str,
                    when: dt.datetime) -> None:
        now = utcnow()
        self._inserts.append({"person_id": person_id, "course_id": course_id, "section_id": section_id,
                              "role": role, "state": state, "source": source, "source_time": when,
                              "created_at": now, "updated_at": now})
        self.rows[(course_id, person_id, role)].append(
            _Row(0, course_id, person_id, section_id, role, state, source, when))
        if state == EnrollmentState.ACTIVE.value:
            self.tally.added += 1

    def member_active(self, *, course_id: int, person_id: int, role: str, wide_section_id: int, source: str,
                      when: dt.datetime) -> None:
        """A course-level source (NRPS) saw this person active in this role at ``when``."""
        rows = self.rows.get((course_id, person_id, role), [])
        active = [r for r in rows if r.state == EnrollmentState.ACTIVE.value]
        if active:
            for r in active:
                self._touch(r, when)
            if any(r.section_id != wide_section_id for r in active):
                for r in active:
                    if r.section_id == wide_section_id and r.source == source and r.id and r.source_time <= when:
                        # Superseded by a real section enrollment: not a removal from the course.
                        self._set_state(r, EnrollmentState.INACTIVE.value, source, when)
                        self.tally.removed -= 1
                        self.tally.updated += 1
            return
        if any(r.source_time > when for r in rows):
            self.tally.stale += 1  # ended after we looked: the newer observation stands
            return
        wide = next((r for r in rows if r.section_id == wide_section_id and r.id), None)
        if wide is not None:
            self._set_state(wide, EnrollmentState.ACTIVE.value, source, when)
        else:
            self._insert_row(course_id, person_id, wide_section_id, role, EnrollmentState.ACTIVE.value, source, when)

    def end_missing(self, *, course_id: int, keep: set[tuple[int, str]], source: str, when: dt.datetime,
                    deleted: set[tuple[int, str]] | None = None, only_source: str | None = None) -> None:
        """End active enrollments of this course whose (person, role) is not in ``keep`` (set difference)."""
        for (c_id, person_id, role), rows in self.rows.items():
            if c_id != course_id or (person_id, role) in keep:
                continue
            for r in rows:
                if r.state != EnrollmentState.ACTIVE.value or not r.id:
                    continue
                if only_source is not None and r.source != only_source:
                    continue
                if r.source_time > when:
                    self.tally.stale += 1
                    continue
                state = (EnrollmentState.DELETED.value if deleted and (person_id, role) in deleted
                         else EnrollmentState.INACTIVE.value)
                self._set_state(r, state, source, when)

    def observe(self, *, course_id: int, person_id: int, section_id: int, role: str, state: str, source: str,
                when: dt.datetime) -> None:
        """A section-level observation (OneRoster): exactly this section, this state, at ``when``."""
        rows = self.rows.get((course_id, person_id, role), [])
        row = next((r for r in rows if r.section_id == section_id), None)
        if row is None:
            if state == EnrollmentState.ACTIVE.value:
                self._insert_row(course_id, person_id, section_id, role, state, source, when)
            return
        if when < row.source_time:
            self.tally.stale += 1
            return
        if row.state != state and row.id:
            self._set_state(row, state, source, when)
        elif row.id:
            self._touch(row, when)

    def active_rows(self, course_id: int | None = None) -> Iterator[_Row]:
        for (c_id, _p, _r), rows in self.rows.items():
            if course_id is None or c_id == course_id:
                yield from (r for r in rows if r.state == EnrollmentState.ACTIVE.value and r.id)

    # -- writing -------------------------------------------------------------------------------------------------
    def flush(self) -> None:
        table = _table(Enrollment)
        now = utcnow()
        if self._updates:
            stmt = (update(table)
                    .where(and_(table.c.id == bindparam("b_id"), table.c.source_time <= bindparam("b_time")))
                    .values(state=bindparam("b_state"), source=bindparam("b_source"),
                            source_time=bindparam("b_time"), updated_at=now))
            for chunk in _chunks(self._updates):
                self.session.execute(stmt, list(chunk))
        for when, ids in self._touches.items():
            for chunk in _chunks(ids):
                self.session.execute(update(table).where(table.c.id.in_(chunk), table.c.source_time < when)
                                     .values(source_time=when))
        if self._inserts:
            stmt = _insert(self.session, table).on_conflict_do_nothing(
                index_elements=[table.c.person_id, table.c.section_id, table.c.role])
            for chunk in _chunks(self._inserts):
                self.session.execute(stmt, list(chunk))
        self._inserts, self._updates, self._touches = [], [], defaultdict(list)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------------------------
# NRPS reconciliation
# ---------------------------------------------------------------------------------------------------------------

def _member_facts(platform: Platform, member: NrpsMember) -> PersonFacts:
    lms_user_id: str | None = None
    if platform.lms == LmsFamily.CANVAS.value and member.lms_user_id:
        lms_user_id = local_id(member.lms_user_id)
    elif platform.lms == LmsFamily.MOODLE.value:
        lms_user_id = member.user_id  # Moodle's LTI sub is its numeric user id
    return PersonFacts(lti_sub=member.user_id, name=member.name, given_name=member.given_name,
                       family_name=member.family_name, email=member.email, sis_id=member.sourced_id,
                       lms_user_id=lms_user_id, staff=member.is_staff)


class EmptyRosterRefused(Exception):
    pass


def apply_membership(session: Session, course: Course, platform: Platform, membership: Membership,
                     observed_at: dt.datetime) -> SyncOutcome:
    """Make the course's enrollments agree with ``membership`` (flushes; the caller commits)."""
    facts = [_member_facts(platform, m) for m in membership.members]
    ids, people_changed = upsert_people(session, platform.id, facts)
    wide = roster.course_wide_section(session, course)
    writer = RosterWriter(session, [course.id])
    keep: set[tuple[int, str]] = set()
    deleted: set[tuple[int, str]] = set()
    for member in membership.members:
        person_id = ids[member.user_id]
        for role in member.roles:
            if member.status == "active":
                keep.add((person_id, role))
            elif member.status == "deleted":
                deleted.add((person_id, role))
    if not keep and any(True for _ in writer.active_rows(course.id)):
        raise EmptyRosterRefused()
    for person_id, role in sorted(keep):
        writer.member_active(course_id=course.id, person_id=person_id, role=role, wide_section_id=wide.id,
                             source=RosterSource.NRPS.value, when=observed_at)
    writer.end_missing(course_id=course.id, keep=keep, deleted=deleted, source=RosterSource.NRPS.value,
                       when=observed_at)
    writer.flush()
    return SyncOutcome(status=RunStatus.OK, course_id=course.id, platform_id=platform.id, added=writer.tally.added,
                       removed=writer.tally.removed, updated=writer.tally.updated + people_changed,
                       members=len(membership.members))


def _canvas_rlid(platform: Platform, course: Course) -> str | None:
    """Canvas accepts the course's own context id as ``rlid`` and then includes each member's Canvas user id
    (``message``); other platforms need a real resource link id, which a course-level sync does not have."""
    return course.lti_context_id if platform.lms == LmsFamily.CANVAS.value else None


STALE_RUN_AFTER = dt.timedelta(minutes=30)
"""A run still ``running`` after this long was interrupted (worker killed, deploy); it is marked failed."""


def _start_run(session: Session, platform_id: int, course_id: int | None, kind: str, trigger: str) -> SyncRun:
    now = utcnow()
    table = _table(SyncRun)
    session.execute(update(table).where(
        table.c.platform_id == platform_id,
        table.c.course_id.is_(None) if course_id is None else table.c.course_id == course_id,
        table.c.kind == kind, table.c.status == RunStatus.RUNNING, table.c.started_at < now - STALE_RUN_AFTER,
    ).values(status=RunStatus.FAILED, finished_at=now,
             error="Interrupted before it finished (the worker stopped); a later run replaces it."))
    run = SyncRun(platform_id=platform_id, course_id=course_id, kind=kind, trigger=trigger[:20],
                  started_at=utcnow(), status=RunStatus.RUNNING, added=0, updated=0, removed=0)
    session.add(run)
    session.commit()
    return run


def _fail_run(session: Session, run_id: int, reason: str) -> None:
    session.rollback()
    run = session.get(SyncRun, run_id)
    if run is not None:
        run.status = RunStatus.FAILED
        run.error = reason[:2000]
        run.finished_at = utcnow()
        session.commit()


def reconcile_course(session: Session, course_id: int, *, trigger: str = "schedule",
                     http: HttpClient | None = None) -> SyncOutcome:
    """Pull one course's roster through NRPS and apply it. Records a ``SyncRun``; commits."""
    course = session.get(Course, course_id)
    if course is None:
        return SyncOutcome(status="skipped", course_id=course_id, error="No such course.")
    platform = session.get(Platform, course.platform_id)
    if platform is None or platform.status != PlatformStatus.ACTIVE.value:
        return SyncOutcome(status="skipped", course_id=course_id, error="The platform is not active.")
    if not course.nrps_url:
        return SyncOutcome(status="skipped", course_id=course_id, platform_id=platform.id,
                           error="The LMS has not given Caseload a roster (NRPS) URL for this course yet: "
                                 "it arrives with the first launch from the course.")
    run = _start_run(session, platform.id, course.id, SYNC_KIND_NRPS, trigger)
    run_id = run.id
    observed_at = utcnow()
    try:
        client = nrps_client(session, platform, http or http_client())
        membership = client.fetch(course.nrps_url, rlid=_canvas_rlid(platform, course))
    except (TokenRequestError, NrpsError) as exc:
        log.warning("NRPS reconcile of course %s failed: %s", course_id, exc.reason)
        _fail_run(session, run_id, exc.reason)
        return SyncOutcome(status=RunStatus.FAILED, course_id=course_id, platform_id=platform.id, run_id=run_id,
                           error=exc.reason)
    except Exception:
        log.exception("NRPS reconcile of course %s failed unexpectedly", course_id)
        reason = "Caseload could not read the roster (unexpected error; see the server log)."
        _fail_run(session, run_id, reason)
        return SyncOutcome(status=RunStatus.FAILED, course_id=course_id, platform_id=platform.id, run_id=run_id,
                           error=reason)
    try:
        outcome = apply_membership(session, course, platform, membership, observed_at)
    except EmptyRosterRefused:
        reason = ("The LMS returned a roster with no active member while Caseload has active enrollments in this "
                  "course; nothing was changed. If the course really is empty, its enrollments end when the LMS "
                  "reports the removals.")
        _fail_run(session, run_id, reason)
        return SyncOutcome(status=RunStatus.FAILED, course_id=course_id, platform_id=platform.id, run_id=run_id,
                           error=reason)
    except Exception:
        log.exception("applying the NRPS roster of course %s failed", course_id)
        reason = "Caseload could not apply the roster (unexpected error; see the server log). Nothing was changed."
        _fail_run(session, run_id, reason)
        return SyncOutcome(status=RunStatus.FAILED, course_id=course_id, platform_id=platform.id, run_id=run_id,
                           error=reason)
    finished = session.get(SyncRun, run_id)
    assert finished is not None
    finished.status = RunStatus.OK
    finished.added, finished.updated, finished.removed = outcome.added, outcome.updated, outcome.removed
    finished.finished_at = utcnow()
    if membership.context_title and not course.title:
        course.title = membership.context_title
    course.last_roster_sync_at = observed_at
    session.commit()
    log.info("NRPS reconcile of course %s: %s members, +%s ~%s -%s", course_id, outcome.members, outcome.added,
             outcome.updated, outcome.removed)
    return dataclasses.replace(outcome, run_id=run_id)


# ---------------------------------------------------------------------------------------------------------------
# On launch (debounced) and on a schedule
# ---------------------------------------------------------------------------------------------------------------

def claim_course_sync(session: Session, course_id: int, debounce_seconds: int, now: dt.datetime | None = None) -> bool:
    """Atomically mark the course as being synced now unless it was synced within ``debounce_seconds``.

    One UPDATE ... WHERE: of two launches at the same moment in two processes, exactly one wins."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=debounce_seconds)
    if session.get_bind().dialect.name == "postgresql":
        # Never wait long behind a row lock (the caller may be a launch request).
        session.execute(select(func.set_config("lock_timeout", "2000", True)))
    table = _table(Course)
    result = session.execute(
        update(table)
        .where(table.c.id == course_id, table.c.nrps_url.is_not(None),
               (table.c.last_roster_sync_at.is_(None)) | (table.c.last_roster_sync_at < cutoff))
        .values(last_roster_sync_at=now)
    )
    claimed = bool(result.rowcount)  # type: ignore[attr-defined]
    session.commit()
    return claimed


def request_course_sync(course_id: int, trigger: str = "launch") -> None:
    """Ask for an NRPS reconcile of this course after a launch, at most once per ``nrps_debounce_seconds``.

    Called by the launch code AFTER its transaction committed. Never raises: a roster pull must not break a
    launch. With a broker the reconcile runs on a worker; in the embedded (eager) mode it runs here, before the
    launch page renders, so the first panel already shows the whole class."""
    try:
        from lti_app.services.uow import UnitOfWork

        debounce = current_app.config["CASELOAD"].nrps_debounce_seconds
        with UnitOfWork() as uow:
            claimed = claim_course_sync(uow.session, course_id, debounce)
        if not claimed:
            return
        enqueue(RECONCILE_COURSE, course_id, trigger)
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not request a roster sync for course %s", course_id)


def courses_to_reconcile(session: Session, platform_id: int | None = None,
                         lti_context_id: str | None = None) -> list[int]:
    """Courses with an NRPS URL on active platforms (optionally one platform / one course), oldest sync first."""
    stmt = (select(Course.id).join(Platform, Platform.id == Course.platform_id)
            .where(Course.nrps_url.is_not(None), Platform.status == PlatformStatus.ACTIVE.value))
    if platform_id is not None:
        stmt = stmt.where(Course.platform_id == platform_id)
    if lti_context_id is not None:
        stmt = stmt.where(Course.lti_context_id == lti_context_id)
    stmt = stmt.order_by(Course.last_roster_sync_at.asc().nulls_first(), Course.id)
    return list(session.scalars(stmt))


def schedule_plan(course_ids: Sequence[int], window_seconds: int) -> list[tuple[int, int]]:
    """(course id, countdown seconds): the scheduled reconciles spread evenly over ``window_seconds`` so an LMS
    never sees every course at once."""
    if not course_ids:
        return []
    step = window_seconds / len(course_ids)
    return [(course_id, int(i * step)) for i, course_id in enumerate(course_ids)]


# ---------------------------------------------------------------------------------------------------------------
# What Caseload believes (CLI ``roster list``)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RosterLine:
    person_id: int
    lti_sub: str
    name: str
    role: str
    section: str
    lms_section_id: str
    state: str
    source: str
    source_time: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "lti_sub": self.lti_sub, "name": self.name, "role": self.role,
                "section": self.section, "lms_section_id": self.lms_section_id, "state": self.state,
                "source": self.source, "source_time": self.source_time.isoformat()}


class NotFound(LookupError):
    """A platform or course named on the command line does not exist; the message says which."""


def find_platform(session: Session, name_or_id: str) -> Platform:
    platform = session.scalars(select(Platform).where(Platform.name == name_or_id)).first()
    if platform is None and (platform_id := parse_id(name_or_id)) is not None:
        platform = session.get(Platform, platform_id)
    if platform is None:
        raise NotFound(f"No platform named {name_or_id!r} (see `caseload platform list`).")
    return platform


def find_course(session: Session, platform: Platform, lti_context_id: str) -> Course:
    course = roster.get_course(session, platform.id, lti_context_id)
    if course is None:
        raise NotFound(f"Platform {platform.name!r} has no course with LTI context id {lti_context_id!r}.")
    return course


def roster_lines(session: Session, course: Course) -> list[RosterLine]:
    """Every enrollment Caseload holds for the course, active first, then by name."""
    from lti_app.models import Section

    rows = session.execute(
        select(Person.id, Person.lti_sub, Person.name, Person.given_name, Person.family_name, Enrollment.role,
               Section.name.label("section_name"), Section.lms_section_id, Enrollment.state, Enrollment.source,
               Enrollment.source_time)
        .join(Person, Person.id == Enrollment.person_id)
        .join(Section, Section.id == Enrollment.section_id)
        .where(Enrollment.course_id == course.id)
    ).all()
    lines = []
    for r in rows:
        name = r.name or f"{r.given_name} {r.family_name}".strip() or f"User {r.id}"
        section = "course-wide" if r.lms_section_id == roster.COURSE_WIDE else (r.section_name or r.lms_section_id)
        lines.append(RosterLine(person_id=r.id, lti_sub=r.lti_sub, name=name, role=r.role, section=section,
                                lms_section_id=r.lms_section_id, state=r.state, source=r.source,
                                source_time=_aware(r.source_time)))
    order = {EnrollmentState.ACTIVE.value: 0, EnrollmentState.INACTIVE.value: 1, EnrollmentState.DELETED.value: 2}
    lines.sort(key=lambda line: (order.get(line.state, 3), line.name.casefold(), line.role, line.section))
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Sync health (the admin page)
# ---------------------------------------------------------------------------------------------------------------

def sync_course_now(session: Session, course_id: int, *, trigger: str = "admin") -> SyncOutcome | None:
    """"Sync now": run here in the embedded (eager) mode and return the outcome; with a broker, queue it and
    return None (the page shows the result when the worker is done)."""
    if current_app.config["CASELOAD"].eager_tasks:
        return reconcile_course(session, course_id, trigger=trigger)
    enqueue(RECONCILE_COURSE, course_id, trigger)
    return None

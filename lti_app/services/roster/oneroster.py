"""OneRoster pulls for districts whose SIS is the source of truth (a companion of ``reconcile.py``).

How SIS records meet LMS records:
- a OneRoster *class* is matched to a Caseload ``Section`` with the same ``sis_id`` (Canvas sections carry SIS
  ids), else to a ``Course`` with that ``sis_id`` (its course-wide section). Classes of courses Caseload has not
  seen yet are skipped; the next full pull after the course's first launch picks them up;
- a OneRoster *user* is matched to a ``Person`` of the platform whose ``sis_id`` equals the user's ``sourcedId``
  or ``identifier``. A user Caseload has never seen (students rarely launch Caseload) is created with a placeholder
  ``lti_sub`` (``oneroster:<sourcedId>``); when the LMS later reports the person (NRPS, with the same SIS id) the
  placeholder is adopted rather than duplicated.

Pull kinds: a *delta* asks for records with ``dateLastModified`` after the last watermark; a deleted record comes
back with ``status: tobedeleted`` and ends the enrollment. A *full* pull (the first one, then every
``FULL_PULL_EVERY``) also ends, by set difference, enrollments that Caseload got from OneRoster and the SIS no
longer lists. Each OneRoster record carries its own modification time, which is the observation time compared
with ``source_time``.

Configuration lives in ``Platform.settings["oneroster"]`` with the client secret encrypted by the data keys.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.http import HttpClient
from integrations.oneroster import OneRosterClient, OneRosterConfig, OneRosterError, OrEnrollment, OrUser
from integrations.oneroster.client import VERSIONS, format_timestamp, parse_timestamp
from lti_app import clock
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.vocab import EnrollmentState, PlatformStatus, RosterSource
from lti_app.models import Course, Person, Platform, Section, SyncRun
from lti_app.services.roster import primitives as roster
from lti_app.services.roster.reconcile import (
    PLACEHOLDER_SUB_PREFIX,
    PersonFacts,
    RosterWriter,
    RunStatus,
    SyncOutcome,
    _fail_run,
    _start_run,
    http_client,
    token_cache,
    upsert_people,
)

log = logging.getLogger(__name__)

SETTINGS_KEY = "oneroster"
KIND_FULL = "oneroster_full"
KIND_DELTA = "oneroster_delta"
FULL_PULL_EVERY = dt.timedelta(hours=24)
"""A full pull at least this often: it catches what deltas cannot (records hard-deleted without a tombstone)."""
WATERMARK_OVERLAP = dt.timedelta(minutes=5)
"""Tolerated clock difference between the SIS and Caseload when advancing the delta watermark."""


class ConfigError(ValueError):
    """The OneRoster settings given are not usable; the message says which and why."""


@dataclass(frozen=True)
class OneRosterSettings:
    """The non-secret part, for display."""

    base_url: str
    token_url: str
    client_id: str
    version: str
    enabled: bool


def configure(session: Session, platform: Platform, *, base_url: str, token_url: str, client_id: str,
              client_secret: str | None, version: str = "1.2", enabled: bool = True) -> OneRosterSettings:
    """Validate and store the OneRoster connection of a platform (secret encrypted). Commits."""
    if version not in VERSIONS:
        raise ConfigError(f"OneRoster version must be one of {', '.join(sorted(VERSIONS))} (OAuth 2.0 only).")
    for label, url in (("base URL", base_url), ("token URL", token_url)):
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"The OneRoster {label} must be an http(s) URL.")
    if not client_id.strip():
        raise ConfigError("The OneRoster client ID is empty.")
    current = dict((platform.settings or {}).get(SETTINGS_KEY) or {})
    secret_token = current.get("client_secret_encrypted")
    if client_secret:
        secret_token = cipher().encrypt(client_secret).decode("ascii")
    if not secret_token:
        raise ConfigError("A OneRoster client secret is required the first time.")
    current.update(base_url=base_url.rstrip("/"), token_url=token_url, client_id=client_id.strip(),
                   client_secret_encrypted=secret_token, version=version, enabled=enabled)
    platform.settings = {**(platform.settings or {}), SETTINGS_KEY: current}
    session.commit()
    return OneRosterSettings(base_url=current["base_url"], token_url=token_url, client_id=current["client_id"],
                             version=version, enabled=enabled)


def settings_of(platform: Platform) -> OneRosterSettings | None:
    raw = (platform.settings or {}).get(SETTINGS_KEY)
    if not raw:
        return None
    return OneRosterSettings(base_url=raw.get("base_url", ""), token_url=raw.get("token_url", ""),
                             client_id=raw.get("client_id", ""), version=raw.get("version", "1.2"),
                             enabled=bool(raw.get("enabled", True)))


def client_config(platform: Platform) -> OneRosterConfig | None:
    raw = (platform.settings or {}).get(SETTINGS_KEY)
    if not raw or not raw.get("enabled", True) or not raw.get("client_secret_encrypted"):
        return None
    secret = cipher().decrypt(raw["client_secret_encrypted"].encode("ascii"))
    return OneRosterConfig(base_url=raw["base_url"], token_url=raw["token_url"], client_id=raw["client_id"],
                           client_secret=secret, version=raw.get("version", "1.2"))


def configured_platforms(session: Session) -> list[int]:
    platforms = session.scalars(select(Platform).where(Platform.status == PlatformStatus.ACTIVE.value))
    return [p.id for p in platforms if client_config(p) is not None]


def _last_runs(session: Session, platform_id: int) -> tuple[SyncRun | None, SyncRun | None]:
    """(last successful run of either kind, last successful full run)."""
    base = (select(SyncRun).where(SyncRun.platform_id == platform_id, SyncRun.status == RunStatus.OK,
                                  SyncRun.kind.in_([KIND_FULL, KIND_DELTA]))
            .order_by(SyncRun.started_at.desc()).limit(1))
    last = session.scalars(base).first()
    last_full = session.scalars(base.where(SyncRun.kind == KIND_FULL)).first()
    return last, last_full


@dataclass
class _Targets:
    """Where OneRoster classes land: sis_id -> (course id, section id)."""

    by_sis: dict[str, tuple[int, int]]
    course_ids: list[int]


def _targets(session: Session, platform_id: int) -> _Targets:
    by_sis: dict[str, tuple[int, int]] = {}
    courses = list(session.scalars(select(Course).where(Course.platform_id == platform_id,
                                                        Course.sis_id.is_not(None))))
    for course in courses:
        wide = roster.course_wide_section(session, course)
        by_sis[str(course.sis_id)] = (course.id, wide.id)
    sections = session.execute(select(Section.sis_id, Section.course_id, Section.id)
                               .join(Course, Course.id == Section.course_id)
                               .where(Course.platform_id == platform_id, Section.sis_id.is_not(None)))
    for sis_id, course_id, section_id in sections:
        by_sis[str(sis_id)] = (course_id, section_id)  # a section match is more precise than the course
    return _Targets(by_sis=by_sis, course_ids=sorted({c for c, _ in by_sis.values()}))


def _people_by_sis(session: Session, platform_id: int, keys: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    key_list = sorted(keys)
    for i in range(0, len(key_list), 500):
        chunk = key_list[i:i + 500]
        for person_id, sis_id in session.execute(select(Person.id, Person.sis_id)
                                                 .where(Person.platform_id == platform_id,
                                                        Person.sis_id.in_(chunk))):
            found.setdefault(str(sis_id), person_id)
    return found


def pull(session: Session, platform_id: int, *, full: bool | None = None, trigger: str = "schedule",
         http: HttpClient | None = None) -> SyncOutcome:
    """One OneRoster pull for a platform (delta, or full when due or asked). Records a ``SyncRun``; commits."""
    platform = session.get(Platform, platform_id)
    if platform is None or platform.status != PlatformStatus.ACTIVE.value:
        return SyncOutcome(status="skipped", platform_id=platform_id, error="The platform is not active.")
    config = client_config(platform)
    if config is None:
        return SyncOutcome(status="skipped", platform_id=platform_id,
                           error="OneRoster is not configured for this platform.")
    last, last_full = _last_runs(session, platform_id)
    started = utcnow()
    if full is None:
        full = (last is None or last.cursor is None or last_full is None
                or started - last_full.started_at > FULL_PULL_EVERY)
    since = None if full else parse_timestamp(last.cursor if last else None)
    run = _start_run(session, platform_id, None, KIND_FULL if full else KIND_DELTA, trigger)
    run_id = run.id
    client = OneRosterClient(http or http_client(), config, cache=token_cache())
    try:
        outcome, cursor = _apply_pull(session, platform, client, since=since, full=full, started=started)
    except OneRosterError as exc:
        log.warning("OneRoster pull for platform %s failed: %s", platform_id, exc.reason)
        _fail_run(session, run_id, exc.reason)
        return SyncOutcome(status=RunStatus.FAILED, platform_id=platform_id, run_id=run_id, error=exc.reason)
    except Exception:
        log.exception("OneRoster pull for platform %s failed unexpectedly", platform_id)
        reason = "Caseload could not apply the OneRoster data (unexpected error; see the server log). Nothing changed."
        _fail_run(session, run_id, reason)
        return SyncOutcome(status=RunStatus.FAILED, platform_id=platform_id, run_id=run_id, error=reason)
    finished = session.get(SyncRun, run_id)
    assert finished is not None
    finished.status = RunStatus.OK
    finished.added, finished.updated, finished.removed = outcome.added, outcome.updated, outcome.removed
    finished.cursor = cursor or (last.cursor if last else None)
    finished.finished_at = utcnow()
    session.commit()
    log.info("OneRoster %s pull for platform %s: +%s ~%s -%s", finished.kind, platform_id, outcome.added,
             outcome.updated, outcome.removed)
    return SyncOutcome(status=RunStatus.OK, platform_id=platform_id, run_id=run_id, added=outcome.added,
                       updated=outcome.updated, removed=outcome.removed, members=outcome.members)


class _Watermark:
    """Where the next delta starts: the newest ``dateLastModified`` seen, but never later than the pull's start
    minus ``WATERMARK_OVERLAP``. A record changed while the pull was reading (after its collection was read) has a
    time after the start, so it is fetched again next time; fetching a record twice is harmless (newest wins)."""

    def __init__(self, started: dt.datetime) -> None:
        self.limit = started - WATERMARK_OVERLAP
        self.newest: dt.datetime | None = None

    def see(self, stamp: dt.datetime | None) -> None:
        if stamp is not None and (self.newest is None or stamp > self.newest):
            self.newest = stamp

    def cursor(self) -> str | None:
        return format_timestamp(min(self.newest, self.limit)) if self.newest else None


def _apply_pull(session: Session, platform: Platform, client: OneRosterClient, *, since: dt.datetime | None,
                full: bool, started: dt.datetime) -> tuple[SyncOutcome, str | None]:
    targets = _targets(session, platform.id)
    mark = _Watermark(started)
    # 1. Enrollments of classes Caseload knows (everything is read before anything is written).
    relevant: list[OrEnrollment] = []
    unmapped_classes: set[str] = set()
    for enrollment in client.enrollments(since=since):
        mark.see(enrollment.date_last_modified)
        if enrollment.role is None or not enrollment.user_sourced_id or not enrollment.class_sourced_id:
            continue
        if enrollment.class_sourced_id not in targets.by_sis:
            unmapped_classes.add(enrollment.class_sourced_id)
            continue
        relevant.append(enrollment)
    deleted_classes: set[str] = set()
    for klass in client.classes(since=since):
        mark.see(klass.date_last_modified)
        if klass.status == "tobedeleted" and klass.sourced_id in targets.by_sis:
            deleted_classes.add(klass.sourced_id)
    # 2. Users: those enrolled in known classes, and changes to people Caseload already has.
    needed = {e.user_sourced_id for e in relevant if e.user_sourced_id}
    users: dict[str, OrUser] = {}
    changed_users: list[OrUser] = []
    for user in client.users(since=since):
        mark.see(user.date_last_modified)
        if user.sourced_id in needed:
            users[user.sourced_id] = user
        else:
            changed_users.append(user)
    known = _people_by_sis(session, platform.id, {u.sourced_id for u in changed_users}
                           | {u.identifier for u in changed_users if u.identifier})
    for user in changed_users:
        if user.sourced_id in known or (user.identifier and user.identifier in known):
            users[user.sourced_id] = user
    known_needed = _people_by_sis(session, platform.id, needed - users.keys())
    for sourced_id in sorted(needed - users.keys() - known_needed.keys()):
        fetched = client.user(sourced_id)  # unchanged since the watermark, but newly relevant and unknown
        if fetched is not None:
            users[sourced_id] = fetched
    if unmapped_classes:
        log.info("OneRoster: %s classes have no matching Caseload course or section yet", len(unmapped_classes))

    # 3. People.
    person_of: dict[str, int] = dict(known_needed)
    existing = _people_by_sis(session, platform.id, set(users) | {u.identifier for u in users.values() if u.identifier})
    facts: list[PersonFacts] = []
    staff_by_user = {e.user_sourced_id for e in relevant if e.role in ("teacher", "ta")}
    for sourced_id, user in users.items():
        person_id = existing.get(sourced_id) or (existing.get(user.identifier) if user.identifier else None)
        if person_id is not None:
            person_of[sourced_id] = person_id
            sub = session.scalar(select(Person.lti_sub).where(Person.id == person_id))
        else:
            sub = PLACEHOLDER_SUB_PREFIX + sourced_id
        facts.append(PersonFacts(lti_sub=str(sub), name=user.name, given_name=user.given_name,
                                 family_name=user.family_name, email=user.email,
                                 sis_id=None if person_id else sourced_id,
                                 staff=user.is_staff or sourced_id in staff_by_user))
    ids, people_changed = upsert_people(session, platform.id, facts)
    for sourced_id in users:
        if sourced_id not in person_of:
            person_of[sourced_id] = ids[PLACEHOLDER_SUB_PREFIX + sourced_id]

    # 4. Enrollments.
    writer = RosterWriter(session, targets.course_ids)
    today = clock.local_date(started)  # enrollment begin/end dates are the district's calendar dates
    seen: set[tuple[int, int, int, str]] = set()
    for enrollment in relevant:
        person_id = person_of.get(enrollment.user_sourced_id or "")
        if person_id is None:
            continue
        course_id, section_id = targets.by_sis[enrollment.class_sourced_id or ""]
        of_user = users.get(enrollment.user_sourced_id or "")
        active = enrollment.active_on(today) and (of_user is None or (of_user.status == "active" and of_user.enabled))
        if enrollment.status == "tobedeleted":
            state = EnrollmentState.DELETED.value
        else:
            state = EnrollmentState.ACTIVE.value if active else EnrollmentState.INACTIVE.value
        writer.observe(course_id=course_id, person_id=person_id, section_id=section_id, role=str(enrollment.role),
                       state=state, source=RosterSource.ONEROSTER.value,
                       when=enrollment.date_last_modified or started)
        if state == EnrollmentState.ACTIVE.value:
            seen.add((course_id, person_id, section_id, str(enrollment.role)))
    # Users the SIS deleted or disabled: their OneRoster enrollments end.
    gone = {person_of[s] for s, u in users.items() if s in person_of and (u.status != "active" or not u.enabled)}
    for row in list(writer.active_rows()):
        if row.person_id in gone and row.source == RosterSource.ONEROSTER.value:
            writer.observe(course_id=row.course_id, person_id=row.person_id, section_id=row.section_id,
                           role=row.role, state=EnrollmentState.INACTIVE.value, source=RosterSource.ONEROSTER.value,
                           when=started)
    # Classes the SIS deleted: their OneRoster enrollments end.
    for sis_id in deleted_classes:
        course_id, section_id = targets.by_sis[sis_id]
        for row in list(writer.active_rows(course_id)):
            if row.section_id == section_id and row.source == RosterSource.ONEROSTER.value:
                writer.observe(course_id=course_id, person_id=row.person_id, section_id=section_id, role=row.role,
                               state=EnrollmentState.DELETED.value, source=RosterSource.ONEROSTER.value, when=started)
    if full:
        # Set difference: OneRoster-sourced enrollments the SIS no longer lists.
        for row in list(writer.active_rows()):
            if row.source != RosterSource.ONEROSTER.value:
                continue
            if (row.course_id, row.person_id, row.section_id, row.role) not in seen and row.source_time <= started:
                writer.observe(course_id=row.course_id, person_id=row.person_id, section_id=row.section_id,
                               role=row.role, state=EnrollmentState.INACTIVE.value,
                               source=RosterSource.ONEROSTER.value, when=started)
    writer.flush()
    outcome = SyncOutcome(status=RunStatus.OK, platform_id=platform.id, added=writer.tally.added,
                          removed=writer.tally.removed, updated=writer.tally.updated + people_changed,
                          members=len(relevant))
    return outcome, mark.cursor()


def describe(platform: Platform) -> dict[str, Any] | None:
    """The stored configuration without the secret (CLI, admin page)."""
    found = settings_of(platform)
    if found is None:
        return None
    return {"base_url": found.base_url, "token_url": found.token_url, "client_id": found.client_id,
            "version": found.version, "enabled": found.enabled}


__all__ = ["ConfigError", "KIND_DELTA", "KIND_FULL", "configure", "configured_platforms", "describe", "pull",
           "settings_of"]

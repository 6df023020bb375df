"""Roster write primitives shared by every source (launch, webhooks, NRPS, OneRoster, demo).

One rule holds for all sources: an enrollment row remembers the newest event time applied to it
(``source_time``); an event older than that changes nothing. This is what makes unordered, at-least-once
delivery (Canvas Live Events) safe: a delete that arrives before its create leaves a ``deleted`` row whose
later-arriving, older create is ignored.

These functions flush but never commit: the calling use case owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import dialect_insert
from lti_app.domain.vocab import EnrollmentState, PersonKind
from lti_app.models import Course, Enrollment, Person, Section

log = logging.getLogger(__name__)

COURSE_WIDE = ""
"""``Section.lms_section_id`` of the course-wide section (enrollments whose section the LMS did not say)."""


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"


def _set_if_given(obj: Any, **values: Any) -> bool:
    changed = False
    for key, value in values.items():
        if value is not None and getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _insert_or_get(session: Session, obj: Any, lookup: Any) -> tuple[Any, bool]:
    """Insert ``obj``'s row unless a concurrent writer inserted the same key first; return the stored object and
    whether this call created it. One statement (``INSERT … ON CONFLICT DO NOTHING RETURNING``), no savepoint."""
    model = type(obj)
    values = {attr.columns[0].name: getattr(obj, attr.key) for attr in sa_inspect(model).column_attrs
              if getattr(obj, attr.key) is not None}
    stmt = dialect_insert(session, model).values(**values).on_conflict_do_nothing().returning(model)
    created = session.scalars(stmt).first()
    if created is not None:
        return created, True
    existing = session.scalars(lookup).one_or_none()
    if existing is None:
        raise IntegrityError("insert conflicted but no row matches the lookup", None, Exception(model.__name__))
    return existing, False


def get_person(session: Session, platform_id: int, lti_sub: str) -> Person | None:
    stmt = select(Person).where(Person.platform_id == platform_id, Person.lti_sub == lti_sub)
    return session.scalars(stmt).one_or_none()


def find_person_by_lms_user_id(session: Session, platform_id: int, lms_user_id: str) -> Person | None:
    stmt = select(Person).where(Person.platform_id == platform_id, Person.lms_user_id == str(lms_user_id))
    return session.scalars(stmt.limit(1)).first()


def upsert_person(session: Session, platform_id: int, lti_sub: str, *, lms_user_id: str | None = None,
                  sis_id: str | None = None, name: str | None = None, given_name: str | None = None,
                  family_name: str | None = None, email: str | None = None, kind: str | None = None) -> Person:
    """Create or update a person; only the fields given (not None) are changed. A person once known as
    staff stays staff (a teacher who is also enrolled as a student somewhere is still staff)."""
    person = get_person(session, platform_id, lti_sub)
    fields = {"lms_user_id": lms_user_id, "sis_id": sis_id or None, "name": name, "given_name": given_name,
              "family_name": family_name, "email": email}
    if person is None:
        person = Person(platform_id=platform_id, lti_sub=lti_sub, kind=kind or PersonKind.STUDENT.value,
                        **{k: v for k, v in fields.items() if v is not None})
        lookup = select(Person).where(Person.platform_id == platform_id, Person.lti_sub == lti_sub)
        person, _ = _insert_or_get(session, person, lookup)
        return person
    _set_if_given(person, **fields)
    if kind == PersonKind.STAFF.value and person.kind != kind:
        person.kind = kind
    return person


def get_course(session: Session, platform_id: int, lti_context_id: str) -> Course | None:
    stmt = select(Course).where(Course.platform_id == platform_id, Course.lti_context_id == lti_context_id)
    return session.scalars(stmt).one_or_none()


def upsert_course(session: Session, platform_id: int, lti_context_id: str, *, lms_course_id: str | None = None,
                  title: str | None = None, label: str | None = None, nrps_url: str | None = None,
                  sis_id: str | None = None) -> Course:
    """Create or update a course and make sure its course-wide section exists."""
    course = get_course(session, platform_id, lti_context_id)
    fields = {"lms_course_id": lms_course_id, "title": title, "label": label, "nrps_url": nrps_url,
              "sis_id": sis_id or None}
    if course is None:
        course = Course(platform_id=platform_id, lti_context_id=lti_context_id,
                        **{k: v for k, v in fields.items() if v is not None})
        lookup = select(Course).where(Course.platform_id == platform_id, Course.lti_context_id == lti_context_id)
        course, _ = _insert_or_get(session, course, lookup)
    else:
        _set_if_given(course, **fields)
    ensure_section(session, course, COURSE_WIDE, name=course.title)
    return course


def ensure_section(session: Session, course: Course, lms_section_id: str, name: str | None = None,
                   sis_id: str | None = None) -> Section:
    lms_section_id = str(lms_section_id or COURSE_WIDE)
    # Sections are never deleted: one lookup per (course, section) per session is enough.
    known: dict[tuple[int, str], Section] = session.info.setdefault("caseload.sections", {})
    section = known.get((course.id, lms_section_id))
    if section is not None and sa_inspect(section).persistent:
        _set_if_given(section, name=name, sis_id=sis_id)
        return section
    stmt = select(Section).where(Section.course_id == course.id, Section.lms_section_id == lms_section_id)
    section = session.scalars(stmt).one_or_none()
    if section is None:
        section = Section(course_id=course.id, lms_section_id=lms_section_id,
                          name=name or (course.title if lms_section_id == COURSE_WIDE else f"Section {lms_section_id}"),
                          sis_id=sis_id)
        section, _ = _insert_or_get(session, section, stmt)
    else:
        _set_if_given(section, name=name, sis_id=sis_id)
    known[(course.id, lms_section_id)] = section
    return section


def course_wide_section(session: Session, course: Course) -> Section:
    return ensure_section(session, course, COURSE_WIDE)


class KnownEnrollments:
    """Enrollments already read (and locked) for a batch of roster changes, by (person, section, role): the
    enrollments of some people in some courses, all of them, so a key that is missing had no row when they were
    read. ``apply_enrollment`` then skips its own lookup."""

    def __init__(self, course_ids: set[int], person_ids: set[int]) -> None:
        self.course_ids, self.person_ids = course_ids, person_ids
        self.rows: dict[tuple[int, int, str], Enrollment] = {}

    @classmethod
    def load(cls, session: Session, course_ids: set[int], person_ids: set[int]) -> KnownEnrollments:
        known = cls(course_ids, person_ids)
        if course_ids and person_ids:
            # Locked in id order (the order every batch locks in), like the per-row lock of apply_enrollment.
            stmt = (select(Enrollment).where(Enrollment.course_id.in_(course_ids),
                                             Enrollment.person_id.in_(person_ids))
                    .order_by(Enrollment.id).with_for_update())
            for row in session.scalars(stmt):
                known.rows[(row.person_id, row.section_id, row.role)] = row
        return known

    def covers(self, person: Person, course: Course) -> bool:
        return person.id in self.person_ids and course.id in self.course_ids


def apply_enrollment(session: Session, *, person: Person, course: Course, section: Section, role: str, state: str,
                     source: str, source_time: dt.datetime, lms_enrollment_id: str | None = None,
                     known: KnownEnrollments | None = None) -> Change:
    """Apply one observation of an enrollment, ignoring it if something newer was already applied. ``known``:
    enrollments the caller has already read and locked (a batch of events)."""
    if source_time.tzinfo is None:
        raise ValueError("source_time must be timezone-aware")
    stmt = select(Enrollment).where(Enrollment.person_id == person.id, Enrollment.section_id == section.id,
                                    Enrollment.role == role)
    # Locked: two workers applying events about the same enrollment take turns (PostgreSQL; SQLite serialises).
    key = (person.id, section.id, role)
    if known is not None and known.covers(person, course):
        enrollment = known.rows.get(key)
    else:
        enrollment = session.scalars(stmt.with_for_update()).one_or_none()
    if enrollment is None:
        enrollment = Enrollment(person_id=person.id, course_id=course.id, section_id=section.id, role=role,
                                state=state, source=source, source_time=source_time,
                                lms_enrollment_id=lms_enrollment_id)
        enrollment, created = _insert_or_get(session, enrollment, stmt.with_for_update())
        if known is not None and known.covers(person, course):
            known.rows[key] = enrollment
        if created:
            log.debug("enrollment %s created (%s, %s)", enrollment.id, role, state)
            return Change.CREATED
    if source_time < enrollment.source_time:
        return Change.STALE
    changed = _set_if_given(enrollment, state=state, lms_enrollment_id=lms_enrollment_id)
    if changed:
        enrollment.source = source
    if source_time > enrollment.source_time:
        enrollment.source_time = source_time
    return Change.UPDATED if changed else Change.UNCHANGED


def end_enrollments(session: Session, *, course: Course, person_ids: set[int], source: str,
                    source_time: dt.datetime, roles: set[str] | None = None) -> int:
    """Mark the active enrollments of these people in this course inactive (reconciliation removals),
    unless a newer observation was applied after ``source_time``. Returns how many changed."""
    if not person_ids:
        return 0
    stmt = select(Enrollment).where(Enrollment.course_id == course.id, Enrollment.person_id.in_(person_ids),
                                    Enrollment.state == EnrollmentState.ACTIVE.value)
    if roles:
        stmt = stmt.where(Enrollment.role.in_(roles))
    count = 0
    for enrollment in session.scalars(stmt):
        if enrollment.source_time > source_time:
            continue
        enrollment.state = EnrollmentState.INACTIVE.value
        enrollment.source = source
        enrollment.source_time = source_time
        count += 1
    return count

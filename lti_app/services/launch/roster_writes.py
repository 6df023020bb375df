"""The launch's roster writes (person, course, sections, enrollments) in as few statements as the database allows.

Same rules as ``services.roster``, which stays the one implementation every other source uses: only the fields
given (not None) change, a person once staff stays staff, the course-wide section follows the course title, and an
enrollment remembers the newest event time applied to it (an older observation changes nothing). On PostgreSQL
each write is one statement whether the row is new or known: a data-modifying CTE reads the row and inserts it
only when absent (``INSERT … SELECT … WHERE NOT EXISTS … ON CONFLICT DO NOTHING``), so a known row costs no write
and no sequence value. Whatever the fast path cannot settle in one statement (a concurrent writer inserted the row
first, a newer enrollment observation, SQLite) goes through ``services.roster``.

Nothing here commits: the launch use case owns the transaction. The statements run on the session's connection
(Core, no ORM objects, no autoflush: nothing here reads rows the ORM may hold unflushed changes to).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from lti_app.db import dialect_insert
from lti_app.domain.vocab import PersonKind
from lti_app.models import Course, Person, Section
from lti_app.services.access import roles
from lti_app.services.roster import primitives as roster

_PERSON_FIELDS = ("lms_user_id", "sis_id", "name", "given_name", "family_name", "email")
_COURSE_FIELDS = ("lms_course_id", "sis_id", "title", "label", "nrps_url")

_PERSON_SQL = text("""
WITH found AS (
    SELECT id, lms_user_id, sis_id, name, given_name, family_name, email, kind,
           ARRAY(SELECT g.role FROM role_grants g WHERE g.person_id = persons.id AND g.revoked_at IS NULL) AS grants
    FROM persons
    WHERE platform_id = CAST(:platform_id AS INTEGER) AND lti_sub = CAST(:lti_sub AS VARCHAR)),
made AS (
    INSERT INTO persons (platform_id, lti_sub, lms_user_id, sis_id, name, given_name, family_name, email, kind,
                         created_at, updated_at)
    SELECT CAST(:platform_id AS INTEGER), CAST(:lti_sub AS VARCHAR), CAST(:lms_user_id AS VARCHAR),
           CAST(:sis_id AS VARCHAR), CAST(:name AS VARCHAR), CAST(:given_name AS VARCHAR),
           CAST(:family_name AS VARCHAR), CAST(:email AS VARCHAR), CAST(:kind AS VARCHAR),
           CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
    WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (platform_id, lti_sub) DO NOTHING
    RETURNING id, lms_user_id, sis_id, name, given_name, family_name, email, kind)
SELECT false AS created, * FROM found UNION ALL SELECT true, *, CAST(ARRAY[] AS VARCHAR[]) FROM made
""")

_COURSE_SQL = text("""
WITH found AS (
    SELECT id, lms_course_id, sis_id, title, label, nrps_url FROM courses
    WHERE platform_id = CAST(:platform_id AS INTEGER) AND lti_context_id = CAST(:lti_context_id AS VARCHAR)),
made AS (
    INSERT INTO courses (platform_id, lti_context_id, lms_course_id, sis_id, title, label, nrps_url, created_at)
    SELECT CAST(:platform_id AS INTEGER), CAST(:lti_context_id AS VARCHAR), CAST(:lms_course_id AS VARCHAR),
           CAST(:sis_id AS VARCHAR), CAST(:title AS VARCHAR), CAST(:label AS VARCHAR), CAST(:nrps_url AS VARCHAR),
           CAST(:now AS TIMESTAMPTZ)
    WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (platform_id, lti_context_id) DO NOTHING
    RETURNING id, lms_course_id, sis_id, title, label, nrps_url)
SELECT false AS created, f.*, s.id AS section_id, s.name AS section_name
FROM found f LEFT JOIN sections s ON s.course_id = f.id AND s.lms_section_id = ''
UNION ALL SELECT true, m.*, NULL, NULL FROM made m
""")

# An enrollment observed by a launch: update it unless something newer was applied, or insert it when absent.
_ENROLLMENT_SQL = text("""
WITH changed AS (
    UPDATE enrollments SET
        source = CASE WHEN state = CAST(:state AS VARCHAR) THEN source ELSE CAST(:source AS VARCHAR) END,
        state = CAST(:state AS VARCHAR), source_time = CAST(:source_time AS TIMESTAMPTZ),
        updated_at = CAST(:now AS TIMESTAMPTZ)
    WHERE person_id = CAST(:person_id AS INTEGER) AND section_id = CAST(:section_id AS INTEGER)
      AND role = CAST(:role AS VARCHAR) AND source_time <= CAST(:source_time AS TIMESTAMPTZ)
    RETURNING id),
made AS (
    INSERT INTO enrollments (person_id, course_id, section_id, role, state, source, source_time, created_at,
                             updated_at)
    SELECT CAST(:person_id AS INTEGER), CAST(:course_id AS INTEGER), CAST(:section_id AS INTEGER),
           CAST(:role AS VARCHAR), CAST(:state AS VARCHAR), CAST(:source AS VARCHAR),
           CAST(:source_time AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
    WHERE NOT EXISTS (SELECT 1 FROM enrollments WHERE person_id = CAST(:person_id AS INTEGER)
                      AND section_id = CAST(:section_id AS INTEGER) AND role = CAST(:role AS VARCHAR))
    ON CONFLICT (person_id, section_id, role) DO NOTHING
    RETURNING id)
SELECT id FROM changed UNION ALL SELECT id FROM made
""")


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LaunchPerson:
    id: int
    grants: frozenset[str]
    """The person's active role grants (``roles.grant_roles``), read in the same statement."""


def upsert_person(session: Session, platform_id: int, lti_sub: str, *, kind: str, **fields: str | None) -> LaunchPerson:
    """``roster.upsert_person`` returning the person's id and active grants: one statement for a new or unchanged
    person. A person this call creates has no grants yet."""
    if not _postgresql(session):
        person_id = roster.upsert_person(session, platform_id, lti_sub, kind=kind, **fields).id
        return LaunchPerson(person_id, roles.grant_roles(session, person_id))
    given = {k: fields.get(k) for k in _PERSON_FIELDS}
    given["sis_id"] = given["sis_id"] or None
    params = {**given, "platform_id": platform_id, "lti_sub": lti_sub, "kind": kind or PersonKind.STUDENT.value,
              "now": _now()}
    for column in ("name", "given_name", "family_name"):  # NOT NULL, default ""
        params[column] = params[column] if params[column] is not None else ""
    row = session.connection().execute(_PERSON_SQL, params).first()
    if row is None:  # inserted by a concurrent launch or event since this statement's snapshot
        person_id = roster.upsert_person(session, platform_id, lti_sub, kind=kind, **fields).id
        return LaunchPerson(person_id, roles.grant_roles(session, person_id))
    if not row.created:
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None and getattr(row, k) != v}
        if kind == PersonKind.STAFF.value and row.kind != kind:
            changes["kind"] = kind
        if changes:
            session.connection().execute(update(Person).where(Person.id == row.id).values(**changes, updated_at=_now())
                            .execution_options(synchronize_session=False))
    return LaunchPerson(int(row.id), frozenset(row.grants))


@dataclass(frozen=True)
class LaunchCourse:
    id: int
    course_wide_section_id: int


def upsert_course_ids(session: Session, platform_id: int, lti_context_id: str, **fields: str | None) -> LaunchCourse:
    """``roster.upsert_course`` (with its course-wide section) returning ids: one statement for a known course."""
    if not _postgresql(session):
        course = roster.upsert_course(session, platform_id, lti_context_id, **fields)
        return LaunchCourse(course.id, roster.course_wide_section(session, course).id)
    given = {k: fields.get(k) for k in _COURSE_FIELDS}
    given["sis_id"] = given["sis_id"] or None
    params = {**given, "platform_id": platform_id, "lti_context_id": lti_context_id, "now": _now(),
              "title": given["title"] if given["title"] is not None else "",
              "label": given["label"] if given["label"] is not None else ""}
    row = session.connection().execute(_COURSE_SQL, params).first()
    if row is None:  # inserted by a concurrent writer since this statement's snapshot
        course = roster.upsert_course(session, platform_id, lti_context_id, **fields)
        return LaunchCourse(course.id, roster.course_wide_section(session, course).id)
    title = row.title
    if not row.created:
        changes = {k: v for k, v in given.items() if v is not None and getattr(row, k) != v}
        if changes:
            session.connection().execute(update(Course).where(Course.id == row.id).values(**changes)
                            .execution_options(synchronize_session=False))
            title = changes.get("title", title)
    section_id = row.section_id
    if section_id is None:
        section_id = ensure_section_id(session, row.id, roster.COURSE_WIDE, name=title)
    elif row.section_name != title:
        session.connection().execute(update(Section).where(Section.id == section_id).values(name=title)
                        .execution_options(synchronize_session=False))
    return LaunchCourse(int(row.id), int(section_id))


def ensure_section_id(session: Session, course_id: int, lms_section_id: str, name: str | None = None) -> int:
    """The id of a course's section, created when absent (``roster.ensure_section`` without loading objects).
    A known section keeps its name unless ``name`` is given."""
    lms_section_id = str(lms_section_id or roster.COURSE_WIDE)
    found = session.connection().execute(select(Section.id, Section.name).where(
        Section.course_id == course_id, Section.lms_section_id == lms_section_id)).first()
    if found is None:
        default = name if name is not None else ("" if lms_section_id == roster.COURSE_WIDE
                                                 else f"Section {lms_section_id}")
        table: Any = Section.__table__
        stmt = (dialect_insert(session, table).values(course_id=course_id, lms_section_id=lms_section_id,
                                                      name=default)
                .on_conflict_do_nothing().returning(table.c.id))
        created = session.connection().execute(stmt).scalar_one_or_none()
        if created is not None:
            return int(created)
        found = session.connection().execute(select(Section.id, Section.name).where(
            Section.course_id == course_id, Section.lms_section_id == lms_section_id)).one()
    if name is not None and found.name != name:
        session.connection().execute(update(Section).where(Section.id == found.id).values(name=name)
                        .execution_options(synchronize_session=False))
    return int(found.id)


def apply_enrollment_ids(session: Session, *, person_id: int, course_id: int, section_id: int, role: str, state: str,
                         source: str, source_time: dt.datetime) -> None:
    """``roster.apply_enrollment`` by ids: one statement on PostgreSQL whether the enrollment is new or known."""
    if source_time.tzinfo is None:
        raise ValueError("source_time must be timezone-aware")
    if _postgresql(session):
        done = session.connection().execute(_ENROLLMENT_SQL, {
            "person_id": person_id, "course_id": course_id, "section_id": section_id, "role": role, "state": state,
            "source": source, "source_time": source_time, "now": _now()}).first()
        if done is not None:
            return
        # Either a newer observation was applied (nothing to do) or a concurrent writer inserted the row since this
        # statement's snapshot: the general path decides, under its row lock.
    person, course, section = session.get(Person, person_id), session.get(Course, course_id), session.get(Section,
                                                                                                         section_id)
    assert person is not None and course is not None and section is not None
    roster.apply_enrollment(session, person=person, course=course, section=section, role=role, state=state,
                            source=source, source_time=source_time)


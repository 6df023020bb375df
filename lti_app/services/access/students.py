"""Linking LMS people to support records by SIS id: done lazily, before a page that needs it, so a student who
appears through any roster source is matched without a separate job."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Person, Student, StudentLink


def link_persons(session: Session, person_ids: Iterable[int]) -> int:
    """Link the given persons that have a SIS id and no link yet. Returns how many links were made."""
    ids = list(set(person_ids))
    if not ids:
        return 0
    rows = session.execute(
        select(Person.id, Person.sis_id).outerjoin(StudentLink, StudentLink.person_id == Person.id)
        .where(Person.id.in_(ids), Person.sis_id.is_not(None), Person.sis_id != "", StudentLink.id.is_(None))).all()
    if not rows:
        return 0
    by_sis = dict(session.execute(select(Student.sis_id, Student.id)
                                  .where(Student.sis_id.in_([sis for _, sis in rows]))).all())
    made = 0
    for person_id, sis in rows:
        if sis in by_sis:
            session.add(StudentLink(student_id=by_sis[sis], person_id=person_id, linked_by="sis_id"))
            made += 1
    session.flush()
    return made


def student_for_person(session: Session, person_id: int) -> int | None:
    link_persons(session, [person_id])
    return session.scalar(select(StudentLink.student_id).where(StudentLink.person_id == person_id))


def link_student(session: Session, student_id: int) -> None:
    """Link every not-yet-linked person whose SIS id matches this student's (any platform)."""
    sis = session.scalar(select(Student.sis_id).where(Student.id == student_id))
    if not sis:
        return
    person_ids = list(session.scalars(
        select(Person.id).outerjoin(StudentLink, StudentLink.person_id == Person.id)
        .where(Person.sis_id == sis, StudentLink.id.is_(None))))
    for person_id in person_ids:
        session.add(StudentLink(student_id=student_id, person_id=person_id, linked_by="sis_id"))
    if person_ids:
        session.flush()

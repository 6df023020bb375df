"""Every read of a student's record goes through here: facts are loaded in a few queries, the pure policy
decides, and an append-only AccessEvent records who, what, and on which basis (allowed or refused)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping

from flask import abort
from sqlalchemy import Boolean, Integer, String, and_, bindparam, func, insert, literal, select, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.db import utcnow
from lti_app.domain.access import Action, ActorFacts, Decision, EnrollmentFact, StudentFacts, decide
from lti_app.models import AccessEvent, Course, Enrollment, Person, Plan, RoleGrant, Section, Student, StudentLink

log = logging.getLogger(__name__)
NOT_VISIBLE = ("There is no student record here that you may see. If you think you should have access, ask the "
               "student's case manager.")


def _enrollment_facts(session: Session, person_ids: Iterable[int]) -> dict[int, list[EnrollmentFact]]:
    ids = list(set(person_ids))
    out: dict[int, list[EnrollmentFact]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(Enrollment.person_id, Enrollment.course_id, Enrollment.section_id, Enrollment.role, Enrollment.state,
               Section.lms_section_id, Section.name, Course.title)
        .join(Section, Section.id == Enrollment.section_id).join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.person_id.in_(ids))).all()
    for pid, cid, sid, role, state, lms_sid, sname, ctitle in rows:
        out[pid].append(EnrollmentFact(cid, sid, lms_sid == "", role, state == "active", ctitle or "", sname or ""))
    return out


def actor_facts(session: Session, viewer: Viewer) -> ActorFacts:
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.person_id == viewer.person_id,
                                                          RoleGrant.revoked_at.is_(None))))
    return ActorFacts(person_id=viewer.person_id, launch_roles=frozenset(viewer.roles),
                      grants=frozenset(g.role for g in grants), can_see_restricted=any(g.can_see_restricted for g in grants),
                      enrollments=tuple(_enrollment_facts(session, [viewer.person_id])[viewer.person_id]),
                      platform_id=viewer.platform_id)


def student_facts(session: Session, student_id: int) -> StudentFacts:
    from lti_app.services.access.students import link_student

    link_student(session, student_id)
    person_ids = list(session.scalars(select(StudentLink.person_id).where(StudentLink.student_id == student_id)))
    managers = frozenset(m for m in session.scalars(
        select(Plan.case_manager_id).where(Plan.student_id == student_id, Plan.status == "active")) if m)
    facts = _enrollment_facts(session, person_ids)
    platform_ids = frozenset(session.scalars(select(Person.platform_id).where(Person.id.in_(person_ids)))
                             ) if person_ids else frozenset()
    return StudentFacts(student_id, managers, tuple(f for pid in person_ids for f in facts[pid]), platform_ids)


def student_platforms(session: Session, student_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """Per student, the platforms with a person linked to them (an explicit link, or a SIS id not linked yet): the
    ``StudentFacts.platform_ids`` of many students in one statement (``student_facts`` does it for one)."""
    ids = sorted(set(student_ids))
    found: dict[int, set[int]] = {i: set() for i in ids}
    if not ids:
        return {}
    linked = (select(StudentLink.student_id.label("student_id"), Person.platform_id.label("platform_id"))
              .join(Person, Person.id == StudentLink.person_id).where(StudentLink.student_id.in_(ids)))
    by_sis = (select(Student.id.label("student_id"), Person.platform_id.label("platform_id"))
              .join(Person, and_(Person.sis_id == Student.sis_id, Person.sis_id.is_not(None), Person.sis_id != ""))
              .where(Student.id.in_(ids)))
    for student_id, platform_id in session.execute(union(linked, by_sis)).all():
        found[student_id].add(platform_id)
    return {i: frozenset(p) for i, p in found.items()}


def casework_facts(session: Session, student_ids: Iterable[int], plan_statuses: tuple[str, ...] = ("active",)
                   ) -> dict[int, StudentFacts]:
    """``StudentFacts`` for many students in two statements, for pages that list casework (deadlines, services):
    the case managers named on the students' plans of ``plan_statuses`` and the platforms where they have an LMS
    account. Enrollments are left out: they only ever link teachers, and teachers never see casework, so for the
    casework actions the decision is the same (only a teacher's refusal names a less specific basis)."""
    ids = sorted(set(student_ids))
    if not ids:
        return {}
    managers: dict[int, set[int]] = {i: set() for i in ids}
    for student_id, manager in session.execute(select(Plan.student_id, Plan.case_manager_id).where(
            Plan.student_id.in_(ids), Plan.status.in_(plan_statuses), Plan.case_manager_id.is_not(None))).all():
        if manager is not None:
            managers[student_id].add(manager)
    platforms = student_platforms(session, ids)
    return {i: StudentFacts(i, frozenset(managers[i]), (), platforms[i]) for i in ids}


def record(session: Session, viewer: Viewer, student_id: int | None, action: str, allowed: bool, basis: str,
           context: str) -> None:
    session.add(AccessEvent(actor_id=viewer.person_id, student_id=student_id, action=action, allowed=allowed,
                            basis=basis[:500], context=context[:500]))


def record_many(session: Session, viewer: Viewer, bases: dict[int, str], action: str, context: str) -> None:
    """One INSERT for a page that shows many students (the course panel)."""
    if not bases:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        _insert_unnested(session, viewer.person_id, list(bases), [b[:500] for b in bases.values()], action,
                         context[:500], now)
        return
    session.execute(insert(AccessEvent), [
        {"actor_id": viewer.person_id, "student_id": sid, "action": action, "allowed": True, "basis": basis[:500],
         "context": context[:500], "at": now} for sid, basis in bases.items()])


def _insert_unnested(session: Session, actor_id: int, student_ids: list[int], bases: list[str], action: str,
                     context: str, at: dt.datetime) -> None:
    """PostgreSQL: the rows of ``record_many`` as one short ``INSERT ... SELECT unnest(ids), unnest(bases)``: the
    same rows (one per student, with its basis) as the executemany, without 200 statements in the pipeline for a
    caseload page and with a statement text psycopg parses once per connection."""
    table = AccessEvent.__table__
    source = select(literal(actor_id, Integer), func.unnest(bindparam(None, student_ids, type_=ARRAY(Integer))),
                    literal(action, String), literal(True, Boolean),
                    func.unnest(bindparam(None, bases, type_=ARRAY(String))), literal(context, String),
                    literal(at, table.c.at.type))
    session.execute(insert(AccessEvent).from_select(
        ["actor_id", "student_id", "action", "allowed", "basis", "context", "at"], source))


def check_many(session: Session, viewer: Viewer, facts: Mapping[int, StudentFacts], action: Action, context: str,
               *, log_action: str | None = None) -> dict[int, Decision]:
    """``check`` for a page that lists many students: the actor's facts are read once, every student is decided by
    the policy, and every decision, allowed or refused, is written to the access log with its basis in one INSERT.
    The caller shows only the allowed ones. ``log_action`` names the logged action when the page has its own word
    for it (the deadlines pages log ``view``)."""
    if not facts:
        return {}
    actor = actor_facts(session, viewer)
    decisions = {student_id: decide(actor, student, action) for student_id, student in facts.items()}
    now = utcnow()
    session.execute(insert(AccessEvent), [
        {"actor_id": viewer.person_id, "student_id": student_id, "action": log_action or action.value,
         "allowed": d.allowed, "basis": d.basis[:500], "context": context[:500], "at": now}
        for student_id, d in decisions.items()])
    refused = sum(1 for d in decisions.values() if not d.allowed)
    if refused:
        log.info("access refused actor=%s students=%s action=%s", viewer.person_id, refused, action.value)
    return decisions


def decide_only(session: Session, viewer: Viewer, student_id: int, action: Action) -> Decision | None:
    """The decision without writing the log (None: no such student). For a view that logs one row for a page
    that asks two questions (the export form: may they export? then the row says what was shown or refused)."""
    if session.get(Student, student_id) is None:
        return None
    return decide(actor_facts(session, viewer), student_facts(session, student_id), action)


def check(session: Session, viewer: Viewer, student_id: int, action: Action, context: str) -> Decision:
    """Decide and log, without refusing (callers that show a partial view use this)."""
    if session.get(Student, student_id) is None:
        decision = Decision(False, "no such student record", "none")
        record(session, viewer, None, action.value, False, decision.basis, f"{context} (student id {student_id})")
        return decision
    decision = decide(actor_facts(session, viewer), student_facts(session, student_id), action)
    record(session, viewer, student_id, action.value, decision.allowed, decision.basis, context)
    return decision


def authorize(session: Session, viewer: Viewer, student_id: int, action: Action | str, context: str) -> Decision:
    """Decide, log, and refuse with a 404 that does not reveal whether the student exists.

    The refusal is committed (the log must keep it) before the request is aborted."""
    action = Action(action)
    decision = check(session, viewer, student_id, action, context)
    if not decision.allowed:
        session.commit()
        log.info("access refused actor=%s student=%s action=%s", viewer.person_id, student_id, action.value)
        abort(404, description=NOT_VISIBLE)
    return decision


def who_viewed(session: Session, student_id: int, limit: int = 200) -> list[tuple[AccessEvent, str | None]]:
    """The record's own access log (FERPA 34 CFR 99.32, IDEA 300.614), newest first, with the actor's name."""
    rows = session.execute(
        select(AccessEvent, Person.name).outerjoin(Person, Person.id == AccessEvent.actor_id)
        .where(AccessEvent.student_id == student_id)
        .order_by(AccessEvent.at.desc(), AccessEvent.id.desc()).limit(limit)).all()
    return [(event, name) for event, name in rows]

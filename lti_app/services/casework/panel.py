"""The teacher's course panel: the students in this teacher's sections who have an active plan, their
accommodations, and what still needs the teacher's acknowledgement (IDEA 34 CFR 300.323(d)).

A bounded number of queries whatever the class size; one bulk AccessEvent insert for everyone shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import abort
from sqlalchemy import Integer, String, bindparam, cast, exists, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, selectinload

from lti_app.auth import Viewer
from lti_app.domain.access import TEACHING_ROLES, Decision, StudentFacts, decide
from lti_app.domain.plan_diff import Item, PlanDiff, diff
from lti_app.models import (
    Accommodation,
    Acknowledgement,
    AlertPlacement,
    Course,
    Enrollment,
    LmsConnection,
    Person,
    Plan,
    PlanVersion,
    Section,
    Student,
    StudentLink,
)
from lti_app.services.access import policy as access
from lti_app.services.access import students

CATEGORY_LABELS = {"presentation": "Presentation", "response": "Response", "setting": "Setting",
                   "timing": "Timing and scheduling"}
PLAN_TYPES = ("IEP", "504", "ELL", "health", "behaviour", "MTSS")
PLAN_TYPE_LABELS = {"IEP": "IEP", "504": "504", "ELL": "ELL", "health": "Health", "behaviour": "Behavior",
                    "MTSS": "MTSS"}
"""What people read for a stored plan type: US English and one casing (issue #13); the stored value ``behaviour``
stays (it is the vocabulary's and the importer's, which accepts both spellings)."""


@dataclass(frozen=True)
class SectionRef:
    """What the panel shows of a student's section (read with the enrollments, in the same statement)."""

    id: int
    lms_section_id: str
    name: str


@dataclass
class PanelRow:
    student: Student
    plan: Plan
    version: PlanVersion
    section: SectionRef
    case_manager: str
    basis: str
    acknowledged_at: dt.datetime | None
    accommodations: list[Accommodation] = field(default_factory=list)
    changes: PlanDiff | None = None
    """When the row needs acknowledging and an earlier version was in force: what this version changed."""
    previous: PlanVersion | None = None
    is_new: bool = False
    """The student joined this class recently (the alerts job saw it) and this teacher has not acknowledged yet."""

    @property
    def needs_ack(self) -> bool:
        return self.acknowledged_at is None

    def grouped(self) -> list[tuple[str, list[Accommodation]]]:
        groups: dict[str, list[Accommodation]] = {}
        for a in self.accommodations:
            groups.setdefault(a.category, []).append(a)
        return [(CATEGORY_LABELS.get(k, k), groups[k]) for k in CATEGORY_LABELS if k in groups]


@dataclass(frozen=True)
class CourseHeading:
    """What the panel shows of the course itself."""

    id: int
    title: str
    lms_applies: bool = False
    """Accommodations are applied in this course's LMS (its platform's LMS connection is switched on, issue #12):
    the panel then shows the course's line of the verification report."""


@dataclass
class PanelView:
    course: CourseHeading
    rows: list[PanelRow]
    total_with_plans: int
    needing_ack: int
    filters: dict[str, str]
    sections: tuple[SectionRef, ...] = ()
    """The sections (periods) of this teacher that have a plan student, for the section filter and grouping."""


# Built once: the panel opens every launch, and building and keying these statements cost as much as running them.
# The viewer's active teaching enrollments in the course (with the course's title) ...
_MINE = (
    select(Course.title, Section.id.label("section_id"), Section.lms_section_id, Enrollment.created_at,
           exists(select(LmsConnection.id).where(LmsConnection.platform_id == Course.platform_id,
                                                 LmsConnection.enabled.is_(True))).label("lms_applies"))
    .select_from(Enrollment).join(Section, Section.id == Enrollment.section_id)
    .join(Course, Course.id == Enrollment.course_id)
    .where(Enrollment.person_id == bindparam("person_id"), Enrollment.course_id == bindparam("course_id"),
           Enrollment.state == "active", Enrollment.role.in_(TEACHING_ROLES))
    .cte("mine"))
# ... and, in the same statement, the active students of the sections they teach (all of the course's when they teach
# its course-wide section; a student in the course-wide section is in everyone's), none when they teach nothing here,
# with the student record each is linked to (a person has at most one link) and their SIS id.
_COURSE_AND_STUDENTS = union_all(
    select(literal(True).label("teaching"), _MINE.c.title, _MINE.c.section_id, _MINE.c.lms_section_id,
           cast(null(), String).label("section_name"), _MINE.c.created_at, cast(null(), Integer).label("person_id"),
           cast(null(), Integer).label("student_id"), cast(null(), String).label("sis_id"), _MINE.c.lms_applies),
    select(literal(False), cast(null(), String), Section.id, Section.lms_section_id, Section.name,
           cast(null(), Enrollment.created_at.type), Enrollment.person_id, StudentLink.student_id, Person.sis_id,
           literal(False))
    .select_from(Enrollment).join(Section, Section.id == Enrollment.section_id)
    .join(Person, Person.id == Enrollment.person_id)
    .outerjoin(StudentLink, StudentLink.person_id == Enrollment.person_id)
    .where(Enrollment.course_id == bindparam("course_id"), Enrollment.role == "student", Enrollment.state == "active",
           exists(select(_MINE.c.section_id)),
           or_(Section.lms_section_id == "", Enrollment.section_id.in_(select(_MINE.c.section_id)),
               exists(select(_MINE.c.section_id).where(_MINE.c.lms_section_id == "")))))


@dataclass(frozen=True)
class _Enrolled:
    person_id: int
    id: int
    lms_section_id: str
    name: str
    student_id: int | None
    sis_id: str | None


def _course_and_students(session: Session, viewer: Viewer, course_id: int) -> tuple[
        CourseHeading | None, list[tuple[int, str, dt.datetime]], list[_Enrolled]]:
    """The course, this viewer's active teaching enrollments in it (section id, LMS section id, enrollment start) and
    the active students they teach, in one statement. No teaching enrollment: (None, [], [])."""
    mine: list[tuple[int, str, dt.datetime]] = []
    enrolled: list[_Enrolled] = []
    title = ""
    lms_applies = False
    for row in session.connection().execute(_COURSE_AND_STUDENTS, {"person_id": viewer.person_id,
                                                                    "course_id": course_id}):
        if row.teaching:
            title, lms_applies = row.title, bool(row.lms_applies)
            mine.append((row.section_id, row.lms_section_id, row.created_at))
        else:
            enrolled.append(_Enrolled(row.person_id, row.section_id, row.lms_section_id, row.section_name,
                                      row.student_id, row.sis_id))
    if not mine:
        return None, [], []
    return CourseHeading(course_id, title, lms_applies), mine, enrolled


def course_panel(session: Session, viewer: Viewer, category: str = "", plan_type: str = "", needs_ack: bool = False,
                 query: str = "", section_id: int | None = None) -> PanelView:
    if viewer.course_id is None:
        abort(400, description="Open Caseload from a course to see its accommodations.")
    course, mine, enrolled = _course_and_students(session, viewer, viewer.course_id)
    if course is None or not mine:
        abort(403, description="You are not an active teacher or TA of this course in Caseload's roster, so no "
                               "student information is shown. If you were just added, launch again in a minute.")
    started = min(created for _, _, created in mine)
    section_of = {row.person_id: SectionRef(row.id, row.lms_section_id, row.name) for row in enrolled}
    links = {row.person_id: row.student_id for row in enrolled if row.student_id is not None}
    # Students not linked to their record yet, by SIS id: link them now, then read the links made (skipped when every
    # student is linked, as in a class seen before; each lookup below is skipped when the one before found nothing).
    unlinked = sorted({row.person_id for row in enrolled if row.student_id is None and row.sis_id})
    if unlinked and students.link_persons(session, unlinked):
        links.update((person_id, student_id) for person_id, student_id in session.execute(
            select(StudentLink.person_id, StudentLink.student_id).where(StudentLink.person_id.in_(unlinked))))
    student_section = {sid: section_of[pid] for pid, sid in links.items()}
    plans = session.scalars(
        select(Plan).where(Plan.student_id.in_(list(student_section)), Plan.status == "active")
        .options(selectinload(Plan.student),
                 selectinload(Plan.versions).selectinload(PlanVersion.accommodations))).all() if student_section else []
    manager_ids = {p.case_manager_id for p in plans if p.case_manager_id}
    managers = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(manager_ids))).all()
                    ) if manager_ids else {}
    active_versions = {p.id: next((v for v in p.versions if v.status == "active"), None) for p in plans}
    version_ids = [v.id for v in active_versions.values() if v]
    acks = {(a.plan_version_id, a.section_id): a.acknowledged_at for a in session.scalars(
        select(Acknowledgement).where(Acknowledgement.staff_person_id == viewer.person_id,
                                      Acknowledgement.plan_version_id.in_(version_ids)))} if version_ids else {}
    rows: list[PanelRow] = []
    for plan in plans:
        version = active_versions[plan.id]
        if version is None:
            continue
        section = student_section[plan.student_id]
        ack = acks.get((version.id, section.id))
        if ack is not None and ack < started:
            ack = None  # acknowledged before this teacher's current enrollment began: re-opened
        where = course.title + ("" if section.lms_section_id == "" else f" ({section.name})")
        row = PanelRow(plan.student, plan, version, section, managers.get(plan.case_manager_id or -1, "—"),
                       f"teacher enrollment in {where}", ack, list(version.accommodations))
        if ack is None:
            row.previous, row.changes = _what_changed(plan, version)
        rows.append(row)
    _mark_new(session, course.id, rows)
    rows.sort(key=lambda r: (r.student.family_name.lower(), r.student.given_name.lower(), r.plan.plan_type))
    total, needing = len({r.student.id for r in rows}), sum(1 for r in rows if r.needs_ack)
    shown = rows
    sections = tuple(sorted({r.section.id: r.section for r in rows}.values(), key=lambda x: x.name.lower()))
    if section_id is not None:
        shown = [r for r in shown if r.section.id == section_id]
    if category:
        shown = [r for r in shown if any(a.category == category for a in r.accommodations)]
    if plan_type:
        shown = [r for r in shown if r.plan.plan_type == plan_type]
    if needs_ack:
        shown = [r for r in shown if r.needs_ack]
    if query:
        q = query.lower().strip()
        shown = [r for r in shown if q in r.student.display_name.lower() or q in r.student.family_name.lower()]
    access.record_many(session, viewer, {r.student.id: r.basis for r in shown}, "view", f"course panel {course.id}")
    return PanelView(course, shown, total, needing,
                     {"category": category, "plan_type": plan_type, "needs_ack": "1" if needs_ack else "", "q": query,
                      "section": str(section_id) if section_id is not None else ""}, sections)


def _mark_new(session: Session, course_id: int, rows: list[PanelRow]) -> None:
    """Mark *new* the rows still needing acknowledgement whose student the alerts job saw join this course (a
    placement with ``joined_at``; baseline placements have none): one query, only when something needs it."""
    pending = {r.student.id for r in rows if r.needs_ack}
    if not pending:
        return
    joined = set(session.scalars(select(AlertPlacement.student_id).where(
        AlertPlacement.course_id == course_id, AlertPlacement.student_id.in_(sorted(pending)),
        AlertPlacement.left_at.is_(None), AlertPlacement.joined_at.is_not(None))))
    for r in rows:
        r.is_new = r.needs_ack and r.student.id in joined


def _what_changed(plan: Plan, version: PlanVersion) -> tuple[PlanVersion | None, PlanDiff | None]:
    """The version in force before this one (versions are already loaded) and the accommodations it changed."""
    earlier = [v for v in plan.versions if v.version_no < version.version_no and v.status == "superseded"]
    previous = max(earlier, key=lambda v: v.version_no, default=None)
    if previous is None:
        return None, None
    return previous, diff([Item.of(a) for a in previous.accommodations], [Item.of(a) for a in version.accommodations])


def acknowledge(session: Session, viewer: Viewer, items: list[tuple[int, int, int]]) -> tuple[int, list[str]]:
    """Acknowledge (student, plan_version, section) triples shown on the panel. Stale items (the plan changed
    since the page was rendered) are refused with a message and nothing is written for them.

    An acknowledgement names a section (IDEA 34 CFR 300.323(d): each teacher is informed of the accommodations for
    the child they teach), so the section must be one where this teacher teaches the student now: the student's
    active enrollment in that section, and the teacher's active enrollment in the same section or course-wide. Any
    other section is refused (403, logged as a refused acknowledgement) and nothing is written."""
    from lti_app.domain.access import Action, teaching_link

    problems: list[str] = []
    valid: list[tuple[int, int, int]] = []
    actor = access.actor_facts(session, viewer)
    for student_id, version_id, section_id in items:
        context = f"acknowledge version {version_id} in section {section_id}"
        if session.get(Student, student_id) is None:
            access.record(session, viewer, None, Action.ACKNOWLEDGE.value, False, "no such student record",
                          f"{context} (student id {student_id})")
            session.commit()
            abort(404, description=access.NOT_VISIBLE)
        facts = access.student_facts(session, student_id)
        decision = decide(actor, facts, Action.ACKNOWLEDGE)
        in_section = StudentFacts(facts.student_id, facts.case_manager_ids,
                                  tuple(e for e in facts.enrollments if e.section_id == section_id), facts.platform_ids)
        if decision.allowed and teaching_link(actor, in_section) is None:
            decision = Decision(False, f"{decision.basis}, but not in section {section_id}: an acknowledgement is "
                                       "for a section where you teach the student", decision.relationship)
            access.record(session, viewer, student_id, Action.ACKNOWLEDGE.value, False, decision.basis, context)
            session.commit()
            abort(403, description="You can acknowledge a student's accommodations only for a section where you "
                                   "teach the student. Reload the course panel and acknowledge from there.")
        access.record(session, viewer, student_id, Action.ACKNOWLEDGE.value, decision.allowed, decision.basis, context)
        if not decision.allowed:
            session.commit()
            abort(404, description=access.NOT_VISIBLE)
        version = session.get(PlanVersion, version_id)
        if version is None or version.status != "active" or version.plan.student_id != student_id:
            name = session.get(Student, student_id)
            problems.append(f"{name.display_name if name else 'A student'}'s plan changed after this page was "
                            "opened. Review the updated accommodations, then acknowledge again.")
            continue
        valid.append((student_id, version_id, section_id))
    if problems:
        return 0, problems
    now = dt.datetime.now(dt.UTC)
    made = 0
    for student_id, version_id, section_id in valid:
        existing = session.scalars(select(Acknowledgement).where(
            Acknowledgement.staff_person_id == viewer.person_id, Acknowledgement.plan_version_id == version_id,
            Acknowledgement.section_id == section_id)).one_or_none()
        if existing is None:
            session.add(Acknowledgement(staff_person_id=viewer.person_id, student_id=student_id,
                                        plan_version_id=version_id, section_id=section_id, acknowledged_at=now))
        else:
            existing.acknowledged_at = now
        made += 1
    return made, []

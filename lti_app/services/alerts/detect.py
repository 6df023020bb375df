"""Finding what to tell people: schedule changes (a plan student joined or left a class) and answered questions.

Schedule changes come from comparing each plan student's active placements with the snapshot of the previous run
(``AlertPlacement``); the rules are ``domain/alerts.diff``. A student seen for the first time (a new plan, or
the very first run) is a baseline, recorded without alerting; a student whose plan ended is no longer followed.
The whole comparison is a fixed number of set-based statements, whatever the number of changes (the term-start
burst: ``bench/alerts.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from lti_app.domain import alerts as rules
from lti_app.domain.access import TEACHING_ROLES
from lti_app.models import (
    Acknowledgement,
    Alert,
    AlertPlacement,
    AlertPreference,
    AlertWatch,
    Course,
    Enrollment,
    Person,
    Plan,
    PlanVersion,
    Question,
    Section,
    Student,
    StudentLink,
)

log = logging.getLogger(__name__)


@dataclass
class NewAlert:
    """An alert to insert (``store`` skips any whose (recipient, dedupe key) exists already)."""

    recipient_id: int
    kind: str
    dedupe_key: str
    title: str
    lines: list[list] = field(default_factory=list)
    """[text, student id or None] pairs: the inbox checks access per student before showing a line."""
    student_id: int | None = None
    course_id: int | None = None
    section_id: int | None = None


@dataclass
class ScheduleResult:
    alerts: list[NewAlert]
    joined: int = 0
    left: int = 0
    baselined: int = 0


def _plan_students(session: Session) -> dict[int, set[int]]:
    """student id -> case managers of the student's active plans (purged records are not followed)."""
    out: dict[int, set[int]] = defaultdict(set)
    for student_id, manager_id in session.execute(
            select(Plan.student_id, Plan.case_manager_id).join(Student, Student.id == Plan.student_id)
            .where(Plan.status == "active", Student.purged_at.is_(None))):
        managers = out[student_id]
        if manager_id:
            managers.add(manager_id)
    return out


def _link_new_persons(session: Session) -> int:
    """Link persons that arrived through any roster source to plan students by SIS id (the pages do this lazily;
    the job must see a student who joined before anybody opened a page)."""
    active = select(Plan.student_id).where(Plan.status == "active")
    rows = session.execute(
        select(Person.id, Student.id).join(Student, Student.sis_id == Person.sis_id)
        .outerjoin(StudentLink, StudentLink.person_id == Person.id)
        .where(Student.id.in_(active), Person.kind == "student", StudentLink.id.is_(None))).all()
    if rows:
        session.execute(insert(StudentLink), [{"student_id": sid, "person_id": pid, "linked_by": "sis_id"}
                                              for pid, sid in rows])
    return len(rows)


def _current(session: Session) -> dict[int, set[rules.Placement]]:
    active = select(Plan.student_id).where(Plan.status == "active")
    out: dict[int, set[rules.Placement]] = defaultdict(set)
    for student_id, course_id, section_id, lms_section_id in session.execute(
            select(StudentLink.student_id, Enrollment.course_id, Enrollment.section_id, Section.lms_section_id)
            .join(Enrollment, Enrollment.person_id == StudentLink.person_id)
            .join(Section, Section.id == Enrollment.section_id)
            .where(Enrollment.role == "student", Enrollment.state == "active", StudentLink.student_id.in_(active))):
        out[student_id].add(rules.Placement(course_id, section_id, lms_section_id == ""))
    return out


def detect_schedule_changes(session: Session, now: dt.datetime) -> ScheduleResult:
    """Compare, update the snapshot, and return the alerts for case managers. The caller commits."""
    _link_new_persons(session)
    followed = _plan_students(session)
    watched = set(session.scalars(select(AlertWatch.student_id)))
    gone = watched - set(followed)
    if gone:
        ids = sorted(gone)
        session.execute(delete(AlertPlacement).where(AlertPlacement.student_id.in_(ids)))
        session.execute(delete(AlertWatch).where(AlertWatch.student_id.in_(ids)))
    fresh = set(followed) - watched
    if fresh:
        session.execute(insert(AlertWatch), [{"student_id": s, "since": now} for s in sorted(fresh)])
    current = _current(session)
    snapshot: dict[tuple[int, int], AlertPlacement] = {
        (p.student_id, p.section_id): p for p in session.scalars(select(AlertPlacement))}
    before: dict[int, set[rules.Placement]] = defaultdict(set)
    section_wide: dict[int, bool] = {}
    for p in snapshot.values():
        if p.left_at is None:
            before[p.student_id].add(rules.Placement(p.course_id, p.section_id, False))
    # Whether a snapshot section is course-wide is read with the current rows, or from sections for gone rows.
    for placements in current.values():
        for pl in placements:
            section_wide[pl.section_id] = pl.course_wide
    unknown = {pl.section_id for pls in before.values() for pl in pls} - set(section_wide)
    if unknown:
        section_wide.update({sid: lms == "" for sid, lms in session.execute(
            select(Section.id, Section.lms_section_id).where(Section.id.in_(sorted(unknown))))})
    result = ScheduleResult([])
    inserts: list[dict] = []
    changes: list[tuple[int, str, rules.Placement, int]] = []  # (student, joined|left, placement, generation)

    def enter(student_id: int, pl: rules.Placement, alerting: bool) -> int:
        row = snapshot.get((student_id, pl.section_id))
        if row is None:
            inserts.append({"student_id": student_id, "course_id": pl.course_id, "section_id": pl.section_id,
                            "joined_at": now if alerting else None, "left_at": None, "generation": 0})
            return 0
        row.left_at = None
        row.joined_at = now if alerting else row.joined_at
        if alerting:
            row.generation += 1
        return row.generation

    def leave(student_id: int, pl: rules.Placement) -> int:
        row = snapshot[(student_id, pl.section_id)]
        row.left_at = now
        return row.generation

    for student_id in followed:
        new_eff = rules.effective(current.get(student_id, set()))
        if student_id in fresh:
            for pls in new_eff.values():
                for pl in pls:
                    enter(student_id, pl, alerting=False)
                    result.baselined += 1
            continue
        old = {rules.Placement(p.course_id, p.section_id, section_wide.get(p.section_id, False))
               for p in before.get(student_id, set())}
        change = rules.diff(rules.effective(old), new_eff)
        for pl in change.refined_in:
            enter(student_id, pl, alerting=False)
        for pl in change.refined_out:
            leave(student_id, pl)
        for pl in change.joined:
            changes.append((student_id, "joined", pl, enter(student_id, pl, alerting=True)))
        for pl in change.left:
            changes.append((student_id, "left", pl, leave(student_id, pl)))
    if inserts:
        session.execute(insert(AlertPlacement), inserts)
    session.flush()
    result.joined = sum(1 for c in changes if c[1] == "joined")
    result.left = len(changes) - result.joined
    if changes:
        result.alerts = _schedule_alerts(session, changes, followed)
    log.info("alerts: schedule changes joined=%d left=%d baseline=%d", result.joined, result.left, result.baselined)
    return result


def _schedule_alerts(session: Session, changes: list[tuple[int, str, rules.Placement, int]],
                     followed: dict[int, set[int]]) -> list[NewAlert]:
    student_ids = sorted({c[0] for c in changes})
    course_ids = sorted({c[2].course_id for c in changes})
    names = {s.id: s.display_name for s in session.scalars(select(Student).where(Student.id.in_(student_ids)))}
    courses = dict(session.execute(select(Course.id, Course.title).where(Course.id.in_(course_ids))).all())
    sections = dict(session.execute(
        select(Section.id, Section.name).where(Section.id.in_(sorted({c[2].section_id for c in changes})))).all())
    status = acknowledgement_status(session, {(c[0], c[2]) for c in changes if c[1] == "joined"})
    out: list[NewAlert] = []
    for student_id, what, pl, generation in changes:
        student = names.get(student_id, "A student")
        place = rules.place_name(courses.get(pl.course_id, "a course"), sections.get(pl.section_id, ""),
                                 pl.course_wide)
        lines: list[list] = []
        if what == "joined":
            title = f"{student} joined {place}"
            lines.append([status[(student_id, pl)], student_id])
        else:
            title = f"{student} left {place}"
        key = f"schedule:{student_id}:{pl.section_id}:{generation}:{what}"
        for manager_id in sorted(followed.get(student_id, ())):
            out.append(NewAlert(manager_id, rules.AlertKind.SCHEDULE_CHANGE.value, key, title[:500], lines,
                                student_id, pl.course_id, pl.section_id))
    return out


def acknowledgement_status(session: Session, wanted: set[tuple[int, rules.Placement]]) -> dict[
        tuple[int, rules.Placement], str]:
    """For (student, placement) pairs: who among the teachers who see the student there has acknowledged the
    student's current plan version in that section, as a line ("Morgan Reed has not acknowledged yet."). Three
    queries whatever the number of pairs; used when an alert is made and again when the inbox shows it."""
    if not wanted:
        return {}
    student_ids = sorted({s for s, _ in wanted})
    course_ids = sorted({p.course_id for _, p in wanted})
    teachers: dict[int, list[tuple[int, int, bool, str]]] = defaultdict(list)
    for course_id, section_id, lms_sid, person_id, name in session.execute(
            select(Enrollment.course_id, Enrollment.section_id, Section.lms_section_id, Person.id, Person.name)
            .join(Section, Section.id == Enrollment.section_id).join(Person, Person.id == Enrollment.person_id)
            .where(Enrollment.course_id.in_(course_ids), Enrollment.state == "active",
                   Enrollment.role.in_(TEACHING_ROLES))):
        teachers[course_id].append((section_id, person_id, lms_sid == "", name or f"User {person_id}"))
    versions: dict[int, set[int]] = defaultdict(set)
    for student_id, version_id in session.execute(
            select(Plan.student_id, PlanVersion.id).join(PlanVersion, PlanVersion.plan_id == Plan.id)
            .where(Plan.student_id.in_(student_ids), Plan.status == "active", PlanVersion.status == "active")):
        versions[student_id].add(version_id)
    all_versions = sorted({v for vs in versions.values() for v in vs})
    acked: set[tuple[int, int, int]] = set()  # (teacher, version, section)
    if all_versions:
        acked = {(a, v, s) for a, v, s in session.execute(
            select(Acknowledgement.staff_person_id, Acknowledgement.plan_version_id, Acknowledgement.section_id)
            .where(Acknowledgement.plan_version_id.in_(all_versions)))}
    out: dict[tuple[int, rules.Placement], str] = {}
    for student_id, pl in wanted:
        pending: set[str] = set()
        done: set[str] = set()
        for section_id, person_id, teacher_wide, name in teachers.get(pl.course_id, []):
            if not (pl.course_wide or teacher_wide or section_id == pl.section_id):
                continue
            has = bool(versions.get(student_id)) and all((person_id, v, pl.section_id) in acked
                                                         for v in versions[student_id])
            (done if has else pending).add(name)
        out[(student_id, pl)] = rules.acknowledgement_line(sorted(pending), sorted(done - pending))
    return out


def detect_answered_questions(session: Session, since: dt.datetime) -> list[NewAlert]:
    """Tell each teacher their question was answered (answered after ``since``; the key makes it once)."""
    rows = session.execute(
        select(Question.id, Question.student_id, Question.asked_by_id, Question.course_id, Student.given_name,
               Student.preferred_name, Student.family_name)
        .join(Student, Student.id == Question.student_id)
        .where(Question.status == "answered", Question.answered_at >= since, Question.asked_by_id.is_not(None))).all()
    out = []
    for qid, student_id, asker, course_id, given, preferred, family in rows:
        name = f"{preferred or given} {family}".strip()
        if asker is None:
            continue
        out.append(NewAlert(asker, rules.AlertKind.QUESTION_ANSWERED.value, f"question:{qid}",
                            f"Your question about {name} was answered", [], student_id, course_id))
    return out


def store(session: Session, alerts: list[NewAlert], now: dt.datetime) -> Counter[str]:
    """Insert the alerts not made before (same recipient and dedupe key). Returns how many are new, per kind."""
    if not alerts:
        return Counter()
    recipients = sorted({a.recipient_id for a in alerts})
    keys = {a.dedupe_key for a in alerts}
    existing: set[tuple[int, str]] = set()
    for chunk in _chunks(recipients, 2000):
        existing |= {(r, k) for r, k in session.execute(
            select(Alert.recipient_id, Alert.dedupe_key).where(Alert.recipient_id.in_(chunk))) if k in keys}
    off = {(pid, kind) for pid, *channels in session.execute(
        select(AlertPreference.person_id, *[getattr(AlertPreference, k.value) for k in rules.CHOOSABLE_KINDS])
        .where(AlertPreference.person_id.in_(recipients)))
        for kind, channel in zip([k.value for k in rules.CHOOSABLE_KINDS], channels, strict=True)
        if channel == rules.Channel.OFF.value} if len(recipients) <= 30000 else set()
    rows: list[dict[str, Any]] = []
    seen = set(existing)
    for a in alerts:
        if (a.recipient_id, a.dedupe_key) in seen or (a.recipient_id, a.kind) in off:
            continue
        seen.add((a.recipient_id, a.dedupe_key))
        rows.append({"recipient_id": a.recipient_id, "kind": a.kind, "dedupe_key": a.dedupe_key, "title": a.title,
                     "lines": a.lines, "student_id": a.student_id, "course_id": a.course_id,
                     "section_id": a.section_id, "created_at": now, "email_status": "pending"})
    if rows:
        session.execute(insert(Alert), rows)
    return Counter(r["kind"] for r in rows)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]

""""Ask the case manager": a teacher's question lands in the case manager's queue; the answer shows on the
student's card. Question and answer text are encrypted at rest like notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.access import Action
from lti_app.models import Course, Enrollment, Person, Plan, Question, Section, Student, StudentLink
from lti_app.services.access import policy as access
from lti_app.services.casework.notes import MAX_NOTE_CHARS, NoteInvalid


@dataclass(frozen=True)
class QuestionView:
    id: int
    student_id: int
    student_name: str
    asked_by: str
    body: str
    status: str
    answer: str | None
    created_at: object
    where: str = ""
    """The course and section the teacher asked from ("Biology — Period 3"), for the case manager's queue."""
    answered_at: object = None


def ask(session: Session, viewer: Viewer, student_id: int, body: str) -> Question:
    access.authorize(session, viewer, student_id, Action.ASK_QUESTION, "ask the case manager")
    text = body.strip()
    if not text:
        raise NoteInvalid("Write your question first.")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteInvalid(f"Questions are limited to {MAX_NOTE_CHARS:,} characters.")
    manager = session.scalar(select(Plan.case_manager_id).where(Plan.student_id == student_id, Plan.status == "active",
                                                                Plan.case_manager_id.is_not(None)).limit(1))
    if manager is None:
        raise NoteInvalid("This student's plan has no case manager assigned yet; contact the school's support office.")
    question = Question(student_id=student_id, asked_by_id=viewer.person_id, case_manager_id=manager,
                        course_id=viewer.course_id, body_encrypted=cipher().encrypt(text), status="open")
    session.add(question)
    return question


def _views(session: Session, rows: list[Question]) -> list[QuestionView]:
    people = dict(session.execute(select(Person.id, Person.name).where(
        Person.id.in_({q.asked_by_id for q in rows if q.asked_by_id}))).all())
    names = {s.id: s.display_name for s in session.scalars(select(Student).where(
        Student.id.in_({q.student_id for q in rows})))}
    where = _where(session, rows)
    return [QuestionView(q.id, q.student_id, names.get(q.student_id, "—"), people.get(q.asked_by_id or -1, "—"),
                         cipher().decrypt(q.body_encrypted), q.status,
                         cipher().decrypt(q.answer_encrypted) if q.answer_encrypted else None, q.created_at,
                         where.get(q.id, ""), q.answered_at)
            for q in rows]


def _where(session: Session, rows: list[Question]) -> dict[int, str]:
    """question id -> "Course — Section": the course the question was asked from and the student's section(s) in
    it (one query for the titles, one for the sections, whatever the number of questions)."""
    course_ids = {q.course_id for q in rows if q.course_id}
    if not course_ids:
        return {}
    titles = dict(session.execute(select(Course.id, Course.title).where(Course.id.in_(course_ids))).all())
    sections: dict[tuple[int, int], list[str]] = {}
    for student_id, course_id, name in session.execute(
            select(StudentLink.student_id, Enrollment.course_id, Section.name)
            .join(Enrollment, Enrollment.person_id == StudentLink.person_id)
            .join(Section, Section.id == Enrollment.section_id)
            .where(StudentLink.student_id.in_({q.student_id for q in rows}), Enrollment.course_id.in_(course_ids),
                   Enrollment.role == "student", Enrollment.state == "active", Section.lms_section_id != "")):
        sections.setdefault((student_id, course_id), []).append(name)
    out = {}
    for q in rows:
        if not q.course_id or q.course_id not in titles:
            continue
        title = titles[q.course_id]
        named = sorted(set(sections.get((q.student_id, q.course_id), [])))
        out[q.id] = "; ".join(n if n.startswith(title) else f"{title} — {n}" for n in named) or title
    return out


def for_student(session: Session, viewer: Viewer, student_id: int) -> list[QuestionView]:
    rows = list(session.scalars(select(Question).where(Question.student_id == student_id,
                                                       Question.asked_by_id == viewer.person_id)
                                .order_by(Question.created_at.desc())))
    return _views(session, rows)


def _current_caseload() -> Any:
    """Students whose active plan names this case manager now: a question belongs to the student's *current* case
    manager, so an open question moves with the student when the plan is reassigned."""
    return select(Plan.student_id).where(Plan.case_manager_id == bindparam("manager_id"), Plan.status == "active")


def queue(session: Session, viewer: Viewer, status: str = "open") -> list[QuestionView]:
    """The viewer's questions: those about students on their current caseload. Each one shown goes through the
    access policy and is logged with its real basis; one the policy refuses (a revoked case manager grant) is
    logged as a refusal and not shown."""
    rows = list(session.scalars(
        select(Question).where(Question.student_id.in_(_current_caseload().params(manager_id=viewer.person_id)),
                               Question.status == status)
        .order_by(Question.created_at)))
    shown: list[Question] = []
    decisions: dict[int, bool] = {}
    for q in rows:
        if q.student_id not in decisions:
            decisions[q.student_id] = access.check(session, viewer, q.student_id, Action.VIEW_RECORD,
                                                   f"questions queue: question {q.id}").allowed
        if decisions[q.student_id]:
            shown.append(q)
    return _views(session, shown)


def answer(session: Session, viewer: Viewer, question_id: int, body: str) -> Question:
    """Answer an open question about a student on the viewer's current caseload (checked by the policy, logged)."""
    question = session.get(Question, question_id)
    current = question is not None and session.scalar(
        _current_caseload().where(Plan.student_id == question.student_id).params(manager_id=viewer.person_id)
        .limit(1)) is not None
    if question is None or not current or question.status != "open":
        abort(404, description="There is no open question for you with this id (questions go to the student's "
                               "current case manager).")
    decision = access.authorize(session, viewer, question.student_id, Action.VIEW_RECORD,
                                f"answer question {question.id}")
    if decision.relationship != "case_manager":
        session.rollback()
        access.record(session, viewer, question.student_id, Action.VIEW_RECORD.value, False,
                      f"{decision.basis}; answering needs the student's case manager", f"answer question {question_id}")
        session.commit()
        abort(404, description="There is no open question for you with this id.")
    text = body.strip()
    if not text:
        raise NoteInvalid("Write an answer first.")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteInvalid(f"Answers are limited to {MAX_NOTE_CHARS:,} characters.")
    question.answer_encrypted = cipher().encrypt(text)
    question.status, question.answered_by_id, question.answered_at = "answered", viewer.person_id, utcnow()
    question.case_manager_id = viewer.person_id  # who it belonged to when answered
    return question

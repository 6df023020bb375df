"""The verification report: for each plan student, course and timed quiz, what the plan requires, what Caseload
applied, and what the LMS reported at the last reconcile — the gaps first ("3 quizzes in Biology lack 1.5x time").

Computed from the quizzes and per-student states the reconcile keeps (no LMS call: the page is fast and works
while the LMS is down; its "checked" time says how fresh it is). What the plan requires is recomputed from the plans
in force *now*, so a plan changed since the last reconcile shows as pending until it is applied.

Who sees what (the caller passes the scope; the blueprint decides it and every student shown is written to the
access log with its basis): administrators their platforms' students, a case manager the students of their
caseload, a teacher only their course's counts (``course_line``: no names).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.domain.lms_actions import Field, LmsRule, QuizFacts, QuizKind, required_for
from lti_app.models import (
    Course,
    Enrollment,
    LmsActionLedger,
    LmsConnection,
    LmsQuiz,
    LmsQuizState,
    Plan,
    Student,
    StudentLink,
)
from lti_app.services.lms_actions.reconcile import plan_rules


@dataclass
class QuizLine:
    quiz: LmsQuiz
    required: dict[str, object]
    lms: dict[str, object]
    status: str
    """ok | teacher | unverified | failed | pending (not applied yet, or the plan changed since)"""
    detail: str
    checked_at: dt.datetime | None

    @property
    def gap(self) -> bool:
        return self.status in ("failed", "pending")

    @property
    def required_text(self) -> str:
        return ", ".join(value_text(k, v) for k, v in self.required.items())

    @property
    def lms_text(self) -> str:
        return ", ".join(value_text(k, v) for k, v in self.lms.items()) or "—"


LABELS = {"extra_time": "extra minutes", "extra_attempts": "extra attempts", "reduce_choices": "reduced choices",
          "timelimit": "time limit", "attempts": "attempts", "timeclose": "closes", "lock_at": "locks"}


def value_text(field_name: str, value: object) -> str:
    """A stored value in words: seconds as minutes, Unix times as moments in district time (the pages' one format)."""
    label = LABELS.get(field_name, field_name.replace("_", " "))
    if value is None:
        return f"{label} —"
    if field_name in ("timeclose", "lock_at") and isinstance(value, int | float):
        return f"{label} {clock.shown_time(dt.datetime.fromtimestamp(int(value), dt.UTC))}"
    if field_name == "timelimit" and isinstance(value, int | float):
        return f"{label} {int(value) // 60} min" + (f" {int(value) % 60} s" if int(value) % 60 else "")
    if isinstance(value, bool):
        return f"{label} {'on' if value else 'off'}"
    return f"{label} {value}"


@dataclass
class ReportLine:
    student: Student
    course: Course
    rule_text: str
    quizzes: list[QuizLine] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        return sum(1 for q in self.quizzes if q.gap)

    @property
    def applied(self) -> int:
        return sum(1 for q in self.quizzes if not q.gap)

    @property
    def windows(self) -> int:
        return sum(1 for q in self.quizzes if "window" in q.detail)

    @property
    def summary(self) -> str:
        if self.gaps:
            word = "quiz" if self.gaps == 1 else "quizzes"
            return f"{self.gaps} {word} in {self.course.title} lack {self.rule_text}"
        return f"{self.rule_text} applied on {self.applied} of {len(self.quizzes)} quizzes in {self.course.title}"


def _describe(rules: list[LmsRule]) -> str:
    parts = [r.describe() for r in rules]
    return "; ".join(dict.fromkeys(parts)) or "nothing"


def lines(session: Session, *, platform_ids: Iterable[int] | None = None, student_ids: Iterable[int] | None = None,
          course_ids: Iterable[int] | None = None) -> list[ReportLine]:
    """Report lines in scope, gaps first. Only switched-on LMSs are reported (elsewhere nothing is applied)."""
    enabled = set(session.scalars(select(LmsConnection.platform_id).where(LmsConnection.enabled.is_(True))))
    if platform_ids is not None:
        enabled &= set(platform_ids)
    if not enabled:
        return []
    query = (select(Enrollment.course_id, Enrollment.person_id, StudentLink.student_id).distinct()
             .join(StudentLink, StudentLink.person_id == Enrollment.person_id)
             .join(Course, Course.id == Enrollment.course_id)
             .where(Course.platform_id.in_(enabled), Enrollment.role == "student", Enrollment.state == "active"))
    if student_ids is not None:
        query = query.where(StudentLink.student_id.in_(list(student_ids)))
    if course_ids is not None:
        query = query.where(Enrollment.course_id.in_(list(course_ids)))
    placements = session.execute(query).all()
    rules = plan_rules(session, {p.student_id for p in placements})
    placements = [p for p in placements if rules.get(p.student_id)]
    if not placements:
        return []
    courses = {c.id: c for c in session.scalars(select(Course).where(Course.id.in_({p.course_id for p in placements})))}
    students = {s.id: s for s in session.scalars(
        select(Student).where(Student.id.in_({p.student_id for p in placements})))}
    quizzes: dict[int, list[LmsQuiz]] = {}
    for q in session.scalars(select(LmsQuiz).where(LmsQuiz.course_id.in_(list(courses)), LmsQuiz.gone_at.is_(None))
                             .order_by(LmsQuiz.title, LmsQuiz.id)):
        quizzes.setdefault(q.course_id, []).append(q)
    states = {(s.quiz_id, s.person_id): s for s in session.scalars(
        select(LmsQuizState).where(LmsQuizState.person_id.in_({p.person_id for p in placements})))}
    out = []
    for p in placements:
        student_rules = [r for _, r in rules[p.student_id]]
        line = ReportLine(students[p.student_id], courses[p.course_id], _describe(student_rules))
        for quiz in quizzes.get(p.course_id, []):
            facts = QuizFacts(QuizKind(quiz.kind), quiz.time_limit_seconds, quiz.allowed_attempts)
            required: dict[str, object] = {f.value: v for f, v in required_for(student_rules, facts).items()}
            if not required:
                continue
            state = states.get((quiz.id, p.person_id))
            if state is None:
                line.quizzes.append(QuizLine(quiz, required, {}, "pending", "not applied yet", None))
                continue
            status = state.status
            if status != "failed" and not _satisfied(required, state):
                status = "pending"
            line.quizzes.append(QuizLine(quiz, required, dict(state.lms or {}), status,
                                         state.detail or ("the plan changed since the last check"
                                                          if status == "pending" else ""), state.checked_at))
        if line.quizzes:
            out.append(line)
    out.sort(key=lambda r: (-r.gaps, r.course.title.lower(), r.student.family_name.lower(),
                            r.student.given_name.lower()))
    return out


def _satisfied(required: dict[str, object], state: LmsQuizState) -> bool:
    """The LMS (as last read) grants at least what is required now, field by field."""
    lms = state.lms or {}
    for key, value in required.items():
        have = lms.get(key)
        if have is None:
            return False
        if key == Field.REDUCE_CHOICES.value:
            if bool(value) and not bool(have):
                return False
        elif int(have) < int(value):  # type: ignore[call-overload]
            return False
    return True


@dataclass(frozen=True)
class CourseLine:
    """What a teacher sees on the course panel: counts only, no names."""

    students: int
    quizzes: int
    applied: int

    @property
    def text(self) -> str:
        if not self.quizzes:
            return "No timed quiz in this course needs an accommodation applied yet."
        return (f"Accommodations applied on {self.applied} of {self.quizzes} student quizzes "
                f"({self.students} student{'s' if self.students != 1 else ''} with a plan).")


def course_line(session: Session, course_id: int, *, switched_on: bool = False) -> CourseLine | None:
    """None when the course's LMS is not switched on (``switched_on``: the caller has just read that it is, as the
    teacher panel does in its own statement)."""
    if not switched_on:
        course = session.get(Course, course_id)
        if course is None:
            return None
        conn = session.scalar(select(LmsConnection).where(LmsConnection.platform_id == course.platform_id))
        if conn is None or not conn.enabled:
            return None
    found = lines(session, course_ids=[course_id])
    return CourseLine(len({r.student.id for r in found}), sum(len(r.quizzes) for r in found),
                      sum(r.applied for r in found))


def caseload_student_ids(session: Session, case_manager_id: int) -> list[int]:
    return list(session.scalars(select(Plan.student_id).distinct().where(Plan.case_manager_id == case_manager_id,
                                                                         Plan.status == "active")))


def ledger_for_student(session: Session, student_id: int, limit: int = 500) -> list[LmsActionLedger]:
    return list(session.scalars(select(LmsActionLedger).where(LmsActionLedger.student_id == student_id)
                                .order_by(LmsActionLedger.id.desc()).limit(limit)))


def ledger_for_course(session: Session, course_id: int, limit: int = 500) -> list[LmsActionLedger]:
    return list(session.scalars(select(LmsActionLedger).where(LmsActionLedger.course_id == course_id)
                                .order_by(LmsActionLedger.id.desc()).limit(limit)))

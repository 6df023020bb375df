"""The reconcile: apply the plans' LMS rules to every timed quiz of one course, idempotently.

For one course (optionally only some students): read the course's quizzes and, per quiz that any plan student
needs something on, what each student has now; compute the target from the plans in force
(``domain.lms_actions.required_for``); merge with what is there (only raise; Caseload's own earlier value follows
the plan, a teacher's is never lowered or erased); write the difference in **one call per quiz for all its
students**; record every change, refusal and failure in the append-only ledger; keep the per-student state the
verification report reads.

Why it is safe to run any number of times, and to kill halfway:
- the LMS values are *set*, never incremented, and read back before every write, so a re-run writes nothing
  that is already there (a re-check of an unchanged district makes zero writes);
- each quiz's write and its ledger rows are committed together right after the LMS answers, so a reconcile that
  is killed resumes at the next quiz without repeating the done ones;
- the change about to be written is committed first as an *intent* (``LmsLedgerIntent``), removed with the ledger
  rows; a reconcile killed after the LMS accepted a write and before that commit leaves the intent, and the redo,
  reading the value back, recognises it as Caseload's own: it appends the ledger row then (once), instead of losing
  the record and later taking the value for a teacher's. When the LMS does not have the value the write did not
  land and is decided again;
- New Quizzes cannot be read back (no API), so there the ledger is the memory: a value is written again only when
  the target differs from what Caseload last applied, or the last write failed (``failed[]`` of a 200).

An LMS that is down raises ``LmsUnavailable`` (the task retries with backoff); a Canvas authorization that no
longer works marks the connection ``reauthorize`` and stops: nothing is lost, the nightly sweep resumes it.
``dry_run`` (the preview) reads, computes and reports the same changes without writing anything anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from integrations.canvas.client import (
    AssignmentOverride,
    CanvasClient,
    CanvasError,
    Extension,
    ReauthorizationRequired,
)
from integrations.moodle.webservice import MoodleError, MoodleTokenRefused, MoodleWebService
from lti_app import clock
from lti_app.db import utcnow
from lti_app.domain.lms_actions import (
    UNLIMITED,
    Decision,
    Field,
    LmsRule,
    MoodleOverride,
    Outcome,
    QuizFacts,
    QuizKind,
    merge_moodle_override,
    merge_value,
    moodle_effective,
    override_is_empty,
    required_for,
    window_cuts_time,
)
from lti_app.models import (
    AppliedAccommodation,
    Course,
    Enrollment,
    LmsActionLedger,
    LmsLedgerIntent,
    LmsQuiz,
    LmsQuizState,
    Person,
    Plan,
    PlanVersion,
    Platform,
    StudentLink,
)
from lti_app.services.lms_actions import backlog, connections, requests

log = logging.getLogger(__name__)

FIELDS: dict[QuizKind, tuple[Field, ...]] = {
    QuizKind.CLASSIC: (Field.EXTRA_TIME, Field.EXTRA_ATTEMPTS, Field.LOCK_AT),
    QuizKind.NEW: (Field.EXTRA_TIME, Field.EXTRA_ATTEMPTS, Field.REDUCE_CHOICES),
    QuizKind.MOODLE: (Field.TIMELIMIT, Field.ATTEMPTS, Field.TIMECLOSE),
}
OWN_OUTCOMES = (Outcome.APPLIED.value, Outcome.WITHDRAWN.value)
RECOVERED_ANSWER = ("Recorded when the work resumed: the LMS had this value, sent by Caseload before its worker "
                    "stopped (or the LMS stopped answering) and before the answer was recorded.")
VERIFY_AFTER = dt.timedelta(days=7)
"""The nightly sweep re-reads a quiz's per-student settings at least this often even when nothing changed (a
teacher may have edited an extension in Canvas, which sends no event for it)."""
QUICK_REASONS = frozenset({"sweep"})
COURSE_LOCK_NAMESPACE = 0x4C4D5331
"""First key of the PostgreSQL advisory lock that lets one reconcile of a course run at a time ("LMS1")."""


class LmsUnavailable(RuntimeError):
    """The LMS could not be reached or answered 5xx: retry later (nothing was lost)."""


@dataclass
class Candidate:
    person_id: int
    lms_user_id: str
    student_id: int
    rules: list[LmsRule]
    plan_version_id: int | None


@dataclass(frozen=True)
class Change:
    course_id: int
    quiz_title: str
    lms_quiz_id: str
    person_id: int
    student_id: int
    field: str
    before: Any
    after: Any
    outcome: str


@dataclass
class CourseResult:
    course_id: int
    status: str = "done"
    """done | off (no enabled connection) | no_students | no_lms_id | reauthorize | failed"""
    detail: str = ""
    quizzes: int = 0
    timed_quizzes: int = 0
    reads: int = 0
    writes: int = 0
    trusted: int = 0
    """Quizzes the sweep did not read again (unchanged, verified recently)."""
    changes: list[Change] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(1 for c in self.changes if c.outcome in (Outcome.APPLIED.value, Outcome.WITHDRAWN.value))


@dataclass
class _Ctx:
    session: Session
    course: Course
    platform: Platform
    reason: str
    event: str
    dry_run: bool
    result: CourseResult
    own: dict[tuple[int, int, str], Any]
    last: dict[tuple[int, int, str], LmsActionLedger]
    states: dict[tuple[int, int], LmsQuizState]
    history: set[tuple[int, int]]
    """(quiz_id, person_id) pairs where Caseload's own value may still be set."""
    failed: dict[tuple[int, int, str], str] = field(default_factory=dict)
    """(quiz_id, person_id, field) the LMS refused in this run, with its answer."""
    verify: bool = True
    """False (the nightly sweep): a quiz whose settings did not change and whose every student was found as
    required at a check less than ``VERIFY_AFTER`` ago is not read again."""
    changed_quizzes: set[int] = field(default_factory=set)
    intents: dict[tuple[int, int, str], LmsLedgerIntent] = field(default_factory=dict)
    """(quiz_id, person_id, field) -> a change sent (or about to be) whose answer is not in the ledger yet."""
    settled: list[int] = field(default_factory=list)
    """Ids of intents settled in this transaction, deleted right before its commit (``_commit``)."""


# --------------------------------------------------------------------------------------------- loading
def plan_rules(session: Session, student_ids: Iterable[int]) -> dict[int, list[tuple[int, LmsRule]]]:
    """The LMS rules of every plan version in force, per student: ``{student_id: [(version_id, rule)]}``."""
    ids = list(set(student_ids))
    out: dict[int, list[tuple[int, LmsRule]]] = {}
    if not ids:
        return out
    today = clock.today()
    rows = session.execute(
        select(Plan.student_id, PlanVersion.id, AppliedAccommodation)
        .join(PlanVersion, PlanVersion.plan_id == Plan.id)
        .join(AppliedAccommodation, AppliedAccommodation.plan_version_id == PlanVersion.id)
        .where(Plan.student_id.in_(ids), Plan.status == "active", PlanVersion.status == "active")
        .where((Plan.end_on.is_(None)) | (Plan.end_on >= today)))
    for student_id, version_id, rule in rows:
        out.setdefault(student_id, []).append((version_id, rule_of(rule)))
    return out


def rule_of(row: AppliedAccommodation) -> LmsRule:
    return LmsRule(row.multiplier, row.extra_minutes, row.extra_attempts, bool(row.reduce_choices),
                   bool(row.window_guard))


def _candidates(session: Session, course: Course, person_ids: Sequence[int] | None,
                pending: Iterable[int] = ()) -> list[Candidate]:
    query = (select(Enrollment.person_id, Person.lms_user_id, StudentLink.student_id)
             .join(Person, Person.id == Enrollment.person_id)
             .join(StudentLink, StudentLink.person_id == Person.id)
             .where(Enrollment.course_id == course.id, Enrollment.role == "student", Enrollment.state == "active")
             .distinct())
    if person_ids is not None:
        query = query.where(Enrollment.person_id.in_(list(person_ids)))
    rows = [r for r in session.execute(query) if r.lms_user_id]
    rules = plan_rules(session, (r.student_id for r in rows))
    with_history = set(session.scalars(
        select(LmsActionLedger.person_id).where(LmsActionLedger.course_id == course.id,
                                                LmsActionLedger.outcome == Outcome.APPLIED.value).distinct()))
    with_history.update(pending)
    out = []
    for r in rows:
        found = rules.get(r.student_id, [])
        if not found and r.person_id not in with_history:
            continue
        newest = max((v for v, _ in found), default=None)
        out.append(Candidate(r.person_id, str(r.lms_user_id), r.student_id, [rule for _, rule in found], newest))
    return out


def _ledger_memory(session: Session, course_id: int) -> tuple[dict[tuple[int, int, str], Any],
                                                              dict[tuple[int, int, str], LmsActionLedger]]:
    """Caseload's own last value per (quiz, person, field), and the last ledger row of any outcome."""
    key = (LmsActionLedger.quiz_id, LmsActionLedger.person_id, LmsActionLedger.field)
    newest_any = select(func.max(LmsActionLedger.id)).where(LmsActionLedger.course_id == course_id).group_by(*key)
    newest_own = (select(func.max(LmsActionLedger.id))
                  .where(LmsActionLedger.course_id == course_id, LmsActionLedger.outcome.in_(OWN_OUTCOMES))
                  .group_by(*key))
    last = {(r.quiz_id or 0, r.person_id or 0, r.field): r
            for r in session.scalars(select(LmsActionLedger).where(LmsActionLedger.id.in_(newest_any)))}
    own = {(r.quiz_id or 0, r.person_id or 0, r.field): (r.after or {}).get("value")
           for r in session.scalars(select(LmsActionLedger).where(LmsActionLedger.id.in_(newest_own)))}
    return own, last


# ----------------------------------------------------------------------------------------------- entry
def reconcile_course(session: Session, course_id: int, *, person_ids: Sequence[int] | None = None,
                     reason: str = "sweep", event: str = "", dry_run: bool = False,
                     verify: bool | None = None) -> CourseResult:
    """``verify`` None: the sweep trusts recent checks of unchanged quizzes (``VERIFY_AFTER``); every other
    reason (plan, enrollment, quiz event, manual) reads every quiz that needs something.

    One reconcile of a course runs at a time (``_course_lock``): two at once (a plan activation and a quiz event,
    *Apply now* twice) would both read, both write the same value and both record it, and one could take the
    other's in-flight write (its intent) for an interrupted one.

    The course's pending request (``requests``), read once the lock is held and before anything else, is cleared
    when the run ends without waiting on the LMS, unless a newer one arrived meanwhile."""
    with _course_lock(session, course_id, enabled=not dry_run):
        started_at = utcnow()
        found = None if dry_run else requests.seen(session, course_id)
        result = _reconcile_course(session, course_id, person_ids=person_ids, reason=reason, event=event,
                                   dry_run=dry_run, verify=verify)
        if found is not None and result.status != "reauthorize" and requests.clear(
                session, course_id, found, started_at, person_ids):
            session.commit()
        return result


@contextlib.contextmanager
def _course_lock(session: Session, course_id: int, *, enabled: bool) -> Iterator[None]:
    """A PostgreSQL session-level advisory lock on the course, held on a connection of its own for the whole
    reconcile (the reconcile commits many times; each commit may use another pooled connection). Waits while
    another reconcile of the course runs. A process that dies releases it with its connection. SQLite (one writer,
    development and tests): no lock."""
    bind = session.get_bind()
    if not enabled or bind.dialect.name != "postgresql":
        yield
        return
    engine = bind if isinstance(bind, Engine) else bind.engine
    keys = {"ns": COURSE_LOCK_NAMESPACE, "id": course_id}
    conn = engine.connect()
    try:
        conn.execute(text("SELECT pg_advisory_lock(:ns, :id)"), keys)
        conn.commit()
        yield
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), keys)
            conn.commit()
        except Exception:  # noqa: BLE001 - the connection is gone (and the lock with it), or unusable: drop it
            conn.invalidate()
        conn.close()


def _reconcile_course(session: Session, course_id: int, *, person_ids: Sequence[int] | None, reason: str,
                      event: str, dry_run: bool, verify: bool | None) -> CourseResult:
    result = CourseResult(course_id)
    course = session.get(Course, course_id)
    if course is None:
        result.status, result.detail = "failed", "no such course"
        return result
    platform = session.get(Platform, course.platform_id)
    conn = connections.connection_for(session, course.platform_id)
    if platform is None or conn is None or (not conn.enabled and not dry_run):
        result.status, result.detail = "off", "Applying accommodations is not switched on for this LMS."
        return result
    if not course.lms_course_id:
        result.status, result.detail = "no_lms_id", "The LMS's own id of this course is not known yet."
        return result
    intents: dict[tuple[int, int, str], LmsLedgerIntent] = {} if dry_run else {
        (i.quiz_id, i.person_id, i.field): i for i in session.scalars(
            select(LmsLedgerIntent).where(LmsLedgerIntent.course_id == course.id).order_by(LmsLedgerIntent.id))}
    candidates = _candidates(session, course, person_ids, {p for _q, p, _f in intents})
    if not candidates:
        result.status = "no_students"
        return result
    own, last = _ledger_memory(session, course.id)
    states = {(s.quiz_id, s.person_id): s for s in session.scalars(
        select(LmsQuizState).join(LmsQuiz, LmsQuiz.id == LmsQuizState.quiz_id).where(LmsQuiz.course_id == course.id))}
    history = {(q, p) for (q, p, _f), v in own.items() if v} | {(q, p) for q, p, _f in intents}
    ctx = _Ctx(session, course, platform, reason, event, dry_run, result, own, last, states, history,
               verify=(reason not in QUICK_REASONS) if verify is None else verify, intents=intents)
    try:
        if conn.kind == connections.CANVAS:
            _canvas(ctx, connections.canvas_client(conn), candidates)
        else:
            _moodle(ctx, connections.moodle_client(conn), candidates)
    except (ReauthorizationRequired, MoodleTokenRefused) as exc:
        session.rollback()
        connections.mark_health(conn, "reauthorize", str(exc))
        if not dry_run:
            backlog.waiting(session, platform.id, course_id, "reauthorize", str(exc))
        session.commit()
        result.status, result.detail = "reauthorize", str(exc)
        log.warning("LMS reconcile course=%s stopped: the LMS refused Caseload's authorization", course.id)
        return result
    except LmsUnavailable as exc:
        session.rollback()
        connections.mark_health(conn, "down", str(exc))
        if not dry_run:
            backlog.waiting(session, platform.id, course_id, "down", str(exc))
        session.commit()
        raise
    if not dry_run:
        if conn.health != "ok":
            connections.mark_health(conn, "ok", "")
        failed = [c for c in result.changes if c.outcome == Outcome.FAILED.value]
        backlog.ran(session, platform.id, course_id, len(failed))
        _delete_settled(ctx)
        session.commit()
    else:
        session.rollback()
    log.info("LMS reconcile course=%s reason=%s quizzes=%s reads=%s writes=%s changes=%s dry_run=%s", course.id,
             reason, result.quizzes, result.reads, result.writes, result.applied, dry_run)
    return result


# ---------------------------------------------------------------------------------------------- quizzes
def _upsert_quizzes(ctx: _Ctx, kind: QuizKind, found: list[dict[str, Any]]) -> list[LmsQuiz]:
    existing = {q.lms_quiz_id: q for q in ctx.session.scalars(
        select(LmsQuiz).where(LmsQuiz.course_id == ctx.course.id, LmsQuiz.kind == kind.value))}
    now = utcnow()
    out = []
    for item in found:
        quiz = existing.pop(item["lms_quiz_id"], None)
        changed = quiz is None
        if quiz is None:
            quiz = LmsQuiz(platform_id=ctx.platform.id, course_id=ctx.course.id, kind=kind.value, **item, seen_at=now)
            ctx.session.add(quiz)
        else:
            for key, value in item.items():
                if getattr(quiz, key) != value:
                    setattr(quiz, key, value)
                    changed = True
            if quiz.gone_at is not None:
                quiz.gone_at = None
                changed = True
        out.append(quiz)
        if changed:
            ctx.changed_quizzes.add(id(quiz))
    for quiz in existing.values():
        if quiz.gone_at is None:
            quiz.gone_at = now
    ctx.session.flush()
    ctx.result.quizzes += len(out)
    return out


def _trusted(ctx: _Ctx, quiz: LmsQuiz, targets: dict[int, dict[Field, Any]]) -> bool:
    """The sweep may skip reading this quiz: unchanged in the LMS's list, and every student found as required at
    a recent check, with the same requirement as now."""
    if ctx.verify or id(quiz) in ctx.changed_quizzes or any(q == quiz.id for q, _p, _f in ctx.intents):
        return False
    fresh = utcnow() - VERIFY_AFTER
    for person_id, required in targets.items():
        state = ctx.states.get((quiz.id, person_id))
        if state is None or state.status not in ("ok", "teacher") or state.checked_at < fresh:
            return False
        if state.required != {f.value: v for f, v in required.items() if v is not None}:
            return False
    ctx.result.trusted += 1
    return True


def _facts(quiz: LmsQuiz) -> QuizFacts:
    return QuizFacts(QuizKind(quiz.kind), quiz.time_limit_seconds, quiz.allowed_attempts, _unix(quiz.opens_at),
                     _unix(quiz.closes_at), quiz.assignment_id is not None)


def _unix(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _targets(ctx: _Ctx, quiz: LmsQuiz, candidates: list[Candidate]) -> dict[int, dict[Field, Any]]:
    """Per candidate, what the plans require on this quiz; only candidates with a target or Caseload's own value."""
    facts = _facts(quiz)
    out = {}
    for c in candidates:
        required = required_for(c.rules, facts)
        if required or (quiz.id, c.person_id) in ctx.history:
            out[c.person_id] = required
    return out


def _decide(ctx: _Ctx, quiz: LmsQuiz, c: Candidate, required: dict[Field, Any], current: dict[Field, Any],
            baseline: dict[Field, Any]) -> list[Decision]:
    for f in FIELDS[QuizKind(quiz.kind)]:
        _settle_intent(ctx, quiz, c, f, current.get(f))
    return [merge_value(f, current.get(f), required.get(f), ctx.own.get((quiz.id, c.person_id, f.value)),
                        baseline.get(f)) for f in FIELDS[QuizKind(quiz.kind)]]


def _settle_intent(ctx: _Ctx, quiz: LmsQuiz, c: Candidate, f: Field, current: Any) -> None:
    """A change sent earlier whose answer never reached the ledger: when the LMS has exactly that value now, the
    write landed; its ledger row is appended now (once) and the value is Caseload's own from here on. Otherwise the
    write did not land (or was changed since): the intent is dropped and the field is decided again. New Quizzes
    cannot be read back, so there the change is always decided (and sent) again."""
    key = (quiz.id, c.person_id, f.value)
    intent = ctx.intents.pop(key, None)
    if intent is None:
        return
    value = (intent.after or {}).get("value")
    landed = quiz.kind != QuizKind.NEW.value and current is not None and value is not None \
        and int(current) == int(value)
    if landed and not ctx.dry_run:
        row = LmsActionLedger(
            platform_id=ctx.platform.id, course_id=ctx.course.id, lms_course_id=ctx.course.lms_course_id or "",
            quiz_id=quiz.id, lms_quiz_id=quiz.lms_quiz_id, quiz_title=quiz.title[:500], person_id=c.person_id,
            lms_user_id=c.lms_user_id, student_id=c.student_id, field=f.value, before=dict(intent.before or {}),
            after={"value": value}, outcome=intent.outcome, reason=intent.reason,
            plan_version_id=intent.plan_version_id, event=intent.event, request_id="", lms_status=None,
            lms_answer=RECOVERED_ANSWER, at=intent.at)
        ctx.session.add(row)
        ctx.last[key] = row
        ctx.own[key] = value
        ctx.history.add((quiz.id, c.person_id))
    if not ctx.dry_run:
        ctx.settled.append(intent.id)


def _intend(ctx: _Ctx, quiz: LmsQuiz, items: Iterable[tuple[Candidate, list[Decision]]]) -> None:
    """Commit what is about to be written before the LMS call (see the module docstring); ``_record`` removes each
    intent with the ledger row of the answer, in the same transaction."""
    if ctx.dry_run:
        return
    added = False
    for c, decisions in items:
        for d in decisions:
            if not d.write or d.outcome not in (Outcome.APPLIED, Outcome.WITHDRAWN):
                continue
            key = (quiz.id, c.person_id, d.field.value)
            stale = ctx.intents.pop(key, None)
            if stale is not None:
                ctx.settled.append(stale.id)
            intent = LmsLedgerIntent(course_id=ctx.course.id, quiz_id=quiz.id, person_id=c.person_id,
                                     field=d.field.value, before={"value": d.before}, after={"value": d.value},
                                     outcome=d.outcome.value, reason=ctx.reason,
                                     plan_version_id=c.plan_version_id, event=ctx.event[:255], at=utcnow())
            ctx.session.add(intent)
            ctx.intents[key] = intent
            added = True
    if added:
        _commit(ctx)


def _record(ctx: _Ctx, quiz: LmsQuiz, c: Candidate, decisions: list[Decision], *, ok: bool, request_id: str = "",
            status: int | None = None, answer: str = "", state: bool = True) -> None:
    """Ledger rows for one student on one quiz, and (``state``) the state the report reads."""
    for d in decisions:
        if d.outcome is None:
            continue
        outcome = d.outcome if (ok or not d.write) else Outcome.FAILED
        after = d.value if outcome is not Outcome.FAILED else d.target
        if outcome is Outcome.FAILED:
            ctx.failed[(quiz.id, c.person_id, d.field.value)] = answer
        ctx.result.changes.append(Change(ctx.course.id, quiz.title, quiz.lms_quiz_id, c.person_id, c.student_id,
                                         d.field.value, d.before, after, outcome.value))
        if ctx.dry_run:
            continue
        key = (quiz.id, c.person_id, d.field.value)
        intent = ctx.intents.pop(key, None) if d.write else None
        if intent is not None:
            ctx.settled.append(intent.id)
        previous = ctx.last.get(key)
        if outcome is Outcome.KEPT and previous is not None and previous.outcome == Outcome.KEPT.value \
                and (previous.before or {}).get("value") == d.before and (previous.after or {}).get("value") == after:
            continue  # the same refusal as last time: nothing new to record
        row = LmsActionLedger(
            platform_id=ctx.platform.id, course_id=ctx.course.id, lms_course_id=ctx.course.lms_course_id or "",
            quiz_id=quiz.id, lms_quiz_id=quiz.lms_quiz_id, quiz_title=quiz.title[:500], person_id=c.person_id,
            lms_user_id=c.lms_user_id, student_id=c.student_id, field=d.field.value, before={"value": d.before},
            after={"value": after}, outcome=outcome.value, reason=ctx.reason, plan_version_id=c.plan_version_id,
            event=ctx.event[:255], request_id=request_id, lms_status=status, lms_answer=answer[:2000])
        ctx.session.add(row)
        ctx.last[key] = row
        if outcome in (Outcome.APPLIED, Outcome.WITHDRAWN):
            ctx.own[key] = after
    if state and not ctx.dry_run:
        _state(ctx, quiz, c, decisions, ok, answer)


def _state(ctx: _Ctx, quiz: LmsQuiz, c: Candidate, decisions: list[Decision], ok: bool, answer: str) -> None:
    required = {d.field.value: d.target for d in decisions if d.target is not None}
    refused = {d.field.value for d in decisions if d.write and (not ok or (quiz.id, c.person_id, d.field.value)
                                                                 in ctx.failed)}
    lms = {d.field.value: (d.before if d.field.value in refused else d.value) for d in decisions}
    answer = answer or next((ctx.failed[(quiz.id, c.person_id, f)] for f in sorted(refused)
                             if (quiz.id, c.person_id, f) in ctx.failed), "")
    if refused:
        status = "failed"
    elif any(d.outcome is Outcome.KEPT for d in decisions):
        status = "teacher"
    elif quiz.kind == QuizKind.NEW.value:
        status = "unverified"
    else:
        status = "ok"
    detail = answer[:500] if status == "failed" else ""
    guarded = Field.TIMECLOSE.value in required or Field.LOCK_AT.value in required
    if status != "failed" and not guarded and quiz.closes_at is not None and quiz.opens_at is not None:
        limit = (quiz.time_limit_seconds or 0) + int(required.get(Field.EXTRA_TIME.value) or 0) * 60
        if quiz.kind == QuizKind.MOODLE.value:
            limit = int(required.get(Field.TIMELIMIT.value) or quiz.time_limit_seconds or 0)
        if window_cuts_time(_unix(quiz.opens_at), _unix(quiz.closes_at), limit).cut_short:
            detail = "The quiz's availability window closes before the student could use the extra time."
    state = ctx.states.get((quiz.id, c.person_id))
    if not required and not any(v for v in lms.values() if v) and state is None:
        return
    if state is None:
        state = LmsQuizState(quiz_id=quiz.id, person_id=c.person_id, required=required, lms=lms, status=status,
                             detail=detail, checked_at=utcnow())
        ctx.session.add(state)
        ctx.states[(quiz.id, c.person_id)] = state
    elif (state.required, state.lms, state.status, state.detail) != (required, lms, status, detail):
        state.required, state.lms, state.status, state.detail = required, lms, status, detail
        state.checked_at = utcnow()
    elif state.checked_at < utcnow() - VERIFY_AFTER / 2:
        state.checked_at = utcnow()  # verified again: the sweep may trust it for another while


def _commit_quiz(ctx: _Ctx) -> None:
    if not ctx.dry_run:
        _commit(ctx)


def _delete_settled(ctx: _Ctx) -> None:
    """One DELETE for the intents settled since the last commit. By id, not through the ORM: a row another
    reconcile of the same course settled meanwhile is simply gone (no stale-data error)."""
    if ctx.settled:
        ctx.session.execute(delete(LmsLedgerIntent).where(LmsLedgerIntent.id.in_(ctx.settled))
                            .execution_options(synchronize_session=False))
        ctx.settled.clear()


def _commit(ctx: _Ctx) -> None:
    _delete_settled(ctx)
    ctx.session.commit()


# ------------------------------------------------------------------------------------------------ Canvas
def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _canvas_call(ctx: _Ctx, call: Callable[[], Any], *, write: bool = False) -> Any:
    try:
        value = call()
    except ReauthorizationRequired:
        raise
    except CanvasError as exc:
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            raise LmsUnavailable(str(exc)) from None
        raise
    if write:
        ctx.result.writes += 1
    else:
        ctx.result.reads += 1
    return value


def _canvas(ctx: _Ctx, client: CanvasClient, candidates: list[Candidate]) -> None:
    course_id = str(ctx.course.lms_course_id)
    quizzes = _canvas_call(ctx, lambda: client.list_quizzes(course_id))
    classic = _upsert_quizzes(ctx, QuizKind.CLASSIC, [
        {"lms_quiz_id": q.id, "title": q.title[:500], "assignment_id": q.assignment_id,
         "time_limit_seconds": q.time_limit_minutes * 60 if q.time_limit_minutes else None,
         "allowed_attempts": q.allowed_attempts, "opens_at": _when(q.unlock_at), "closes_at": _when(q.lock_at)}
        for q in quizzes if q.quiz_type != "survey"])
    try:
        new = _canvas_call(ctx, lambda: client.list_new_quizzes(course_id))
    except CanvasError as exc:
        if exc.status not in (401, 403, 404):
            raise
        new = []  # New Quizzes is not enabled for this course (or this key)
    new_quizzes = _upsert_quizzes(ctx, QuizKind.NEW, [
        {"lms_quiz_id": q.assignment_id, "title": q.title[:500], "assignment_id": q.assignment_id,
         "time_limit_seconds": q.time_limit_seconds, "allowed_attempts": None, "opens_at": None, "closes_at": None}
        for q in new])
    _commit_quiz(ctx)
    by_person = {c.person_id: c for c in candidates}
    for quiz in classic:
        targets = _targets(ctx, quiz, candidates)
        if not targets or _trusted(ctx, quiz, targets):
            continue
        ctx.result.timed_quizzes += 1 if quiz.time_limit_seconds else 0
        current = _canvas_call(ctx, partial(client.quiz_extensions, course_id, quiz.lms_quiz_id))
        windows = _canvas_windows(ctx, client, quiz, targets)
        close = _unix(quiz.closes_at)
        plans: list[tuple[Candidate, list[Decision], Extension | None]] = []
        for person_id, required in targets.items():
            c = by_person[person_id]
            ext = current.get(c.lms_user_id)
            own = windows.get(c.lms_user_id) if windows is not None else None
            now = {Field.EXTRA_TIME: ext.extra_time if ext else None,
                   Field.EXTRA_ATTEMPTS: ext.extra_attempts if ext else None,
                   Field.LOCK_AT: (_iso_unix(own.lock_at) if own is not None and own.lock_at else close)
                   if windows is not None else required.get(Field.LOCK_AT)}
            decisions = _decide(ctx, quiz, c, required, now,
                                {Field.EXTRA_TIME: 0, Field.EXTRA_ATTEMPTS: 0, Field.LOCK_AT: close})
            plans.append((c, decisions, ext))
        _canvas_write_classic(ctx, client, quiz, plans)
        if windows is not None:
            _canvas_write_windows(ctx, client, quiz, plans, windows)
        for c, ds, _ext in plans:
            if not ctx.dry_run:
                _state(ctx, quiz, c, ds, True, "")
        _commit_quiz(ctx)
    for quiz in new_quizzes:
        targets = _targets(ctx, quiz, candidates)
        if not targets:
            continue
        ctx.result.timed_quizzes += 1 if quiz.time_limit_seconds else 0
        plans = []
        for person_id, required in targets.items():
            c = by_person[person_id]
            # no read-back API: what Caseload last applied is the current value, unless that write failed
            now = {f: ctx.own.get((quiz.id, person_id, f.value)) for f in FIELDS[QuizKind.NEW]}
            for f in FIELDS[QuizKind.NEW]:
                previous = ctx.last.get((quiz.id, person_id, f.value))
                if previous is not None and previous.outcome == Outcome.FAILED.value:
                    now[f] = None
            baseline = {Field.EXTRA_TIME: 0, Field.EXTRA_ATTEMPTS: 0, Field.REDUCE_CHOICES: False}
            plans.append((c, _decide(ctx, quiz, c, required, now, baseline), None))
        _canvas_write_new(ctx, client, quiz, plans)
        _commit_quiz(ctx)


def _classic_item(c: Candidate, decisions: list[Decision], ext: Extension | None) -> Extension:
    values = {d.field: d.value for d in decisions}
    return Extension(c.lms_user_id,
                     _int(values.get(Field.EXTRA_TIME, ext.extra_time if ext else None)),
                     _int(values.get(Field.EXTRA_ATTEMPTS, ext.extra_attempts if ext else None)))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso_unix(value: str | None) -> int | None:
    return _unix(_when(value))


def _iso(epoch: int | bool | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canvas_windows(ctx: _Ctx, client: CanvasClient, quiz: LmsQuiz, targets: dict[int, dict[Field, Any]]
                    ) -> dict[str, AssignmentOverride] | None:
    """Each student's ad-hoc assignment override (one at most), read only when the window guard has something to
    do on this quiz (a target, or a value Caseload set earlier); None when nothing is to be read."""
    needed = any(Field.LOCK_AT in r for r in targets.values()) or any(
        ctx.own.get((quiz.id, p, Field.LOCK_AT.value)) or (quiz.id, p, Field.LOCK_AT.value) in ctx.intents
        for p in targets)
    if not needed or quiz.assignment_id is None:
        return None
    found = _canvas_call(ctx, partial(client.assignment_overrides, str(ctx.course.lms_course_id),
                                      quiz.assignment_id))
    return {sid: o for o in found for sid in o.student_ids}


def _canvas_write_windows(ctx: _Ctx, client: CanvasClient, quiz: LmsQuiz,
                          plans: list[tuple[Candidate, list[Decision], Extension | None]],
                          windows: dict[str, AssignmentOverride]) -> None:
    """Move the student's own lock date: edit their override when it is theirs alone, split them out of a shared
    one (keeping its dates), or create one — never a second override for the same student."""
    course_id, aid = str(ctx.course.lms_course_id), str(quiz.assignment_id)
    for c, ds, _ext in plans:
        lock = [d for d in ds if d.field is Field.LOCK_AT]
        if not lock or not lock[0].write:
            _record(ctx, quiz, c, lock, ok=True, state=False)
            continue
        value = lock[0].value
        new_lock = _iso(value) if value != _unix(quiz.closes_at) else None
        if ctx.dry_run:
            _record(ctx, quiz, c, lock, ok=True, state=False)
            continue
        existing = windows.get(c.lms_user_id)
        _intend(ctx, quiz, [(c, lock)])
        try:
            if existing is not None and existing.student_ids == [c.lms_user_id]:
                answer = _canvas_call(ctx, partial(client.save_assignment_override, course_id, aid,
                                                   replace(existing, lock_at=new_lock or existing.lock_at)),
                                      write=True)
            elif existing is not None:
                others = [s for s in existing.student_ids if s != c.lms_user_id]
                _canvas_call(ctx, partial(client.save_assignment_override, course_id, aid,
                                          replace(existing, student_ids=others)), write=True)
                answer = _canvas_call(ctx, partial(client.save_assignment_override, course_id, aid,
                                                   replace(existing, id=None, student_ids=[c.lms_user_id],
                                                           lock_at=new_lock or existing.lock_at)), write=True)
            else:
                answer = _canvas_call(ctx, partial(client.save_assignment_override, course_id, aid,
                                                   AssignmentOverride(None, [c.lms_user_id],
                                                                      "Caseload accommodation", None, None,
                                                                      new_lock)), write=True)
        except CanvasError as exc:
            _record(ctx, quiz, c, lock, ok=False, status=exc.status, answer=exc.body or str(exc), state=False)
        else:
            _record(ctx, quiz, c, lock, ok=True, request_id=answer.request_id, status=answer.status, state=False)


def _canvas_write_classic(ctx: _Ctx, client: CanvasClient, quiz: LmsQuiz,
                          plans: list[tuple[Candidate, list[Decision], Extension | None]]) -> None:
    course_id = str(ctx.course.lms_course_id)
    plans = [(c, [d for d in ds if d.field is not Field.LOCK_AT], ext) for c, ds, ext in plans]
    to_write = [(c, ds, ext) for c, ds, ext in plans if any(d.write for d in ds)]
    for c, ds, _ext in plans:
        if not any(d.write for d in ds):
            _record(ctx, quiz, c, ds, ok=True, state=False)
    if not to_write:
        return
    if ctx.dry_run:
        for c, ds, _ext in to_write:
            _record(ctx, quiz, c, ds, ok=True, state=False)
        return
    _intend(ctx, quiz, [(c, ds) for c, ds, _ext in to_write])
    try:
        answer = _canvas_call(ctx, lambda: client.set_extensions(
            course_id, quiz.lms_quiz_id, [_classic_item(c, ds, ext) for c, ds, ext in to_write]), write=True)
    except CanvasError as exc:
        if len(to_write) == 1:
            c, ds, _ = to_write[0]
            _record(ctx, quiz, c, ds, ok=False, status=exc.status, answer=exc.body or str(exc), state=False)
            return
        # one student Canvas cannot find fails the whole batch: write one by one so the others get their time
        for c, ds, ext in to_write:
            try:
                single = _canvas_call(ctx, partial(
                    client.set_extensions, course_id, quiz.lms_quiz_id, [_classic_item(c, ds, ext)]), write=True)
            except CanvasError as one:
                _record(ctx, quiz, c, ds, ok=False, status=one.status, answer=one.body or str(one), state=False)
            else:
                _record(ctx, quiz, c, ds, ok=True, request_id=single.request_id, status=single.status, state=False)
        return
    for c, ds, _ext in to_write:
        _record(ctx, quiz, c, ds, ok=True, request_id=answer.request_id, status=answer.status, state=False)


def _canvas_write_new(ctx: _Ctx, client: CanvasClient, quiz: LmsQuiz,
                      plans: list[tuple[Candidate, list[Decision], Extension | None]]) -> None:
    course_id = str(ctx.course.lms_course_id)
    to_write = [(c, ds) for c, ds, _ in plans if any(d.write for d in ds)]
    for c, ds, _ in plans:
        if not any(d.write for d in ds):
            _record(ctx, quiz, c, ds, ok=True)
    if not to_write:
        return
    if ctx.dry_run:
        for c, ds in to_write:
            _record(ctx, quiz, c, ds, ok=True)
        return
    items = []
    for c, ds in to_write:
        values = {d.field: d.value for d in ds}
        items.append({"user_id": int(c.lms_user_id) if c.lms_user_id.isdigit() else c.lms_user_id,
                      "extra_time": int(values.get(Field.EXTRA_TIME) or 0),
                      "extra_attempts": int(values.get(Field.EXTRA_ATTEMPTS) or 0),
                      "reduce_choices_enabled": bool(values.get(Field.REDUCE_CHOICES))})
    _intend(ctx, quiz, to_write)
    try:
        answer = _canvas_call(ctx, lambda: client.set_new_quiz_accommodations(course_id, quiz.lms_quiz_id, items),
                              write=True)
    except CanvasError as exc:
        for c, ds in to_write:
            _record(ctx, quiz, c, ds, ok=False, status=exc.status, answer=exc.body or str(exc))
        return
    body = answer.body if isinstance(answer.body, dict) else {}
    failed = {str(f.get("user_id")): str(f.get("error") or "failed") for f in body.get("failed") or []
              if isinstance(f, dict)}
    for c, ds in to_write:
        if c.lms_user_id in failed:
            _record(ctx, quiz, c, ds, ok=False, request_id=answer.request_id, status=answer.status,
                    answer=failed[c.lms_user_id])
        else:
            _record(ctx, quiz, c, ds, ok=True, request_id=answer.request_id, status=answer.status)


# ------------------------------------------------------------------------------------------------ Moodle
def _moodle_call(ctx: _Ctx, call: Callable[[], Any], *, write: bool = False) -> Any:
    try:
        value = call()
    except MoodleTokenRefused:
        raise
    except MoodleError as exc:
        if exc.errorcode is None:
            raise LmsUnavailable(str(exc)) from None
        raise
    if write:
        ctx.result.writes += 1
    else:
        ctx.result.reads += 1
    return value


def _epoch(value: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value else None


def _moodle(ctx: _Ctx, ws: MoodleWebService, candidates: list[Candidate]) -> None:
    course_id = str(ctx.course.lms_course_id)
    found = _moodle_call(ctx, lambda: ws.quizzes_by_courses([course_id]))
    quizzes = _upsert_quizzes(ctx, QuizKind.MOODLE, [
        {"lms_quiz_id": q.id, "title": q.name[:500], "assignment_id": None,
         "time_limit_seconds": q.timelimit or None, "allowed_attempts": q.attempts,
         "opens_at": _epoch(q.timeopen), "closes_at": _epoch(q.timeclose)}
        for q in found if q.course_id in ("", course_id)])
    _commit_quiz(ctx)
    by_person = {c.person_id: c for c in candidates}
    for quiz in quizzes:
        targets = _targets(ctx, quiz, candidates)
        if not targets or _trusted(ctx, quiz, targets):
            continue
        ctx.result.timed_quizzes += 1 if quiz.time_limit_seconds else 0
        facts = _facts(quiz)
        found = _moodle_call(ctx, partial(ws.get_overrides, quiz.lms_quiz_id))
        overrides = {str(o.get("userid")): o for o in found if o.get("userid") is not None}
        group_overrides = [o for o in found if o.get("groupid") is not None]
        members: dict[str, set[str]] = {}
        if group_overrides:  # a user override beats group ones: never let Caseload's cut a group's longer time
            members = _moodle_call(ctx, partial(ws.group_members, sorted({str(o["groupid"]) for o in group_overrides})))
        writes: list[tuple[Candidate, list[Decision], MoodleOverride]] = []
        deletes: list[tuple[Candidate, list[Decision], int]] = []
        for person_id, required in targets.items():
            c = by_person[person_id]
            raw = overrides.get(c.lms_user_id)
            existing = None if raw is None else _override(raw)
            groups = [_override(o) for o in group_overrides if c.lms_user_id in members.get(str(o["groupid"]), set())]
            now = moodle_effective(facts, existing, groups)
            if groups:
                required = _group_floor(required, moodle_effective(facts, None, groups))
            decisions = _decide(ctx, quiz, c, required, dict(now),
                                {Field.TIMELIMIT: quiz.time_limit_seconds, Field.ATTEMPTS: quiz.allowed_attempts,
                                 Field.TIMECLOSE: facts.closes_at})
            merged = merge_moodle_override(facts, existing, int(c.lms_user_id), decisions)
            if merged is None:
                _record(ctx, quiz, c, decisions, ok=True)
            elif override_is_empty(merged):
                if existing is not None and existing.id is not None:
                    deletes.append((c, decisions, existing.id))
                else:
                    _record(ctx, quiz, c, decisions, ok=True)
            else:
                writes.append((c, decisions, merged))
        _moodle_write(ctx, ws, quiz, writes, deletes)
        _commit_quiz(ctx)


def _group_floor(required: dict[Field, Any], floor: dict[Field, int | None]) -> dict[Field, Any]:
    """A user override replaces the student's group overrides field by field, so a value Caseload writes must be
    at least what their groups give (a group's unlimited: Caseload writes nothing for that field)."""
    out = dict(required)
    for f, value in required.items():
        group_value = floor.get(f)
        if group_value is None:
            continue
        if group_value >= UNLIMITED:
            del out[f]
        elif group_value > int(value):
            out[f] = group_value
    return out


def _override(raw: dict[str, Any]) -> MoodleOverride:
    return MoodleOverride(id=int(raw["id"]), userid=int(raw.get("userid") or 0), timeopen=raw.get("timeopen"),
                          timeclose=raw.get("timeclose"), timelimit=raw.get("timelimit"), attempts=raw.get("attempts"),
                          password=raw.get("password"))


def _moodle_write(ctx: _Ctx, ws: MoodleWebService, quiz: LmsQuiz,
                  writes: list[tuple[Candidate, list[Decision], MoodleOverride]],
                  deletes: list[tuple[Candidate, list[Decision], int]]) -> None:
    if ctx.dry_run:
        for c, ds, _ in [*writes, *deletes]:
            _record(ctx, quiz, c, ds, ok=True)
        return
    _intend(ctx, quiz, [(c, ds) for c, ds, _ in [*writes, *deletes]])
    if writes:
        try:
            answer = _moodle_call(ctx, lambda: ws.save_overrides(quiz.lms_quiz_id, [o.as_params() for _, _, o in writes]),
                                  write=True)
        except MoodleError as exc:
            for c, ds, o in writes:
                if len(writes) == 1:
                    _record(ctx, quiz, c, ds, ok=False, answer=f"{exc.errorcode}: {exc}")
                    continue
                try:
                    single = _moodle_call(ctx, partial(ws.save_overrides, quiz.lms_quiz_id, [o.as_params()]),
                                          write=True)
                except MoodleError as one:
                    _record(ctx, quiz, c, ds, ok=False, answer=f"{one.errorcode}: {one}")
                else:
                    _record(ctx, quiz, c, ds, ok=True, request_id=single.request_id)
        else:
            for c, ds, _ in writes:
                _record(ctx, quiz, c, ds, ok=True, request_id=answer.request_id)
    for c, ds, override_id in deletes:
        try:
            answer = _moodle_call(ctx, partial(
                ws.call, "mod_quiz_delete_overrides", {"data": {"quizid": quiz.lms_quiz_id, "ids": [override_id]}},
                write=True),
                write=True)
        except MoodleError as exc:
            _record(ctx, quiz, c, ds, ok=False, answer=f"{exc.errorcode}: {exc}")
        else:
            _record(ctx, quiz, c, ds, ok=True, request_id=answer.request_id)

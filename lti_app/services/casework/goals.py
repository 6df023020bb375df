"""Goals and progress monitoring: goals on a plan, progress data points, progress reports per reporting period
(draft -> final), and the page that shows them with a chart per goal.

Every read and every change is written to the access log with its basis, refusals included (a refusal is
committed before the 403). Free text (data-point notes, report narratives and comments) is encrypted with the
data keys; nothing about a student but internal ids reaches the application log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Literal

from flask import abort
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain import deadlines as deadline_rules
from lti_app.domain import goals as rules
from lti_app.domain.access import Action, decide
from lti_app.domain.casework_rules import CaseworkInvalid, change_reason
from lti_app.domain.progress_chart import Chart, ChartGoal, build_chart, fmt_number
from lti_app.models import Goal, Person, Plan, ProgressPoint, ProgressReport, ProgressReportGoal, ReportingPeriod, Student
from lti_app.services.access import policy as access
from lti_app.services.casework import deadlines as deadline_service
from lti_app.services.casework import evidence

log = logging.getLogger(__name__)

OPEN_PLAN_STATUSES = ("active", "draft")
NOT_VISIBLE = ("There is no student record here that you may see. Goals and progress are shown to the student's "
               "case manager, the counselors and providers who serve the student, and administrators.")
Need = Literal["view", "edit", "record", "finalize"]


class ReportFinal(ValueError):
    """The report is final and is not changed again."""


@dataclass(frozen=True)
class GoalAccess:
    student: Student
    rights: rules.GoalRights


def goal_access(session: Session, viewer: Viewer, student_id: int, need: Need, logged_action: str,
                context: str) -> GoalAccess:
    """Decide what this person may do with the student's goals, log the request with its basis, and refuse with
    403 when ``need`` is not met (the refusal is committed first so the log keeps it)."""
    student = session.get(Student, student_id)
    if student is None or student.purged_at is not None:
        access.record(session, viewer, None if student is None else student_id, logged_action, False,
                      "no such student record", f"{context} (student id {student_id})")
        session.commit()
        abort(403, description=NOT_VISIBLE)
    actor, facts = access.actor_facts(session, viewer), access.student_facts(session, student_id)
    view = decide(actor, facts, Action.VIEW_CASEWORK)
    edit = decide(actor, facts, Action.EDIT_CASEWORK)
    record = decide(actor, facts, Action.LOG_SERVICE)
    rights = rules.goal_rights(view, edit, record)
    allowed = getattr(rights, need)
    basis = {"view": view, "edit": edit, "record": record, "finalize": edit}[need].basis
    if need == "finalize" and not allowed and edit.allowed:
        basis = f"{edit.basis}; only the student's case manager makes a progress report final"
    access.record(session, viewer, student_id, logged_action, allowed, basis, context)
    if not allowed:
        session.commit()
        log.info("goals refused actor=%s student=%s need=%s", viewer.person_id, student_id, need)
        abort(403, description=rights.refusal or NOT_VISIBLE)
    return GoalAccess(student, rights)


# --- reading ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointView:
    id: int
    measured_on: dt.date
    value: str
    note: str
    recorded_by: str
    revision_no: int = 1
    deleted_at: dt.datetime | None = None


@dataclass(frozen=True)
class GoalView:
    goal: Goal
    chart: Chart
    points: list[PointView]
    baseline: str
    target: str
    removed: list[PointView] = field(default_factory=list)
    """Data points removed by mistake: out of the chart, kept in the history."""


@dataclass(frozen=True)
class ReportRow:
    plan: Plan
    period: deadline_rules.ReportingPeriod
    status: str
    """none | draft | final"""
    deadline_status: str


@dataclass
class GoalsPage:
    student: Student
    rights: rules.GoalRights
    plans: list[Plan]
    goals: dict[int, list[GoalView]] = field(default_factory=dict)
    """plan id -> goals of that plan."""
    reports: list[ReportRow] = field(default_factory=list)
    deadlines: list[deadline_rules.Deadline] = field(default_factory=list)
    history: dict[tuple[str, int], list[evidence.RevisionView]] = field(default_factory=dict)
    """Revisions of the data points (corrections and removals, with who, when and why)."""


def _decrypt(value: bytes | None) -> str:
    return cipher().decrypt(value) if value else ""


def chart_for(goal: Goal, points: list[ProgressPoint]) -> Chart:
    title = goal.description if len(goal.description) <= 80 else goal.description[:77].rstrip() + "…"
    return build_chart(ChartGoal(title=title, unit=goal.unit, baseline=float(goal.baseline), target=float(goal.target),
                                 baseline_on=goal.baseline_on, target_on=goal.target_on),
                       [(p.measured_on, float(p.value)) for p in points])


def _point_view(p: ProgressPoint, recorded_by: str | None) -> PointView:
    return PointView(p.id, p.measured_on, fmt_number(float(p.value)), _decrypt(p.note_encrypted), recorded_by or "—",
                     p.revision_no or 1, p.deleted_at)


def goals_page(session: Session, viewer: Viewer, student_id: int, today: dt.date) -> GoalsPage:
    """Everything on the goals tab in a fixed number of queries."""
    acc = goal_access(session, viewer, student_id, "view", "view", "goals and progress")
    plans = list(session.scalars(select(Plan).where(Plan.student_id == student_id,
                                                    Plan.status.in_(OPEN_PLAN_STATUSES)).order_by(Plan.id)))
    page = GoalsPage(acc.student, acc.rights, plans)
    goals = list(session.scalars(select(Goal).where(Goal.student_id == student_id)
                                 .order_by(Goal.plan_id, Goal.position, Goal.id)))
    points: dict[int, list[tuple[ProgressPoint, str | None]]] = {g.id: [] for g in goals}
    if goals:
        for point, name in session.execute(
                select(ProgressPoint, Person.name).outerjoin(Person, Person.id == ProgressPoint.recorded_by_id)
                .where(ProgressPoint.goal_id.in_(list(points)))
                .order_by(ProgressPoint.measured_on, ProgressPoint.id)):
            points[point.goal_id].append((point, name))
    for goal in goals:
        rows = [(p, n) for p, n in points[goal.id] if p.deleted_at is None]
        page.goals.setdefault(goal.plan_id, []).append(GoalView(
            goal, chart_for(goal, [p for p, _ in rows]),
            [_point_view(p, n) for p, n in rows], fmt_number(float(goal.baseline)), fmt_number(float(goal.target)),
            [_point_view(p, n) for p, n in points[goal.id] if p.deleted_at is not None]))
    page.history = evidence.history(session, student_id, ["progress_point"])
    page.deadlines = deadline_service.for_rows(session, [(p, acc.student) for p in plans], today)
    calendar = deadline_service.load_calendars(session, [acc.student.school])[acc.student.school]
    reports = {(r.plan_id, r.period_id): r.status for r in session.scalars(
        select(ProgressReport).where(ProgressReport.student_id == student_id))}
    due = {(d.plan_id, d.period_id): d.status.value for d in page.deadlines if d.period_id is not None}
    for plan in plans:
        if not page.goals.get(plan.id):
            continue
        for period in calendar.periods:
            if (plan.id, period.id) in due or (plan.id, period.id) in reports:
                page.reports.append(ReportRow(plan, period, reports.get((plan.id, period.id), "none"),
                                              due.get((plan.id, period.id), "")))
    return page


# --- goals -----------------------------------------------------------------------------------------------------

def _open_plan(session: Session, student_id: int, plan_id: int | str | None) -> Plan:
    try:
        pid = int(plan_id or 0)
    except (TypeError, ValueError):
        pid = 0
    plan = session.get(Plan, pid) if pid else None
    if plan is None or plan.student_id != student_id or plan.status not in OPEN_PLAN_STATUSES:
        raise rules.Invalid([rules.Problem("plan_id", "Choose one of the student's current plans.")])
    return plan


def create_goal(session: Session, viewer: Viewer, student_id: int, form: dict[str, str], today: dt.date) -> Goal:
    goal_access(session, viewer, student_id, "edit", "create", "add goal")
    plan = _open_plan(session, student_id, form.get("plan_id"))
    fields = rules.check_goal(form, today)
    position = session.scalar(select(func.coalesce(func.max(Goal.position), 0)).where(Goal.plan_id == plan.id)) or 0
    goal = Goal(student_id=student_id, plan_id=plan.id, area=fields.area, description=fields.description,
                baseline=fields.baseline, target=fields.target, unit=fields.unit,
                measurement_method=fields.measurement_method, baseline_on=fields.baseline_on,
                target_on=fields.target_on, status=fields.status, position=position + 1, created_by_id=viewer.person_id)
    session.add(goal)
    session.flush()
    log.info("goal created goal=%s plan=%s actor=%s", goal.id, plan.id, viewer.person_id)
    return goal


def goal_of(session: Session, viewer: Viewer, student_id: int, goal_id: int, need: Need, logged_action: str,
            context: str) -> Goal:
    """The goal, after the access check (a goal of another student is refused like a missing one)."""
    goal_access(session, viewer, student_id, need, logged_action, context)
    goal = session.get(Goal, goal_id)
    if goal is None or goal.student_id != student_id:
        abort(404, description="There is no such goal on this student's record.")
    return goal


def update_goal(session: Session, viewer: Viewer, student_id: int, goal_id: int, form: dict[str, str],
                today: dt.date) -> Goal:
    goal = goal_of(session, viewer, student_id, goal_id, "edit", "update", f"change goal {goal_id}")
    fields = rules.check_goal(form, today)
    earliest = session.scalar(select(func.min(ProgressPoint.measured_on)).where(ProgressPoint.goal_id == goal.id,
                                                                                ProgressPoint.deleted_at.is_(None)))
    if earliest is not None and fields.baseline_on > earliest:
        raise rules.Invalid([rules.Problem("baseline_on", f"Data points are recorded from {earliest.isoformat()}: "
                                           "the baseline date cannot be after them.")])
    goal.area, goal.description, goal.unit = fields.area, fields.description, fields.unit
    goal.baseline, goal.target, goal.measurement_method = fields.baseline, fields.target, fields.measurement_method
    goal.baseline_on, goal.target_on, goal.status = fields.baseline_on, fields.target_on, fields.status
    goal.updated_at = utcnow()
    log.info("goal updated goal=%s actor=%s", goal.id, viewer.person_id)
    return goal


def add_point(session: Session, viewer: Viewer, student_id: int, goal_id: int, form: dict[str, str],
              today: dt.date) -> ProgressPoint:
    goal = goal_of(session, viewer, student_id, goal_id, "record", "create", f"goal {goal_id}: add data point")
    if goal.status != "active":
        raise rules.Invalid([rules.Problem("value", "This goal is no longer active; progress is recorded on active "
                                           "goals.")])
    fields = rules.check_point(form, goal.baseline_on, today)
    point = ProgressPoint(goal_id=goal.id, measured_on=fields.measured_on, value=fields.value,
                          note_encrypted=cipher().encrypt(fields.note) if fields.note else None,
                          recorded_by_id=viewer.person_id)
    session.add(point)
    session.flush()
    log.info("progress point added goal=%s point=%s actor=%s", goal.id, point.id, viewer.person_id)
    return point


def _point_of(session: Session, goal: Goal, point_id: int) -> ProgressPoint:
    point = session.get(ProgressPoint, point_id)
    if point is None or point.goal_id != goal.id:
        abort(404, description="There is no such data point on this goal.")
    if point.deleted_at is not None:
        raise rules.Invalid([rules.Problem("reason", "This data point was removed; it is kept in the history and is "
                                                     "not changed again. Record a new one instead.")])
    return point


def _problems(exc: CaseworkInvalid) -> list[rules.Problem]:
    return [rules.Problem(name, message) for name, message in exc.problems]


def correct_point(session: Session, viewer: Viewer, student_id: int, goal_id: int, point_id: int,
                  form: dict[str, str], today: dt.date) -> ProgressPoint:
    """Correct a data point (the case manager): a new revision with who, when and why; the chart shows the
    corrected value and the history keeps the old one."""
    goal = goal_of(session, viewer, student_id, goal_id, "edit", "update", f"goal {goal_id}: correct data point "
                                                                           f"{point_id}")
    point = _point_of(session, goal, point_id)
    problems: list[rules.Problem] = []
    fields: rules.PointFields | None = None
    try:
        fields = rules.check_point(form, goal.baseline_on, today)
    except rules.Invalid as exc:
        problems += exc.problems
    reason = ""
    try:
        reason = change_reason(form, removal=False)
    except CaseworkInvalid as exc:
        problems += _problems(exc)
    if problems or fields is None:
        raise rules.Invalid(problems)
    before = evidence.before_change(session, point, student_id)
    point.measured_on, point.value = fields.measured_on, fields.value
    point.note_encrypted = cipher().encrypt(fields.note) if fields.note else None
    if evidence.unchanged(before, point):
        raise rules.Invalid([rules.Problem("value", "Nothing was changed: correct a value, or leave the data point as "
                                                    "it is.")])
    evidence.after_change(session, viewer, point, student_id, reason)
    return point


def delete_point(session: Session, viewer: Viewer, student_id: int, goal_id: int, point_id: int,
                 form: dict[str, str]) -> None:
    """Remove a data point entered by mistake (the case manager; logged), softly: it leaves the chart and stays in
    the history with who removed it, when and why (a reason and a ticked confirmation are required)."""
    goal = goal_of(session, viewer, student_id, goal_id, "edit", "update", f"goal {goal_id}: remove data point "
                                                                           f"{point_id}")
    point = _point_of(session, goal, point_id)
    try:
        reason = change_reason(form, removal=True)
    except CaseworkInvalid as exc:
        raise rules.Invalid(_problems(exc)) from None
    evidence.before_change(session, point, student_id)
    evidence.after_change(session, viewer, point, student_id, reason, action="remove")
    log.info("progress point removed goal=%s point=%s actor=%s", goal.id, point_id, viewer.person_id)


# --- progress reports ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportEntry:
    goal: Goal
    rating: str
    comment: str
    chart: Chart


@dataclass(frozen=True)
class ReportPage:
    student: Student
    rights: rules.GoalRights
    plan: Plan
    period: ReportingPeriod
    report: ProgressReport | None
    narrative: str
    entries: list[ReportEntry]
    finalized_by: str


def _report_target(session: Session, student_id: int, plan_id: int, period_id: int) -> tuple[Plan, ReportingPeriod]:
    plan = session.get(Plan, plan_id)
    period = session.get(ReportingPeriod, period_id)
    if plan is None or plan.student_id != student_id or period is None:
        abort(404, description="There is no such progress report for this student.")
    return plan, period


def report_page(session: Session, viewer: Viewer, student_id: int, plan_id: int, period_id: int) -> ReportPage:
    acc = goal_access(session, viewer, student_id, "view", "view", f"progress report (plan {plan_id}, period {period_id})")
    plan, period = _report_target(session, student_id, plan_id, period_id)
    report = session.scalars(select(ProgressReport).where(ProgressReport.plan_id == plan.id,
                                                          ProgressReport.period_id == period.id)).one_or_none()
    entries = {e.goal_id: e for e in (report.entries if report else [])}
    goals = [g for g in session.scalars(select(Goal).where(Goal.plan_id == plan.id).order_by(Goal.position, Goal.id))
             if g.status != "discontinued" or g.id in entries]
    points: dict[int, list[ProgressPoint]] = {g.id: [] for g in goals}
    if goals:
        for p in session.scalars(select(ProgressPoint).where(ProgressPoint.goal_id.in_(list(points)),
                                                             ProgressPoint.deleted_at.is_(None),
                                                             ProgressPoint.measured_on <= period.ends_on)
                                 .order_by(ProgressPoint.measured_on, ProgressPoint.id)):
            points[p.goal_id].append(p)
    rows = [ReportEntry(g, entries[g.id].rating or "" if g.id in entries else "",
                        _decrypt(entries[g.id].comment_encrypted) if g.id in entries else "", chart_for(g, points[g.id]))
            for g in goals]
    finalized_by = ""
    if report is not None and report.finalized_by_id:
        finalized_by = session.scalar(select(Person.name).where(Person.id == report.finalized_by_id)) or ""
    return ReportPage(acc.student, acc.rights, plan, period, report, _decrypt(report.narrative_encrypted) if report else "",
                      rows, finalized_by)


def save_report(session: Session, viewer: Viewer, student_id: int, plan_id: int, period_id: int,
                ratings: dict[int, str], comments: dict[int, str], narrative: str, finalize: bool) -> ProgressReport:
    """Save the draft (case manager), or make it final. A final report is never changed again."""
    need: Need = "finalize" if finalize else "edit"
    goal_access(session, viewer, student_id, need, "update",
                f"progress report (plan {plan_id}, period {period_id}): {'finalize' if finalize else 'save draft'}")
    plan, period = _report_target(session, student_id, plan_id, period_id)
    report = session.scalars(select(ProgressReport).where(ProgressReport.plan_id == plan.id,
                                                          ProgressReport.period_id == period.id)).one_or_none()
    if report is not None and report.status == rules.ReportStatus.FINAL.value:
        raise ReportFinal("This progress report is final and can no longer be changed.")
    goal_status: dict[int, str] = dict(session.execute(select(Goal.id, Goal.status).where(Goal.plan_id == plan.id)).all())
    ratings = {gid: r for gid, r in ratings.items() if gid in goal_status}
    comments = {gid: c for gid, c in comments.items() if gid in goal_status}
    if finalize:  # a final report rates every goal it covers, whether or not the form sent it
        for gid, goal_state in goal_status.items():
            if goal_state != "discontinued":
                ratings.setdefault(gid, "")
    fields = rules.check_report(ratings, comments, narrative, finalize)
    now = utcnow()
    if report is None:
        report = ProgressReport(student_id=student_id, plan_id=plan.id, period_id=period.id, status="draft",
                                created_by_id=viewer.person_id)
        session.add(report)
    report.narrative_encrypted = cipher().encrypt(fields.narrative) if fields.narrative else None
    report.updated_by_id, report.updated_at = viewer.person_id, now
    existing = {e.goal_id: e for e in report.entries}
    for gid in sorted(ratings.keys() | comments.keys()):
        entry = existing.get(gid)
        if entry is None:
            entry = ProgressReportGoal(goal_id=gid)
            report.entries.append(entry)
        entry.rating = fields.ratings.get(gid)
        comment = fields.comments.get(gid, "")
        entry.comment_encrypted = cipher().encrypt(comment) if comment else None
    if finalize:
        report.status = rules.ReportStatus.FINAL.value
        report.finalized_at, report.finalized_by_id = now, viewer.person_id
    session.flush()
    log.info("progress report %s report=%s plan=%s period=%s actor=%s", "finalized" if finalize else "saved",
             report.id, plan.id, period.id, viewer.person_id)
    return report

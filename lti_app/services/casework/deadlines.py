"""Compliance deadlines for a caseload, a school, or one student: the facts are loaded in a fixed number of
set-based queries (plans, goal counts, final reports, calendar, closures) and the rules in ``domain/deadlines``
do the rest. Also: recording a plan's deadline inputs (which recomputes ``Plan.annual_review_due`` and
``reevaluation_due``) and the school reporting calendar."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import abort, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.db import in_ids, utcnow
from lti_app.domain import deadlines as rules
from lti_app.domain.access import Action, StudentFacts, decide, decide_plan
from lti_app.models import (
    DeadlineCompletion,
    Goal,
    MeetingPlanDate,
    Plan,
    ProgressReport,
    ReportingPeriod,
    RoleGrant,
    SchoolClosure,
    Student,
)
from lti_app.services.access import audit_log, roles
from lti_app.services.access import policy as access
from lti_app.settings import Settings

log = logging.getLogger(__name__)

OPEN_PLAN_STATUSES = ("active", "draft")
"""Draft plans count: the initial evaluation runs before the first IEP is active."""
INPUT_FIELDS = ("evaluation_consent_on", "last_evaluation_on", "eligibility_determined_on", "last_meeting_on",
                "reevaluation_waived_on", "transition_plan_on", "last_504_review_on")
INPUT_LABELS = {"evaluation_consent_on": "Parental consent to evaluate received on",
                "last_evaluation_on": "Last evaluation completed on",
                "eligibility_determined_on": "Eligibility determined on",
                "last_meeting_on": "Last IEP meeting (annual review) held on",
                "reevaluation_waived_on": "Reevaluation waived by agreement on",
                "transition_plan_on": "Transition plan (postsecondary goals and services) adopted on",
                "last_504_review_on": "Last 504 plan review held on"}
IEP_ONLY = ("eligibility_determined_on", "last_meeting_on", "reevaluation_waived_on", "transition_plan_on")
HELD_MEETINGS = {"iep_annual": ("IEP", "last_meeting_on"), "iep_initial": ("IEP", "last_meeting_on"),
                 "reevaluation": ("IEP", "last_evaluation_on"), "eligibility": ("IEP", "eligibility_determined_on"),
                 "504_review": ("504", "last_504_review_on")}
"""A meeting of these types, recorded as held, is the date the plan's deadline is met on (one entry, not two).
IEP amendment meetings are not here: an amendment does not move the annual review (34 CFR 300.324(a)(4))."""
MEETING_TRACKED = (*INPUT_FIELDS, "reevaluation_waiver_covers", "annual_review_due", "reevaluation_due")
"""The plan dates a held meeting may change (its inputs and what is computed from them): kept with their value
before, so withdrawing the meeting puts them back (``withdraw_meeting``)."""
LATE_REASONS = [(r.value, rules.LATE_REASON_LABELS[r]) for r in rules.LateReason]
NOT_VISIBLE = ("There is no student record here that you may see. Deadlines are shown to the student's case "
               "manager, the counselors and providers who serve the student, and administrators.")


def policy(settings: Settings | None = None) -> rules.DeadlinePolicy:
    s = settings or current_app.config["CASELOAD"]
    return rules.DeadlinePolicy(initial_evaluation_days=s.initial_evaluation_days,
                                initial_evaluation_school_days=s.initial_evaluation_counts == "school",
                                review_504_months=s.review_504_months, upcoming_window_days=s.deadline_window_days,
                                transition_age=s.transition_age, reevaluation_504_months=s.reevaluation_504_months)


# --- loading facts ---------------------------------------------------------------------------------------------

def load_calendars(session: Session, schools: Iterable[str | None]) -> dict[str | None, rules.SchoolCalendar]:
    """Each school's calendar (district-wide entries merged in): two queries whatever the number of schools."""
    wanted = set(schools)
    keys = sorted({s for s in wanted if s} | {""})
    periods = [(p.school or None, rules.ReportingPeriod(p.id, p.name, p.starts_on, p.ends_on, p.report_due_on))
               for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.school.in_(keys)))]
    closures = [(c.school or None, rules.Closure(c.name, c.starts_on, c.ends_on))
                for c in session.scalars(select(SchoolClosure).where(SchoolClosure.school.in_(keys)))]
    return {school: rules.merge_calendar(school, periods, closures) for school in wanted | {None}}


def plan_inputs(session: Session, rows: Sequence[tuple[Plan, Student]]) -> list[rules.PlanInputs]:
    """PlanInputs for (plan, student) rows: two more queries (goal counts, final reports) for any number of plans."""
    plan_ids = [p.id for p, _ in rows]
    if not plan_ids:
        return []
    dialect = session.get_bind().dialect.name
    with_goals = set(session.scalars(select(Goal.plan_id).where(in_ids(dialect, Goal.plan_id, plan_ids),
                                                                Goal.status == "active")
                                     .group_by(Goal.plan_id)))
    finals: dict[int, set[int]] = {}
    for plan_id, period_id in session.execute(select(ProgressReport.plan_id, ProgressReport.period_id).where(
            in_ids(dialect, ProgressReport.plan_id, plan_ids), ProgressReport.status == "final")):
        finals.setdefault(plan_id, set()).add(period_id)
    return [rules.PlanInputs(
        plan_id=p.id, student_id=s.id, student_name=s.display_name, plan_type=p.plan_type, status=p.status,
        school=s.school, effective_on=p.effective_on, end_on=p.end_on, evaluation_consent_on=p.evaluation_consent_on,
        last_evaluation_on=p.last_evaluation_on, last_meeting_on=p.last_meeting_on,
        reevaluation_waived_on=p.reevaluation_waived_on, last_504_review_on=p.last_504_review_on,
        annual_review_due=p.annual_review_due, reevaluation_due=p.reevaluation_due, has_goals=p.id in with_goals,
        reevaluation_waiver_covers=p.reevaluation_waiver_covers, eligibility_determined_on=p.eligibility_determined_on,
        date_of_birth=s.date_of_birth, transition_plan_on=p.transition_plan_on,
        finalized_period_ids=frozenset(finals.get(p.id, ()))) for p, s in rows]


def for_rows(session: Session, rows: Sequence[tuple[Plan, Student]], today: dt.date,
             deadline_policy: rules.DeadlinePolicy | None = None) -> list[rules.Deadline]:
    inputs = plan_inputs(session, rows)
    calendars = load_calendars(session, {s.school for _, s in rows})
    return rules.all_deadlines(inputs, today, deadline_policy or policy(), calendars)


def next_by_plan(session: Session, rows: Sequence[tuple[Plan, Student]], today: dt.date, *,
                 calendars: dict[str | None, rules.SchoolCalendar] | None = None) -> dict[int, rules.Deadline]:
    """The soonest open deadline of each plan (for the caseload's "next deadline" column). ``calendars``: the
    schools' calendars (``load_calendars`` for these rows' schools) when the caller has read them already."""
    if calendars is None:
        calendars = load_calendars(session, {s.school for _, s in rows})
    deadline_policy = policy()
    out: dict[int, rules.Deadline] = {}
    for plan in plan_inputs(session, rows):
        # Per plan, no sort of the whole caseload's deadlines: this runs on every caseload page.
        soonest = _next_open(plan, today, deadline_policy, calendars.get(plan.school) or calendars.get(None))
        if soonest is not None:
            out[plan.plan_id] = soonest
    return out


@functools.lru_cache(maxsize=8192)
def _next_open(plan: rules.PlanInputs, today: dt.date, deadline_policy: rules.DeadlinePolicy,
               school_calendar: rules.SchoolCalendar | None) -> rules.Deadline | None:
    """``next_open(plan_deadlines(...))``, remembered per process: the rules are pure and the key is everything they
    read (the plan's inputs, the day, the policy, the school's calendar), so a changed date, a new day or a new
    closure is a new key and nothing needs invalidating. The caseload home is reloaded all day by its case manager;
    working out every deadline of 200 plans again was about 3 ms of each page's CPU (issue #11)."""
    return rules.next_open(rules.plan_deadlines(plan, today, deadline_policy, school_calendar))


# --- pages -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadlineList:
    overdue: list[rules.Deadline]
    upcoming: list[rules.Deadline]
    later: list[rules.Deadline]
    waived: list[rules.Deadline]
    window_days: int
    students: int


def _split(items: list[rules.Deadline], window: int, students: int) -> DeadlineList:
    by = {status: [d for d in items if d.status is status] for status in rules.DeadlineStatus}
    return DeadlineList(by[rules.DeadlineStatus.OVERDUE], by[rules.DeadlineStatus.UPCOMING],
                        by[rules.DeadlineStatus.LATER], by[rules.DeadlineStatus.WAIVED], window, students)


NO_CASELOAD_GRANT = "named case manager on the plan, but without an active case manager grant"
"""The policy's own words (``domain.access.decide``) for a person the plans name who holds no case manager grant."""


def caseload_deadlines(session: Session, viewer: Viewer, today: dt.date) -> DeadlineList:
    """Deadlines of the plans this person manages (open plans: active and draft).

    The caseload is the plans that name the person *and* an active case manager grant (``domain.access``): without
    the grant (revoked, or another support grant only) the list is empty and every student the plans still name is
    written to the access log as a refused read. With it, each student is decided by the access policy and logged
    with the basis it gave (one INSERT for the page)."""
    rows = [(p, s) for p, s in session.execute(
        select(Plan, Student).join(Student, Student.id == Plan.student_id)
        .where(Plan.case_manager_id == viewer.person_id, Plan.status.in_(OPEN_PLAN_STATUSES),
               Student.purged_at.is_(None))).all()]
    student_ids = sorted({s.id for _, s in rows})
    window = policy().upcoming_window_days
    if not roles.is_case_manager(session, viewer.person_id):
        for student_id in student_ids:
            access.record(session, viewer, student_id, "view", False, NO_CASELOAD_GRANT, "deadlines (caseload)")
        if student_ids:
            log.info("caseload deadlines refused actor=%s students=%s (no case manager grant)", viewer.person_id,
                     len(student_ids))
        return _split([], window, 0)
    decisions = access.check_many(session, viewer, access.casework_facts(session, student_ids, OPEN_PLAN_STATUSES),
                                  Action.VIEW_CASEWORK, "deadlines (caseload)", log_action="view")
    shown = [(p, s) for p, s in rows if decisions[s.id].allowed]
    return _split(for_rows(session, shown, today), window, len({s.id for _, s in shown}))


def admin_schools(session: Session, viewer: Viewer) -> list[str] | None:
    """Schools whose deadlines this person may list: None = every school within their reach (district admins, LMS
    admins, school admin grants without a school); [] = none. Which *students* of a school they reach is
    ``admin_platform``'s business."""
    if viewer.has_role("admin"):
        return None
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.person_id == viewer.person_id,
                                                          RoleGrant.revoked_at.is_(None),
                                                          RoleGrant.role.in_(sorted(roles.ADMIN_GRANTS)))))
    if any(g.role == "district_admin" or not g.school for g in grants):
        return None
    return sorted({g.school for g in grants if g.school})


def admin_platform(session: Session, viewer: Viewer) -> int | None:
    """The platform whose students an administrator's school lists reach: None for a district administrator
    (every platform); otherwise the platform they launched from (issue #14: an LMS or school administrator of one
    registered platform reaches that platform's students only, the access policy's ``platform_ids`` rule)."""
    if roles.is_district_admin(session, viewer.person_id):
        return None
    return viewer.platform_id if viewer.platform_id is not None else -1


def known_schools(session: Session, platform_id: int | None = None) -> list[str]:
    """Schools of the stored students (of one platform's students when ``platform_id`` is given)."""
    stmt = select(Student.school).where(Student.school.is_not(None))
    if platform_id is not None:
        stmt = stmt.where(Student.id.in_(roles.platform_student_ids(platform_id)))
    return [s for s in session.scalars(stmt.group_by(Student.school).order_by(Student.school)) if s]


def school_deadlines(session: Session, viewer: Viewer, school: str, today: dt.date) -> DeadlineList:
    """One school's deadlines for its administrators. A district administrator lists every student of the school;
    an LMS or school administrator the school's students who have an account on their platform (students of other
    platforms are not read at all, so nothing is logged for them). Each student listed is decided by the access
    policy and logged with its basis; a refusal is logged and the student left out."""
    allowed = admin_schools(session, viewer)
    if allowed is not None and school not in allowed:
        abort(403, description="School deadlines are for that school's administrators and district administrators.")
    stmt = (select(Plan, Student).join(Student, Student.id == Plan.student_id)
            .where(Student.school == school, Plan.status.in_(OPEN_PLAN_STATUSES), Student.purged_at.is_(None)))
    platform_id = admin_platform(session, viewer)
    if platform_id is not None:
        stmt = stmt.where(Student.id.in_(roles.platform_student_ids(platform_id)))
    rows = [(p, s) for p, s in session.execute(stmt).all()]
    facts = access.casework_facts(session, {s.id for _, s in rows}, OPEN_PLAN_STATUSES)
    decisions = access.check_many(session, viewer, facts, Action.VIEW_CASEWORK, f"deadlines (school: {school})",
                                  log_action="view")
    shown = [(p, s) for p, s in rows if decisions[s.id].allowed]
    return _split(for_rows(session, shown, today), policy().upcoming_window_days, len({s.id for _, s in shown}))


# --- one student's deadline inputs -----------------------------------------------------------------------------

def _student_facts(session: Session, student_id: int) -> StudentFacts:
    """The access facts with the case managers of the student's draft plans too: the initial evaluation and the
    eligibility determination come before the first IEP is active, and the draft's case manager records them (as
    the plan editor lets them edit the draft)."""
    facts = access.student_facts(session, student_id)
    drafting = frozenset(m for m in session.scalars(
        select(Plan.case_manager_id).where(Plan.student_id == student_id, Plan.status == "draft")) if m)
    return dataclasses.replace(facts, case_manager_ids=facts.case_manager_ids | drafting)


@dataclass(frozen=True)
class StudentDeadlines:
    student: Student
    plans: list[Plan]
    deadlines: list[rules.Deadline]
    editable: frozenset[int]
    """Plan ids this person may change (the plan's own case manager)."""
    completions: dict[int, list[rules.Completion]] = dataclasses.field(default_factory=dict)
    """Per plan, how each deadline was met (newest first): timeliness kept, never overwritten."""


def student_deadlines(session: Session, viewer: Viewer, student_id: int, today: dt.date) -> StudentDeadlines:
    student = session.get(Student, student_id)
    if student is None:
        access.record(session, viewer, None, "view", False, "no such student record",
                      f"student deadlines (student id {student_id})")
        session.commit()
        abort(403, description=NOT_VISIBLE)
    actor, facts = access.actor_facts(session, viewer), _student_facts(session, student_id)
    decision = decide(actor, facts, Action.VIEW_CASEWORK)
    access.record(session, viewer, student_id, "view", decision.allowed, decision.basis, "student deadlines")
    if not decision.allowed:
        session.commit()
        log.info("deadlines refused actor=%s student=%s", viewer.person_id, student_id)
        abort(403, description=NOT_VISIBLE)
    plans = list(session.scalars(select(Plan).where(Plan.student_id == student_id,
                                                    Plan.status.in_(OPEN_PLAN_STATUSES)).order_by(Plan.id)))
    editable = frozenset(p.id for p in plans
                         if decide_plan(actor, facts, Action.EDIT_PLAN, p.case_manager_id).allowed)
    items = for_rows(session, [(p, student) for p in plans], today)
    return StudentDeadlines(student, plans, items, editable, completions_of(session, [p.id for p in plans]))


def completions_of(session: Session, plan_ids: Sequence[int]) -> dict[int, list[rules.Completion]]:
    out: dict[int, list[rules.Completion]] = {}
    if not plan_ids:
        return out
    for row in session.scalars(select(DeadlineCompletion).where(DeadlineCompletion.plan_id.in_(list(plan_ids)))
                               .order_by(DeadlineCompletion.completed_on.desc(), DeadlineCompletion.id.desc())):
        out.setdefault(row.plan_id, []).append(_completion(row))
    return out


def _completion(row: DeadlineCompletion) -> rules.Completion:
    return rules.Completion(rules.DeadlineKind(row.kind), row.due_on, row.completed_on, row.days_late,
                            rules.LateReason(row.late_reason) if row.late_reason else None,
                            row.withdrawn_at is not None)


class InputsInvalid(ValueError):
    def __init__(self, problems: list[rules.InputProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def recompute(plan: Plan, deadline_policy: rules.DeadlinePolicy) -> None:
    """Keep the stored due dates in step with their inputs. An unknown input leaves the stored (imported) date;
    a waiver in force moves the reevaluation to three years after the one it covers (34 CFR 300.303(b)(2))."""
    if plan.plan_type == "IEP":
        if plan.last_meeting_on is not None:
            plan.annual_review_due = rules.annual_review_due(plan.last_meeting_on)
        schedule = rules.reevaluation_schedule(plan.last_evaluation_on, plan.reevaluation_due,
                                               plan.reevaluation_waived_on, plan.reevaluation_waiver_covers)
        if schedule.due_on is not None:
            plan.reevaluation_due = schedule.due_on
    elif plan.plan_type == "504" and plan.last_504_review_on is not None:
        plan.annual_review_due = rules.review_504_due(plan.last_504_review_on, deadline_policy.review_504_months)


def parse_inputs(form: dict[str, str]) -> tuple[dict[str, dt.date | None], bool, list[rules.InputProblem]]:
    values: dict[str, dt.date | None] = {}
    problems: list[rules.InputProblem] = []
    for name in INPUT_FIELDS:
        raw = (form.get(name) or "").strip()
        if not raw:
            values[name] = None
            continue
        try:
            values[name] = dt.date.fromisoformat(raw)
        except ValueError:
            values[name] = None
            problems.append(rules.InputProblem(name, f"“{INPUT_LABELS[name]}” is not a date: use YYYY-MM-DD."))
    return values, bool(form.get("reevaluation_waived")), problems


def update_inputs(session: Session, viewer: Viewer, student_id: int, plan_id: int, form: dict[str, str],
                  today: dt.date) -> Plan:
    """Record a plan's deadline inputs and recompute its due dates. Everything is checked first: on any problem
    nothing is written (``InputsInvalid``); the change is logged with its basis."""
    plan = session.get(Plan, plan_id)
    if plan is None or plan.student_id != student_id:
        access.record(session, viewer, student_id if plan is None else None, "update", False, "no such plan",
                      f"deadline inputs (plan id {plan_id})")
        session.commit()
        abort(403, description=NOT_VISIBLE)
    decision = decide_plan(access.actor_facts(session, viewer), _student_facts(session, student_id),
                           Action.EDIT_PLAN, plan.case_manager_id)
    access.record(session, viewer, student_id, "update", decision.allowed, decision.basis,
                  f"deadline inputs of plan {plan.id}")
    if not decision.allowed:
        session.commit()
        log.info("deadline inputs refused actor=%s plan=%s", viewer.person_id, plan.id)
        abort(403, description="Only this plan's case manager records its meeting and evaluation dates.")
    values, waived, problems = parse_inputs(form)
    # Fields that do not apply to this plan type are not on its form: keep what is stored.
    if plan.plan_type != "IEP":
        for name in IEP_ONLY:
            values[name] = getattr(plan, name)
        waived = values["reevaluation_waived_on"] is not None
    if plan.plan_type != "504":
        values["last_504_review_on"] = plan.last_504_review_on
    apply_dates(session, viewer, plan, values, waived, form.get("late_reason"), today, problems)
    log.info("deadline inputs updated plan=%s actor=%s", plan.id, viewer.person_id)
    return plan


def apply_dates(session: Session, viewer: Viewer, plan: Plan, values: dict[str, dt.date | None], waived: bool,
                late_reason: str | None, today: dt.date, problems: list[rules.InputProblem] | None = None,
                meeting_id: int | None = None) -> list[DeadlineCompletion]:
    """Record a plan's deadline dates (the deadlines page and meetings held both come here): check everything,
    work out which reevaluation a new waiver covers and which deadlines the new dates meet, keep each as a
    completion (days late, reason), then write. Any problem: ``InputsInvalid`` and nothing is written."""
    problems = list(problems or []) + rules.check_inputs(values, waived, today)
    student = session.get(Student, plan.student_id)
    assert student is not None
    deadline_policy = policy()
    old = plan_inputs(session, [(plan, student)])[0]
    waived_on = values.get("reevaluation_waived_on") if waived else None
    covers: dt.date | None = None
    if waived_on is not None and waived_on == plan.reevaluation_waived_on:
        # The same agreement keeps what it covers (on rows from before that was kept: the reevaluation due from the
        # last evaluation, which is what it covered; stored now, so a recomputed due date cannot move it).
        covers = plan.reevaluation_waiver_covers or rules.waiver_covers(
            plan.last_evaluation_on, plan.reevaluation_due, None, None, waived_on)
    elif waived_on is not None:
        covers = rules.waiver_covers(values.get("last_evaluation_on"), plan.reevaluation_due,
                                     plan.reevaluation_waived_on, plan.reevaluation_waiver_covers, waived_on)
        if covers is None:
            problems.append(rules.InputProblem("reevaluation_waived_on", "Which reevaluation this agreement covers "
                                               "is not known: enter the last evaluation date too."))
    changed: dict[str, object] = {k: v for k, v in values.items() if k in INPUT_FIELDS}
    new = dataclasses.replace(old, **changed, reevaluation_waiver_covers=covers)  # type: ignore[arg-type]
    rows = list(session.scalars(select(DeadlineCompletion).where(DeadlineCompletion.plan_id == plan.id,
                                                                 DeadlineCompletion.withdrawn_at.is_(None))))
    recorded = {(rules.DeadlineKind(r.kind), r.completed_on): r.due_on for r in rows}
    calendar = load_calendars(session, {student.school}).get(student.school or None) or rules.SchoolCalendar()
    met = rules.deadlines_met(old, new, deadline_policy, recorded, calendar)
    kept: list[tuple[rules.Met, rules.Completion]] = []
    for item in met:
        done, late_problems = rules.completion(item.kind, item.due_on, item.completed_on, late_reason)
        problems += late_problems
        if done is not None:
            kept.append((item, done))
    if problems:
        raise InputsInvalid(problems)
    for name, value in values.items():
        setattr(plan, name, value)
    plan.reevaluation_waiver_covers = covers
    recompute(plan, deadline_policy)
    written: list[DeadlineCompletion] = []
    now = utcnow()
    for item, done in kept:
        row = next((r for r in rows if item.corrects is not None and r.kind == item.kind.value
                    and r.completed_on == item.corrects), None)
        if row is None:
            row = DeadlineCompletion(plan_id=plan.id, student_id=plan.student_id, kind=item.kind.value,
                                     due_on=done.due_on, recorded_at=now)
            session.add(row)
        row.completed_on, row.days_late = done.completed_on, done.days_late
        row.late_reason = done.late_reason.value if done.late_reason else None
        row.meeting_id = meeting_id if meeting_id is not None else row.meeting_id
        row.recorded_by_id, row.updated_at = viewer.person_id, now
        written.append(row)
        log.info("deadline met plan=%s kind=%s days_late=%s actor=%s", plan.id, item.kind.value, done.days_late,
                 viewer.person_id)
    session.flush()
    return written


def record_meeting_held(session: Session, viewer: Viewer, student_id: int, meeting_type: str, held_on: dt.date,
                        meeting_id: int, late_reason: str | None, today: dt.date) -> Plan | None:
    """One entry, not two: a meeting of a deadline's type recorded as held moves the plan's date (annual review,
    reevaluation, eligibility, 504 review), so the deadline stops showing overdue at once and its timeliness is
    kept. Only for the plan's own case manager (who records the plan's dates); a meeting dated on or before the
    date already recorded changes nothing. Returns the plan changed, or None."""
    target = HELD_MEETINGS.get(meeting_type)
    if target is None:
        return None
    plan_type, name = target
    plan = session.scalars(select(Plan).where(Plan.student_id == student_id, Plan.plan_type == plan_type,
                                              Plan.status.in_(OPEN_PLAN_STATUSES))
                           .order_by(Plan.status, Plan.id.desc()).limit(1)).first()
    if plan is None:
        return None
    decision = decide_plan(access.actor_facts(session, viewer), _student_facts(session, student_id),
                           Action.EDIT_PLAN, plan.case_manager_id)
    if not decision.allowed:
        return None
    current = getattr(plan, name)
    if current is not None and held_on <= current:
        return None
    values: dict[str, dt.date | None] = {field: getattr(plan, field) for field in INPUT_FIELDS}
    values[name] = held_on
    if name == "eligibility_determined_on":
        consent, evaluated = plan.evaluation_consent_on, plan.last_evaluation_on
        # The group determines eligibility on the completed evaluation (34 CFR 300.306): the initial evaluation
        # is complete by then.
        if consent is not None and consent <= held_on and (evaluated is None or evaluated < consent):
            values["last_evaluation_on"] = held_on
    evaluated = values["last_evaluation_on"]
    waived = values["reevaluation_waived_on"] is not None
    if waived and evaluated is not None and values["reevaluation_waived_on"] <= evaluated:  # type: ignore[operator]
        values["reevaluation_waived_on"], waived = None, False   # evaluated after all: the agreement is spent
    before = {field: getattr(plan, field) for field in MEETING_TRACKED}
    apply_dates(session, viewer, plan, values, waived, late_reason, today, meeting_id=meeting_id)
    now = utcnow()
    for field in MEETING_TRACKED:
        if getattr(plan, field) != before[field]:
            session.add(MeetingPlanDate(meeting_id=meeting_id, plan_id=plan.id, field=field, before_on=before[field],
                                        after_on=getattr(plan, field), recorded_by_id=viewer.person_id,
                                        recorded_at=now))
    session.flush()
    log.info("meeting held updated plan=%s field=%s meeting=%s actor=%s", plan.id, name, meeting_id,
             viewer.person_id)
    return plan


def withdraw_meeting(session: Session, viewer: Viewer, meeting_id: int) -> list[Plan]:
    """A held meeting is removed, corrected to another date or type, or no longer held: the plan dates it set go
    back to what they were (``rules.date_without_meeting``: unless something set them again since), the due dates
    are recomputed (so the deadline shows due or overdue again if it is), and the completions it recorded are
    withdrawn, kept in the history. The caller has authorized the change of the meeting (``EDIT_CASEWORK``): the
    plan's dates follow the evidence they came from. Returns the plans changed."""
    mine = list(session.scalars(select(MeetingPlanDate).where(MeetingPlanDate.meeting_id == meeting_id,
                                                              MeetingPlanDate.undone_at.is_(None))
                                .order_by(MeetingPlanDate.id)))
    now = utcnow()
    for completion in session.scalars(select(DeadlineCompletion).where(DeadlineCompletion.meeting_id == meeting_id,
                                                                       DeadlineCompletion.withdrawn_at.is_(None))):
        completion.withdrawn_at, completion.updated_at = now, now
        log.info("deadline completion withdrawn plan=%s kind=%s meeting=%s actor=%s", completion.plan_id,
                 completion.kind, meeting_id, viewer.person_id)
    changed: list[Plan] = []
    for plan_id in dict.fromkeys(row.plan_id for row in mine):
        plan = session.get(Plan, plan_id)
        if plan is None:
            continue
        history = [rules.DateChange(r.meeting_id, r.field, r.before_on, r.after_on, r.undone_at is not None)
                   for r in session.scalars(select(MeetingPlanDate).where(MeetingPlanDate.plan_id == plan_id)
                                            .order_by(MeetingPlanDate.id))]
        moved = False
        for field in dict.fromkeys(r.field for r in mine if r.plan_id == plan_id):
            differs, value = rules.date_without_meeting(getattr(plan, field), meeting_id, field, history)
            if differs:
                setattr(plan, field, value)
                moved = True
        if moved:
            recompute(plan, policy())
            changed.append(plan)
            log.info("meeting withdrawn: plan dates restored plan=%s meeting=%s actor=%s", plan.id, meeting_id,
                     viewer.person_id)
    for row in mine:
        row.undone_at, row.undone_by_id = now, viewer.person_id
    session.flush()
    return changed


# --- the school calendar ---------------------------------------------------------------------------------------

class CalendarInvalid(ValueError):
    pass


@dataclass(frozen=True)
class CalendarEntry:
    id: int
    kind: str
    """period | closure"""
    school: str
    name: str
    starts_on: dt.date
    ends_on: dt.date
    report_due_on: dt.date | None


def _dates(starts: str, ends: str, due: str | None = None) -> tuple[dt.date, dt.date, dt.date | None]:
    try:
        start, end = dt.date.fromisoformat(starts.strip()), dt.date.fromisoformat(ends.strip())
        report = dt.date.fromisoformat(due.strip()) if due is not None else None
    except ValueError:
        raise CalendarInvalid("Enter dates as YYYY-MM-DD (for example 2026-08-24).") from None
    if end < start:
        raise CalendarInvalid("The end date is before the start date.")
    if report is not None and report < end:
        raise CalendarInvalid("Progress reports are due after the period ends: the report date is before the end.")
    if (end - start).days > 400:
        raise CalendarInvalid("That is longer than a school year; check the dates.")
    return start, end, report


def _clean(name: str, school: str | None) -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        raise CalendarInvalid("Give the entry a name of up to 100 characters (for example “Quarter 1”).")
    school_name = " ".join((school or "").split())
    if len(school_name) > 255:
        raise CalendarInvalid("The school name is too long.")
    return name, school_name


CALENDAR_REFUSED = ("District-wide reporting periods and closures are kept by district administrators; LMS and school "
                    "administrators keep the entries of their own schools (choose one).")


def may_edit_calendar(session: Session, viewer: Viewer | None, school: str) -> bool:
    """The CLI (viewer None) and district admins: any entry. A district-wide entry (no school) changes the deadlines
    of every platform's students (closures move school-day deadlines), so it needs the district grant (issue #14);
    an LMS admin (or a school admin grant without a school) keeps the entries of the schools their platform's
    students attend; a school admin their school's."""
    if viewer is None or roles.is_district_admin(session, viewer.person_id):
        return True
    if not school:
        return False
    allowed = admin_schools(session, viewer)
    if allowed is None:
        return roles.is_admin(session, viewer) and school in known_schools(session, admin_platform(session, viewer))
    return school in allowed


def add_period(session: Session, viewer: Viewer | None, name: str, starts: str, ends: str, due: str,
               school: str | None = None) -> tuple[ReportingPeriod, bool]:
    """Add a reporting period, or change the dates of the one with the same school, name and start (idempotent).
    Returns (period, created)."""
    name, school_name = _clean(name, school)
    start, end, report = _dates(starts, ends, due)
    assert report is not None
    if not may_edit_calendar(session, viewer, school_name):
        abort(403, description=CALENDAR_REFUSED)
    period = session.scalars(select(ReportingPeriod).where(ReportingPeriod.school == school_name,
                                                           ReportingPeriod.name == name,
                                                           ReportingPeriod.starts_on == start)).one_or_none()
    created = period is None
    if period is None:
        period = ReportingPeriod(school=school_name, name=name, starts_on=start, ends_on=end, report_due_on=report)
        session.add(period)
    else:
        period.ends_on, period.report_due_on = end, report
    session.flush()
    audit_log.record_admin(session, viewer.person_id if viewer else None, "cli" if viewer is None else "web",
                           "calendar.period", target_type="reporting_period", target_id=period.id,
                           summary=f"{'Added' if created else 'Changed'} reporting period {name} "
                                   f"({school_name or 'district-wide'}), reports due {report.isoformat()}",
                           details={"starts_on": start.isoformat(), "ends_on": end.isoformat(),
                                    "report_due_on": report.isoformat(), "school": school_name})
    return period, created


def add_closure(session: Session, viewer: Viewer | None, name: str, starts: str, ends: str,
                school: str | None = None) -> tuple[SchoolClosure, bool]:
    name, school_name = _clean(name, school)
    start, end, _ = _dates(starts, ends)
    if not may_edit_calendar(session, viewer, school_name):
        abort(403, description=CALENDAR_REFUSED)
    closure = session.scalars(select(SchoolClosure).where(SchoolClosure.school == school_name,
                                                          SchoolClosure.name == name,
                                                          SchoolClosure.starts_on == start)).one_or_none()
    created = closure is None
    if closure is None:
        closure = SchoolClosure(school=school_name, name=name, starts_on=start, ends_on=end)
        session.add(closure)
    else:
        closure.ends_on = end
    session.flush()
    audit_log.record_admin(session, viewer.person_id if viewer else None, "cli" if viewer is None else "web",
                           "calendar.closure", target_type="school_closure", target_id=closure.id,
                           summary=f"{'Added' if created else 'Changed'} closure {name} ({school_name or 'district-wide'})",
                           details={"starts_on": start.isoformat(), "ends_on": end.isoformat(), "school": school_name})
    return closure, created


def calendar_entries(session: Session, school: str | None = None) -> list[CalendarEntry]:
    """Every period and closure (of one school and the district when ``school`` is given), by date."""
    out: list[CalendarEntry] = []
    p_query = select(ReportingPeriod)
    c_query = select(SchoolClosure)
    if school is not None:
        p_query = p_query.where(ReportingPeriod.school.in_(["", school]))
        c_query = c_query.where(SchoolClosure.school.in_(["", school]))
    for p in session.scalars(p_query):
        out.append(CalendarEntry(p.id, "period", p.school, p.name, p.starts_on, p.ends_on, p.report_due_on))
    for c in session.scalars(c_query):
        out.append(CalendarEntry(c.id, "closure", c.school, c.name, c.starts_on, c.ends_on, None))
    return sorted(out, key=lambda e: (e.starts_on, e.kind, e.school, e.name))

"""Plans and accommodations editor: create a plan, work on a draft version, activate it, read the history.

The rules:
- Changes are made in a *draft* version; active and superseded versions are immutable (``PlanImmutable``).
- A draft starts as a copy of the active version's accommodations; one draft per plan at a time.
- Activating a draft supersedes the active version (kept as history) and makes the draft active. Teachers'
  acknowledgements are keyed by version, so every teacher's acknowledgement re-opens (IDEA 34 CFR 300.323(d));
  the course panel shows what changed (``domain/plan_diff.py``).
- A discarded draft is kept with status ``discarded`` (never shown to teachers): nothing written about a
  student is hard-deleted.
- Who may do what is the access policy's (``domain.access.decide_plan``); every page read and every change
  writes an AccessEvent with its basis, refusals included. A member of staff who may see the record but not
  change the plan gets a 403 that says why; anyone else gets the same 404 as for a student who does not exist.
- This module is the only place that commits for these use cases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NoReturn

from flask import abort
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.db import utcnow
from lti_app.domain import catalogue, plan_rules
from lti_app.domain.access import Action, ActorFacts, Decision, StudentFacts, decide, decide_plan
from lti_app.domain.lms_actions import check_rule
from lti_app.domain.plan_diff import Item, PlanDiff, diff
from lti_app.domain.plan_rules import Problem
from lti_app.domain.vocab import AdminAction, GrantRole, PlanStatus, PlanType, VersionStatus
from lti_app.ids import parse_id
from lti_app.models import Accommodation, Person, Plan, PlanVersion, RoleGrant, Student
from lti_app.services.access import policy as access
from lti_app.services.access.audit_log import record_admin
from lti_app.services.casework import lms_rule
from lti_app.services.dispatch import LMS_APPLY_STUDENT, enqueue
from lti_app.services.lms_actions import requests as lms_requests
from lti_app.services.lms_actions import triggers as lms_triggers

log = logging.getLogger(__name__)

PLAN_TYPE_LABELS = {PlanType.IEP.value: "IEP", PlanType.P504.value: "Section 504 plan", PlanType.ELL.value: "ELL plan",
                    PlanType.HEALTH.value: "Health plan", PlanType.BEHAVIOUR.value: "Behavior plan",
                    PlanType.MTSS.value: "MTSS plan"}
RECORDED = "These changes are recorded in the access log."


class PlanInvalid(ValueError):
    """What the person entered cannot be used; nothing was written. ``problems`` name the fields."""

    def __init__(self, problems: list[Problem] | str) -> None:
        self.problems = [Problem("", problems)] if isinstance(problems, str) else problems
        super().__init__("; ".join(p.message for p in self.problems))


class PlanConflict(Exception):
    """The plan changed under the person's feet (another tab, an import): reload and try again. HTTP 409."""


class PlanImmutable(PlanConflict):
    """An active or superseded version cannot be changed: changes go into a new draft."""


# ----------------------------------------------------------------------------------------------- access
def _student_facts(session: Session, student_id: int) -> StudentFacts:
    """The policy's facts, plus case managers named on *draft* plans: the case manager an administrator assigned
    to a plan that is still being written must be able to write it."""
    facts = access.student_facts(session, student_id)
    drafting = frozenset(m for m in session.scalars(
        select(Plan.case_manager_id).where(Plan.student_id == student_id, Plan.status == PlanStatus.DRAFT.value))
        if m)
    return StudentFacts(facts.student_id, facts.case_manager_ids | drafting, facts.enrollments, facts.platform_ids)


def _refusal(action: Action, decision: Decision) -> str:
    if decision.relationship == "teacher":
        return ("Plans are written by the student's case manager. As a teacher you see the active accommodations on "
                "your course panel and the student card.")
    if action is Action.ASSIGN_CASE_MANAGER:
        return "Only a school or district administrator can assign or change a plan's case manager."
    if action is Action.CREATE_PLAN:
        return ("Only the student's case manager or a school or district administrator can start a new plan for this "
                f"student. Your access to the record: {decision.basis}.")
    if decision.relationship == "admin":
        return ("Administrators can read plans and assign their case manager, but only the plan's case manager "
                "changes its accommodations.")
    return ("This plan is not on your caseload, so you cannot change it: only the plan's case manager can. "
            f"Your access to this record: {decision.basis}. If the student should be on your caseload, ask a school "
            "or district administrator to assign you as the plan's case manager.")


def _guard(session: Session, viewer: Viewer, student_id: int, action: Action, context: str,
           plan: Plan | None = None, logged_as: str | None = None) -> Decision:
    """Decide, write the AccessEvent (``logged_as`` names what an allowed *read* is logged as), refuse."""
    if session.get(Student, student_id) is None:
        access.record(session, viewer, None, action.value, False, "no such student record",
                      f"{context} (student id {student_id})")
        _refuse(session, viewer, student_id, action, 404, access.NOT_VISIBLE)
    actor: ActorFacts = access.actor_facts(session, viewer)
    facts = _student_facts(session, student_id)
    if action is Action.EDIT_PLAN:
        decision = decide_plan(actor, facts, action, plan.case_manager_id if plan is not None else None)
    else:
        decision = decide(actor, facts, action)
    if action is Action.VIEW_RECORD and decision.allowed and decision.relationship == "teacher":
        decision = Decision(False, f"{decision.basis}; the plans workspace is for case managers, support staff and "
                                   "administrators", "teacher", decision.note_tiers)
    access.record(session, viewer, student_id, logged_as if decision.allowed and logged_as else action.value,
                  decision.allowed, decision.basis, context)
    if not decision.allowed:
        if decision.relationship == "none":
            _refuse(session, viewer, student_id, action, 404, access.NOT_VISIBLE)
        _refuse(session, viewer, student_id, action, 403, _refusal(action, decision))
    return decision


def _refuse(session: Session, viewer: Viewer, student_id: int, action: Action, status: int, message: str) -> NoReturn:
    session.commit()  # the access log keeps the refusal
    log.info("plan access refused actor=%s student=%s action=%s status=%s", viewer.person_id, student_id,
             action.value, status)
    abort(status, description=message)


def _find(session: Session, student_id: int, plan_id: int, lock: bool = False) -> Plan | None:
    """The plan, if it is this student's. Looked up before the access check (which needs its case manager) but
    only reported missing after it, so a refused viewer learns nothing about plan ids."""
    plan = session.get(Plan, plan_id, with_for_update=lock) if lock else session.get(Plan, plan_id)
    return plan if plan is not None and plan.student_id == student_id else None


def _plan(session: Session, viewer: Viewer, student_id: int, plan_id: int, action: Action, context: str,
          lock: bool = False) -> Plan:
    """Find the plan, check access (logged), then 404 if the plan is not this student's."""
    plan = _find(session, student_id, plan_id, lock)
    _guard(session, viewer, student_id, action, f"{context}: plan {plan_id}", plan=plan)
    if plan is None:
        session.commit()
        abort(404, description="There is no such plan for this student.")
    return plan


def access_decision(session: Session, viewer: Viewer, student_id: int) -> Decision:
    """The viewer's relationship to the record, for the page's "why you may see this" line (not logged)."""
    return decide(access.actor_facts(session, viewer), _student_facts(session, student_id), Action.VIEW_RECORD)


def capabilities(session: Session, viewer: Viewer, student_id: int, plans: list[Plan]) -> tuple[bool, bool, set[int]]:
    """What the page may offer (pure decisions, not logged): create a plan, assign case managers, edit which plans."""
    actor = access.actor_facts(session, viewer)
    facts = _student_facts(session, student_id)
    can_create = decide(actor, facts, Action.CREATE_PLAN).allowed
    can_assign = decide(actor, facts, Action.ASSIGN_CASE_MANAGER).allowed
    editable = {p.id for p in plans if decide_plan(actor, facts, Action.EDIT_PLAN, p.case_manager_id).allowed}
    return can_create, can_assign, editable


# ----------------------------------------------------------------------------------------------- reading
def active_version(plan: Plan) -> PlanVersion | None:
    return next((v for v in plan.versions if v.status == VersionStatus.ACTIVE.value), None)


def draft_version(plan: Plan) -> PlanVersion | None:
    return next((v for v in plan.versions if v.status == VersionStatus.DRAFT.value), None)


def predecessor(plan: Plan, version: PlanVersion) -> PlanVersion | None:
    """What a version is compared with: for a draft, the version in force; otherwise the latest earlier version
    that was in force (discarded drafts never were)."""
    if version.status == VersionStatus.DRAFT.value:
        return active_version(plan)
    earlier = [v for v in plan.versions if v.version_no < version.version_no
               and v.status in (VersionStatus.ACTIVE.value, VersionStatus.SUPERSEDED.value)]
    return max(earlier, key=lambda v: v.version_no, default=None)


def version_diff(before: PlanVersion | None, after: PlanVersion) -> PlanDiff:
    return diff([Item.of(a) for a in before.accommodations] if before else [],
                [Item.of(a) for a in after.accommodations])


@dataclass
class PlanCard:
    plan: Plan
    active: PlanVersion | None
    draft: PlanVersion | None
    case_manager: str
    editable: bool
    draft_changes: PlanDiff | None = None


@dataclass
class PlanHome:
    student: Student
    decision: Decision
    cards: list[PlanCard]
    can_create: bool
    can_assign: bool
    case_managers: list[tuple[int, str]] = field(default_factory=list)


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())  # type: ignore[arg-type]


def case_manager_choices(session: Session) -> list[tuple[int, str]]:
    """Staff who hold an active case-manager grant, for an administrator assigning one."""
    rows = session.execute(
        select(Person.id, Person.name).join(RoleGrant, RoleGrant.person_id == Person.id)
        .where(RoleGrant.role == GrantRole.CASE_MANAGER.value, RoleGrant.revoked_at.is_(None),
               Person.kind == "staff").distinct().order_by(Person.name)).all()
    return [(pid, name or f"Staff #{pid}") for pid, name in rows]


def plan_home(session: Session, viewer: Viewer, student_id: int) -> PlanHome:
    decision = _guard(session, viewer, student_id, Action.VIEW_RECORD, "plans page")
    student = session.get(Student, student_id)
    assert student is not None
    plans = sorted(student.plans, key=lambda p: (p.status == PlanStatus.ENDED.value, p.plan_type, -p.id))
    can_create, can_assign, editable = capabilities(session, viewer, student_id, plans)
    names = _names(session, {p.case_manager_id for p in plans if p.case_manager_id})
    cards = []
    for p in plans:
        active, draft = active_version(p), draft_version(p)
        cards.append(PlanCard(p, active, draft, names.get(p.case_manager_id or -1, "no case manager assigned"),
                              p.id in editable, version_diff(active, draft) if draft else None))
    home = PlanHome(student, decision, cards, can_create, can_assign,
                    case_manager_choices(session) if can_assign else [])
    session.commit()
    return home


@dataclass
class NewPlanPage:
    student: Student
    decision: Decision
    case_managers: list[tuple[int, str]]
    """Filled when an administrator creates the plan and must name its case manager."""
    current_types: set[str]


def new_plan_page(session: Session, viewer: Viewer, student_id: int) -> NewPlanPage:
    decision = _guard(session, viewer, student_id, Action.CREATE_PLAN, "new plan form", logged_as="view")
    student = session.get(Student, student_id)
    assert student is not None
    page = NewPlanPage(student, decision,
                       case_manager_choices(session) if decision.relationship == "admin" else [],
                       {p.plan_type for p in student.plans if p.status != PlanStatus.ENDED.value})
    session.commit()
    return page


@dataclass
class VersionView:
    student: Student
    plan: Plan
    version: PlanVersion
    previous: PlanVersion | None
    changes: PlanDiff
    editable: bool
    names: dict[int, str]
    decision: Decision


def view_version(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int | None,
                 context: str = "plan version") -> VersionView:
    """A version (the draft when ``version_id`` is None) with what changed against its predecessor."""
    plan = _plan(session, viewer, student_id, plan_id, Action.VIEW_RECORD, context)
    decision = access_decision(session, viewer, student_id)
    version = draft_version(plan) if version_id is None else session.get(PlanVersion, version_id)
    if version is None or version.plan_id != plan.id:
        session.commit()
        abort(404, description="There is no such version of this plan." if version_id is not None else
              "This plan has no draft. Start a new version from the plan page.")
    previous = predecessor(plan, version)
    _, _, editable = capabilities(session, viewer, student_id, [plan])
    names = _names(session, {i for i in (version.created_by_id, version.activated_by_id, plan.case_manager_id) if i})
    result = VersionView(plan.student, plan, version, previous, version_diff(previous, version), plan.id in editable,
                         names, decision)
    session.commit()
    return result


@dataclass
class HistoryEntry:
    version: PlanVersion
    previous: PlanVersion | None
    changes: PlanDiff


def history(session: Session, viewer: Viewer, student_id: int, plan_id: int
            ) -> tuple[Plan, list[HistoryEntry], dict[int, str], Decision]:
    plan = _plan(session, viewer, student_id, plan_id, Action.VIEW_RECORD, "plan history")
    decision = access_decision(session, viewer, student_id)
    entries = []
    for v in sorted(plan.versions, key=lambda v: v.version_no, reverse=True):
        prev = predecessor(plan, v)
        entries.append(HistoryEntry(v, prev, version_diff(prev, v)))
    names = _names(session, {i for v in plan.versions for i in (v.created_by_id, v.activated_by_id) if i})
    session.commit()
    return plan, entries, names, decision


# ----------------------------------------------------------------------------------------------- changing
def _fail(session: Session, problems: list[Problem] | str) -> NoReturn:
    session.rollback()  # nothing is written, not even the access event of the attempt
    raise PlanInvalid(problems)


def create_plan(session: Session, viewer: Viewer, student_id: int, plan_type: str, effective_on: str, end_on: str,
                annual_review_due: str = "", reevaluation_due: str = "", case_manager_id: str = "") -> Plan:
    """A new plan with an empty draft version 1. A case manager creates plans they manage; an administrator
    names the case manager."""
    decision = _guard(session, viewer, student_id, Action.CREATE_PLAN, "create plan")
    problems: list[Problem] = []
    if plan_type not in PLAN_TYPE_LABELS:
        problems.append(Problem("plan_type", "Choose the type of plan (IEP, 504, ELL, Health, Behavior or MTSS)."))
    dates, date_problems = plan_rules.check_plan_dates(plan_type, effective_on, end_on, annual_review_due,
                                                       reevaluation_due)
    problems += date_problems
    manager_id: int | None = viewer.person_id
    if decision.relationship == "admin":
        choices = dict(case_manager_choices(session))
        manager_id = parse_id(case_manager_id)
        if manager_id not in choices:
            problems.append(Problem("case_manager_id", "Choose the plan's case manager (staff with a case-manager "
                                                       "grant)."))
    if plan_type in PLAN_TYPE_LABELS:
        current = session.scalar(select(Plan).where(Plan.student_id == student_id, Plan.plan_type == plan_type,
                                                    Plan.status != PlanStatus.ENDED.value).limit(1))
        if current is not None:
            problems.append(Problem("plan_type", f"This student already has a current {PLAN_TYPE_LABELS[plan_type]}. "
                                                 "Start a new version of it instead of a second plan."))
    if problems or dates is None:
        _fail(session, problems)
    plan = Plan(student_id=student_id, plan_type=plan_type, status=PlanStatus.DRAFT.value, case_manager_id=manager_id,
                effective_on=dates.effective_on, end_on=dates.end_on, annual_review_due=dates.annual_review_due,
                reevaluation_due=dates.reevaluation_due)
    session.add(plan)
    session.flush()
    session.add(PlanVersion(plan_id=plan.id, version_no=1, status=VersionStatus.DRAFT.value, summary="Initial plan",
                            created_by_id=viewer.person_id))
    session.commit()
    log.info("Plan %s created for student %s by %s", plan.id, student_id, viewer.person_id)
    return plan


def update_details(session: Session, viewer: Viewer, student_id: int, plan_id: int, effective_on: str, end_on: str,
                   annual_review_due: str, reevaluation_due: str) -> Plan:
    plan = _plan(session, viewer, student_id, plan_id, Action.EDIT_PLAN, "plan dates", lock=True)
    if plan.status == PlanStatus.ENDED.value:
        _fail(session, "This plan has ended; its dates are part of the record and cannot be changed.")
    dates, problems = plan_rules.check_plan_dates(plan.plan_type, effective_on, end_on, annual_review_due,
                                                  reevaluation_due, plan.last_meeting_on)
    if problems or dates is None:
        _fail(session, problems)
    plan.effective_on, plan.end_on = dates.effective_on, dates.end_on
    plan.annual_review_due, plan.reevaluation_due = dates.annual_review_due, dates.reevaluation_due
    session.commit()
    log.info("Plan %s dates changed by %s", plan.id, viewer.person_id)
    return plan


def assign_case_manager(session: Session, viewer: Viewer, student_id: int, plan_id: int, person_id: str) -> Plan:
    plan = _plan(session, viewer, student_id, plan_id, Action.ASSIGN_CASE_MANAGER, "assign case manager", lock=True)
    choices = dict(case_manager_choices(session))
    new_id = parse_id(person_id)
    if new_id is None or new_id not in choices:
        _fail(session, [Problem("case_manager_id", "Choose a member of staff with a case-manager grant.")])
    previous = plan.case_manager_id
    plan.case_manager_id = new_id
    record_admin(session, viewer.person_id, "web", AdminAction.PLAN_CASE_MANAGER.value, target_type="plan",
                 target_id=plan.id, summary=f"Case manager of plan {plan.id} changed",
                 details={"student_id": student_id, "from": previous, "to": new_id})
    session.commit()
    return plan


def start_draft(session: Session, viewer: Viewer, student_id: int, plan_id: int) -> PlanVersion:
    """The plan's draft: the existing one, or a new one copying the active version's accommodations."""
    plan = _plan(session, viewer, student_id, plan_id, Action.EDIT_PLAN, "start draft", lock=True)
    if plan.status == PlanStatus.ENDED.value:
        _fail(session, "This plan has ended. Start a new plan instead.")
    existing = draft_version(plan)
    if existing is not None:
        session.commit()
        return existing
    active = active_version(plan)
    number = (session.scalar(select(func.max(PlanVersion.version_no)).where(PlanVersion.plan_id == plan.id)) or 0) + 1
    draft = PlanVersion(plan_id=plan.id, version_no=number, status=VersionStatus.DRAFT.value, summary="",
                        created_by_id=viewer.person_id)
    session.add(draft)
    session.flush()
    for a in (active.accommodations if active else []):
        session.add(Accommodation(plan_version_id=draft.id, category=a.category, text=a.text, applies_to=a.applies_to,
                                  subjects=list(a.subjects or []), time_multiplier=a.time_multiplier,
                                  extra_attempts=a.extra_attempts, catalogue_code=a.catalogue_code,
                                  position=a.position))
    lms_rule.copy(session, active.id if active else None, draft.id)
    session.commit()
    log.info("Plan %s draft version %s started by %s", plan.id, number, viewer.person_id)
    return draft


def _draft_for_change(session: Session, viewer: Viewer, student_id: int, plan_id: int, what: str,
                      version_id: int | None = None) -> tuple[Plan, PlanVersion]:
    plan = _plan(session, viewer, student_id, plan_id, Action.EDIT_PLAN, what, lock=True)
    draft = draft_version(plan)
    if version_id is not None:
        named = session.get(PlanVersion, version_id)
        if named is not None and named.plan_id == plan.id and named.status != VersionStatus.DRAFT.value:
            session.rollback()
            raise PlanImmutable(f"Version {named.version_no} is {named.status} and cannot be changed. Start a new "
                                "version to make changes.")
        if draft is None or draft.id != version_id:
            session.rollback()
            raise PlanConflict("This draft was activated or discarded in the meantime (perhaps in another tab). "
                               "Open the plan again to see where it stands.")
    if draft is None:
        session.rollback()
        raise PlanConflict("This plan has no draft. Start a new version from the plan page.")
    return plan, draft


def _item(session: Session, draft: PlanVersion, item_id: int) -> Accommodation:
    item = session.get(Accommodation, item_id)
    if item is None or item.plan_version_id != draft.id:
        owner = session.get(PlanVersion, item.plan_version_id) if item is not None else None
        session.rollback()
        if owner is not None and owner.plan_id == draft.plan_id and owner.status != VersionStatus.DRAFT.value:
            raise PlanImmutable(f"Version {owner.version_no} is {owner.status} and cannot be changed. Edit the draft "
                                "instead.")
        raise PlanConflict("That accommodation is no longer in this draft. Reload the page.")
    return item


def _renumber(draft: PlanVersion) -> None:
    for i, a in enumerate(sorted(draft.accommodations, key=lambda a: (a.position, a.id))):
        a.position = i


def add_from_catalogue(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int,
                       code: str) -> Accommodation:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, "add accommodation", version_id)
    entry = catalogue.entry(code)
    if entry is None:
        _fail(session, [Problem("code", "Choose an accommodation from the catalogue.")])
    if any((a.catalogue_code or "").upper() == entry.code for a in draft.accommodations):
        _fail(session, [Problem("code", f"“{entry.name}” is already in this version.")])
    _check_against_draft(session, draft, plan_rules.AccommodationFacts(entry.text, entry.applies_to, (),
                                                                       entry.time_multiplier, entry.extra_attempts))
    item = Accommodation(plan_version_id=draft.id, category=entry.category, text=entry.text,
                         applies_to=entry.applies_to, subjects=[], time_multiplier=entry.time_multiplier,
                         extra_attempts=entry.extra_attempts, catalogue_code=entry.code,
                         position=len(draft.accommodations))
    session.add(item)
    session.commit()
    return item


def _facts(item: Accommodation) -> plan_rules.AccommodationFacts:
    return plan_rules.AccommodationFacts(item.text, item.applies_to, tuple(item.subjects or ()),
                                         item.time_multiplier, item.extra_attempts, item.id)


def _contradiction_problems(items: list[plan_rules.AccommodationFacts]) -> list[Problem]:
    """Accommodations that contradict cannot both be in force (one time multiplier per "applies to"...): the
    message names both."""
    return [Problem(plan_rules.SINGLE_VALUED_COLUMN[c.parameter], c.message)
            for c in plan_rules.contradictions(items)]


def _check_against_draft(session: Session, draft: PlanVersion, candidate: plan_rules.AccommodationFacts,
                         replacing: int | None = None) -> None:
    others = [_facts(a) for a in draft.accommodations if a.id != replacing]
    problems = _contradiction_problems(others + [candidate])
    if problems:
        _fail(session, problems)


def _fields(category: str, text: str, applies_to: str, subjects: str, time_multiplier: str, extra_attempts: str
            ) -> plan_rules.AccommodationInput | list[Problem]:
    checked, problems = plan_rules.check_accommodation(category, text, applies_to, subjects, time_multiplier,
                                                       extra_attempts)
    return checked if checked is not None else problems


def add_free_text(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int, category: str,
                  text: str, applies_to: str = "all", subjects: str = "", time_multiplier: str = "",
                  extra_attempts: str = "") -> Accommodation:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, "add accommodation", version_id)
    checked = _fields(category, text, applies_to, subjects, time_multiplier, extra_attempts)
    if isinstance(checked, list):
        _fail(session, checked)
    key = Item(checked.category, checked.text).key
    if any(not a.catalogue_code and Item.of(a).key == key for a in draft.accommodations):
        _fail(session, [Problem("text", "This accommodation is already in this version.")])
    _check_against_draft(session, draft, plan_rules.AccommodationFacts(
        checked.text, checked.applies_to, checked.subjects, checked.time_multiplier, checked.extra_attempts))
    item = Accommodation(plan_version_id=draft.id, category=checked.category, text=checked.text,
                         applies_to=checked.applies_to, subjects=list(checked.subjects),
                         time_multiplier=checked.time_multiplier, extra_attempts=checked.extra_attempts,
                         catalogue_code=None, position=len(draft.accommodations))
    session.add(item)
    session.commit()
    return item


def edit_item(session: Session, viewer: Viewer, student_id: int, plan_id: int, item_id: int, category: str,
              text: str, applies_to: str, subjects: str, time_multiplier: str, extra_attempts: str) -> Accommodation:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, f"edit accommodation {item_id}")
    item = _item(session, draft, item_id)
    checked = _fields(category, text, applies_to, subjects, time_multiplier, extra_attempts)
    if isinstance(checked, list):
        _fail(session, checked)
    _check_against_draft(session, draft, plan_rules.AccommodationFacts(
        checked.text, checked.applies_to, checked.subjects, checked.time_multiplier, checked.extra_attempts,
        item.id), replacing=item.id)
    item.category, item.text, item.applies_to = checked.category, checked.text, checked.applies_to
    item.subjects = list(checked.subjects)
    item.time_multiplier, item.extra_attempts = checked.time_multiplier, checked.extra_attempts
    session.commit()
    return item


def remove_item(session: Session, viewer: Viewer, student_id: int, plan_id: int, item_id: int) -> None:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, f"remove accommodation {item_id}")
    item = _item(session, draft, item_id)
    draft.accommodations.remove(item)  # delete-orphan: a draft line that never took effect
    _renumber(draft)
    session.commit()


def move_item(session: Session, viewer: Viewer, student_id: int, plan_id: int, item_id: int, direction: str) -> None:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, f"reorder accommodation {item_id}")
    item = _item(session, draft, item_id)
    ordered = sorted(draft.accommodations, key=lambda a: (a.position, a.id))
    i = ordered.index(item)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ordered):
        ordered[i], ordered[j] = ordered[j], ordered[i]
    for n, a in enumerate(ordered):
        a.position = n
    session.commit()


def set_summary(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int, summary: str) -> None:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, "version summary", version_id)
    text = summary.strip()
    if len(text) > plan_rules.MAX_SUMMARY:
        _fail(session, [Problem("summary", f"The summary is limited to {plan_rules.MAX_SUMMARY:,} characters.")])
    draft.summary = text
    session.commit()


def discard_draft(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int) -> None:
    plan, draft = _draft_for_change(session, viewer, student_id, plan_id, "discard draft", version_id)
    number = draft.version_no
    draft.status = VersionStatus.DISCARDED.value
    # A discarded draft gives its number back (issue #13: discarding must not consume a version number, or the
    # history would jump from 2 to 4). It is kept, as everything written about a student is, under a number outside
    # the sequence (minus its id: unique per plan, never shown: the history calls it a discarded draft).
    draft.version_no = -draft.id
    session.commit()
    log.info("Plan %s draft version %s discarded by %s", plan.id, number, viewer.person_id)


def activate(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int,
             summary: str | None = None) -> PlanVersion:
    """Put the draft in force: the active version is superseded (history), the draft becomes active, the plan is
    active. Acknowledgements are keyed by version, so every teacher's re-opens."""
    plan, draft = _draft_for_change(session, viewer, student_id, plan_id, f"activate version {version_id}",
                                    version_id)
    if summary is not None:
        draft.summary = summary.strip()[:plan_rules.MAX_SUMMARY]
    problems: list[Problem] = []
    if not draft.accommodations:
        problems.append(Problem("", "Add at least one accommodation before activating this version."))
    if not (draft.summary or "").strip():
        problems.append(Problem("summary", "Say what changed and why in the version summary (teachers see it)."))
    problems += _contradiction_problems([_facts(a) for a in draft.accommodations])
    current = active_version(plan)
    if current is not None and current.version_no > draft.version_no:
        session.rollback()
        raise PlanConflict(f"Version {current.version_no} was put in force after this draft was started (for example "
                           "by an import). Discard this draft and start a new version from the one in force.")
    if current is not None and version_diff(current, draft).empty and not lms_rule.differs(session, current.id,
                                                                                             draft.id):
        problems.append(Problem("", "This draft has the same accommodations as the version in force; there is "
                                    "nothing to activate. Discard it, or change an accommodation first."))
    today = clock.today()
    if plan.end_on is not None and plan.end_on < today:
        problems.append(Problem("end_on", f"This plan's end date ({plan.end_on}) has passed. Change the plan's dates "
                                          "before activating a version."))
    if problems:
        _fail(session, problems)
    now = utcnow()
    if current is not None:
        current.status = VersionStatus.SUPERSEDED.value
        session.flush()
    draft.status = VersionStatus.ACTIVE.value
    draft.activated_at = now
    draft.activated_by_id = viewer.person_id
    plan.status = PlanStatus.ACTIVE.value
    _record_lms_requests(session, student_id)
    session.commit()
    log.info("Plan %s version %s activated by %s", plan.id, draft.version_no, viewer.person_id)
    _apply_in_lms(student_id, draft.id)
    return draft


def _record_lms_requests(session: Session, student_id: int) -> None:
    """The LMS work this activation asks for, stored with the activation itself (``lms_actions.requests``): if the
    queued message is then lost (the broker down, or Redis losing its data), the 5-minute job queues it again."""
    for course_id, person_id in lms_triggers.student_courses(session, student_id):
        lms_requests.record(session, course_id, [person_id], "plan")


def _apply_in_lms(student_id: int, version_id: int) -> None:
    """Activating a version applies its LMS rule (or withdraws the previous one) in every course of the student:
    a background task, so an LMS that is slow or down never holds up or undoes the activation."""
    try:
        enqueue(LMS_APPLY_STUDENT, student_id, "plan", version_id)
    except Exception:  # noqa: BLE001 - the broker is down: the nightly sweep applies it
        log.warning("could not queue the LMS application of plan version %s", version_id, exc_info=True)


def set_lms_rule(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int, time_kind: str,
                 multiplier: str, extra_minutes: str, extra_attempts: str, reduce_choices: bool,
                 window_guard: bool) -> None:
    """Mark the draft's accommodation as applied in the LMS with its structured rule (``domain.lms_actions``)."""
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, "LMS rule", version_id)
    rule, problems = check_rule(time_kind, multiplier, extra_minutes, extra_attempts, reduce_choices, window_guard)
    if rule is None:
        _fail(session, [Problem(p.field, p.message) for p in problems])
    lms_rule.save(session, draft.id, rule)
    session.commit()


def remove_lms_rule(session: Session, viewer: Viewer, student_id: int, plan_id: int, version_id: int) -> None:
    _, draft = _draft_for_change(session, viewer, student_id, plan_id, "remove LMS rule", version_id)
    lms_rule.save(session, draft.id, None)
    session.commit()


def catalogue_codes_in(version: PlanVersion) -> set[str]:
    return {(a.catalogue_code or "").upper() for a in version.accommodations if a.catalogue_code}


def multiplier_text(value: Decimal | None) -> str:
    return "" if value is None else f"{Decimal(value).normalize()}"

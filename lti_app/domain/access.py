"""The access policy: one pure function decides whether a person may do something with a student's record,
and gives the basis (FERPA 34 CFR 99.31(a)(1) "legitimate educational interest", computed, not configured).

- Students and observers (parents, ``#Mentor``) never see case data, whatever else is true.
- A teacher or TA has access exactly while an ACTIVE enrollment links them to the student: both active in
  the same course, in the same section unless one enrollment is course-wide (the LMS did not say the section).
  Ended, inactive or deleted enrollments give nothing; another course or platform gives nothing.
- The student's case manager (``Plan.case_manager_id``) has the whole record ("caseload") while they hold an
  active case manager grant: the plan names the person, the grant gives the authority, so revoking the grant ends
  the caseload access at once even before the plans are reassigned.
- Support staff (case managers of other students, counselors, related-service providers) see records as
  the school's support team; they may not edit plans that are not on their caseload.
- Administrators see records with basis "administrator": a district-administrator grant reaches every student
  of the installation; an LMS administrator (institution/system Administrator launch role) and a school
  administrator grant reach only students who have a record on the platform they launched from (a person of that
  platform linked to the student). An administrator of one district's LMS never reads another platform's
  students.
- Plans: only the plan's own case manager edits it (``decide_plan``); the student's case manager or an
  administrator may open a new plan; only administrators assign or change a plan's case manager.
- Casework (services, contacts, meetings, referrals, crisis entries): the student's case manager changes it;
  counselors, providers and administrators read it (providers log sessions of the services they provide); a
  case manager grant alone does not reach students on another caseload; teachers never see casework.
- Note tiers: ``team`` = the case manager, support staff and current teachers; ``case_team`` = case managers
  and support staff only; ``restricted`` = only people granted ``can_see_restricted``, and only by an
  explicit, logged action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

TEACHING_ROLES = frozenset({"teacher", "ta"})
SUPPORT_GRANTS = frozenset({"case_manager", "counselor", "provider"})
ADMIN_GRANTS = frozenset({"school_admin", "district_admin"})


class Action(StrEnum):
    VIEW_RECORD = "view"
    VIEW_NOTES = "view_notes"
    VIEW_RESTRICTED = "view_restricted"
    CREATE_NOTE = "create"
    ACKNOWLEDGE = "acknowledge"
    ASK_QUESTION = "ask_question"
    EDIT_PLAN = "update"
    EXPORT = "export"
    CREATE_PLAN = "create_plan"
    ASSIGN_CASE_MANAGER = "assign_case_manager"
    VIEW_CASEWORK = "view_casework"
    """The student workspace: services, contacts, meetings, referrals, timeline (not for teachers)."""
    EDIT_CASEWORK = "update_casework"
    """Add or change casework (services, contacts, meetings, referrals, crisis entries): the case manager."""
    LOG_SERVICE = "log_service"
    """Log a service session; support staff only for services they provide (checked by the service)."""


CASEWORK_ACTIONS = frozenset({Action.VIEW_CASEWORK, Action.EDIT_CASEWORK, Action.LOG_SERVICE})


@dataclass(frozen=True)
class EnrollmentFact:
    course_id: int
    section_id: int
    course_wide: bool
    role: str
    active: bool
    course_title: str = ""
    section_name: str = ""


@dataclass(frozen=True)
class ActorFacts:
    person_id: int
    launch_roles: frozenset[str]
    grants: frozenset[str]
    can_see_restricted: bool
    enrollments: tuple[EnrollmentFact, ...]
    platform_id: int | None = None
    """The platform the actor launched from: the reach of an LMS or school administrator."""


@dataclass(frozen=True)
class StudentFacts:
    student_id: int
    case_manager_ids: frozenset[int]
    enrollments: tuple[EnrollmentFact, ...]
    platform_ids: frozenset[int] = frozenset()
    """Platforms with a person linked to this student (by link or SIS id): where the record "lives"."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: str
    relationship: str
    """teacher | case_manager | support | admin | none"""
    note_tiers: frozenset[str] = frozenset()
    """Which note visibility tiers this person may read (restricted only if allowed)."""

    def may_read_tier(self, tier: str) -> bool:
        return tier in self.note_tiers


_TEACHER_ACTIONS = frozenset({Action.VIEW_RECORD, Action.VIEW_NOTES, Action.CREATE_NOTE, Action.ACKNOWLEDGE,
                              Action.ASK_QUESTION})
_SUPPORT_ACTIONS = frozenset({Action.VIEW_RECORD, Action.VIEW_NOTES, Action.CREATE_NOTE, Action.VIEW_RESTRICTED,
                              Action.ASK_QUESTION, Action.VIEW_CASEWORK, Action.LOG_SERVICE})
_CASE_MANAGER_ACTIONS = frozenset(Action) - {Action.ACKNOWLEDGE, Action.ASSIGN_CASE_MANAGER}
_ADMIN_ACTIONS = frozenset({Action.VIEW_RECORD, Action.VIEW_NOTES, Action.VIEW_RESTRICTED, Action.EXPORT,
                            Action.CREATE_NOTE, Action.VIEW_CASEWORK, Action.CREATE_PLAN,
                            Action.ASSIGN_CASE_MANAGER})


def teaching_link(actor: ActorFacts, student: StudentFacts) -> EnrollmentFact | None:
    """The actor's teaching enrollment that links them to the student now, if any."""
    for mine in actor.enrollments:
        if not (mine.active and mine.role in TEACHING_ROLES):
            continue
        for theirs in student.enrollments:
            if not (theirs.active and theirs.role == "student" and theirs.course_id == mine.course_id):
                continue
            if mine.course_wide or theirs.course_wide or mine.section_id == theirs.section_id:
                return theirs if not theirs.course_wide else mine
    return None


def _tiers(base: set[str], restricted: bool) -> frozenset[str]:
    return frozenset(base | ({"restricted"} if restricted else set()))


def decide(actor: ActorFacts, student: StudentFacts, action: Action) -> Decision:
    staff_launch = bool(actor.launch_roles & {"admin", "teacher", "ta", "designer", "staff"})
    if not staff_launch and not actor.grants:
        return Decision(False, "students and observers never see case data", "none")
    restricted_ok = actor.can_see_restricted

    def allow(relationship: str, basis: str, actions: frozenset[Action], tiers: set[str]) -> Decision:
        if action is Action.VIEW_RESTRICTED and not restricted_ok:
            return Decision(False, f"{basis}, but restricted notes need the can-see-restricted grant", relationship,
                            _tiers(tiers, False))
        if action not in actions:
            return Decision(False, f"{basis} does not allow '{action.value}'", relationship, _tiers(tiers, restricted_ok))
        return Decision(True, basis, relationship, _tiers(tiers, restricted_ok))

    local_admin = "admin" in actor.launch_roles or "school_admin" in actor.grants
    on_platform = actor.platform_id is not None and actor.platform_id in student.platform_ids
    is_admin = "district_admin" in actor.grants or (local_admin and on_platform)
    admin_plan_action = action is Action.ASSIGN_CASE_MANAGER or (
        action is Action.CREATE_PLAN and actor.person_id not in student.case_manager_ids)
    if is_admin and admin_plan_action:
        return allow("admin", "administrator", _ADMIN_ACTIONS, {"team", "case_team"})
    named_manager = actor.person_id in student.case_manager_ids
    if named_manager and "case_manager" in actor.grants:
        return allow("case_manager", "caseload (case manager)", _CASE_MANAGER_ACTIONS, {"team", "case_team"})
    link = teaching_link(actor, student)
    if link is not None:
        where = link.course_title + (f" ({link.section_name})" if link.section_name and not link.course_wide else "")
        decision = allow("teacher", f"teacher enrollment in {where}", _TEACHER_ACTIONS, {"team"})
        if decision.allowed or not (actor.grants & (SUPPORT_GRANTS | ADMIN_GRANTS)):
            return Decision(decision.allowed, decision.basis, decision.relationship, frozenset({"team"}))
    support = sorted(actor.grants & SUPPORT_GRANTS)
    # Casework is need-to-know: a case manager grant reaches only the case manager's own caseload; counselors and
    # providers (who serve students across caseloads) and administrators see it, teachers never.
    outside_caseload = action in CASEWORK_ACTIONS and support == ["case_manager"]
    if support and not (outside_caseload and is_admin):
        if outside_caseload:
            return Decision(False, "case manager grant, but this student is not on your caseload", "support",
                            _tiers({"team", "case_team"}, restricted_ok))
        return allow("support", f"{support[0].replace('_', ' ')} grant (school support staff)", _SUPPORT_ACTIONS,
                     {"team", "case_team"})
    if is_admin:
        return allow("admin", "administrator", _ADMIN_ACTIONS, {"team", "case_team"})
    if named_manager:
        return Decision(False, "named case manager on the plan, but without an active case manager grant", "none")
    if local_admin:
        return Decision(False, "administrator of another platform: this student has no record on the platform you "
                               "administer (district-wide access needs a district administrator grant)", "none")
    return Decision(False, "no active enrollment, caseload or grant links this person to the student", "none")


def decide_plan(actor: ActorFacts, student: StudentFacts, action: Action, plan_case_manager_id: int | None
                ) -> Decision:
    """``decide`` narrowed to one plan: editing needs the case manager *of this plan* — the case manager of a
    student's IEP does not thereby edit the 504 another colleague manages."""
    decision = decide(actor, student, action)
    if action is Action.EDIT_PLAN and decision.allowed and actor.person_id != plan_case_manager_id:
        return Decision(False, "case manager of another of this student's plans; only this plan's case manager may "
                               "change it", decision.relationship, decision.note_tiers)
    return decision

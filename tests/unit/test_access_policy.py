"""The access policy as a table: every role x relationship x action."""

from __future__ import annotations

import pytest

from lti_app.domain.access import Action, ActorFacts, EnrollmentFact, StudentFacts, decide

ALG_P1 = EnrollmentFact(course_id=1, section_id=11, course_wide=False, role="student", active=True,
                        course_title="Algebra I", section_name="Period 1")


def enr(role, course=1, section=11, course_wide=False, active=True):
    return EnrollmentFact(course, section, course_wide, role, active, "Algebra I", "Period 1")


def actor(roles=("teacher",), grants=(), restricted=False, enrollments=(), platform_id=1):
    return ActorFacts(7, frozenset(roles), frozenset(grants), restricted, tuple(enrollments), platform_id=platform_id)


STUDENT = StudentFacts(100, frozenset({50}), (ALG_P1,), platform_ids=frozenset({1}))

T_SAME_SECTION = actor(enrollments=[enr("teacher")])
T_COURSE_WIDE = actor(enrollments=[enr("teacher", section=10, course_wide=True)])
TA_SAME = actor(roles=("ta",), enrollments=[enr("ta")])
T_OTHER_SECTION = actor(enrollments=[enr("teacher", section=12)])
T_ENDED = actor(enrollments=[enr("teacher", active=False)])
T_OTHER_COURSE = actor(enrollments=[enr("teacher", course=2, section=21)])
DESIGNER = actor(roles=("designer",), enrollments=[enr("designer")])
STUDENT_ACTOR = actor(roles=("student",), enrollments=[enr("student")])
OBSERVER = actor(roles=("observer",), enrollments=[enr("observer")])
CASE_MANAGER = ActorFacts(50, frozenset({"teacher"}), frozenset({"case_manager"}), False, ())
CM_RESTRICTED = ActorFacts(50, frozenset({"teacher"}), frozenset({"case_manager"}), True, ())
OTHER_CM = actor(grants=("case_manager",))
COUNSELOR = actor(roles=(), grants=("counselor",), restricted=True)
ADMIN = actor(roles=("admin",))
ADMIN_OF_OTHER_PLATFORM = actor(roles=("admin",), platform_id=2)
SCHOOL_ADMIN_OTHER_PLATFORM = actor(roles=("staff",), grants=("school_admin",), platform_id=2)
DISTRICT_ADMIN_OTHER_PLATFORM = actor(roles=("staff",), grants=("district_admin",), platform_id=2)
CM_REVOKED = ActorFacts(50, frozenset({"teacher"}), frozenset(), False, ())
COURSE_ADMIN_ONLY = actor(roles=("staff",))
ADMIN_GRANT = actor(roles=(), grants=("district_admin",), restricted=True)
NOBODY = actor(roles=("teacher",), enrollments=[])

A = Action
TABLE = [
    # actor,            action,              allowed, relationship
    (T_SAME_SECTION, A.VIEW_RECORD, True, "teacher"),
    (T_SAME_SECTION, A.VIEW_NOTES, True, "teacher"),
    (T_SAME_SECTION, A.CREATE_NOTE, True, "teacher"),
    (T_SAME_SECTION, A.ACKNOWLEDGE, True, "teacher"),
    (T_SAME_SECTION, A.ASK_QUESTION, True, "teacher"),
    (T_SAME_SECTION, A.VIEW_RESTRICTED, False, "teacher"),
    (T_SAME_SECTION, A.EDIT_PLAN, False, "teacher"),
    (T_SAME_SECTION, A.EXPORT, False, "teacher"),
    (T_COURSE_WIDE, A.VIEW_RECORD, True, "teacher"),
    (TA_SAME, A.VIEW_RECORD, True, "teacher"),
    (TA_SAME, A.ACKNOWLEDGE, True, "teacher"),
    (T_OTHER_SECTION, A.VIEW_RECORD, False, "none"),
    (T_ENDED, A.VIEW_RECORD, False, "none"),
    (T_ENDED, A.CREATE_NOTE, False, "none"),
    (T_OTHER_COURSE, A.VIEW_RECORD, False, "none"),
    (DESIGNER, A.VIEW_RECORD, False, "none"),
    (STUDENT_ACTOR, A.VIEW_RECORD, False, "none"),
    (STUDENT_ACTOR, A.VIEW_NOTES, False, "none"),
    (OBSERVER, A.VIEW_RECORD, False, "none"),
    (OBSERVER, A.VIEW_NOTES, False, "none"),
    (CASE_MANAGER, A.VIEW_RECORD, True, "case_manager"),
    (CASE_MANAGER, A.EDIT_PLAN, True, "case_manager"),
    (CASE_MANAGER, A.EXPORT, True, "case_manager"),
    (CASE_MANAGER, A.VIEW_RESTRICTED, False, "case_manager"),
    (CM_RESTRICTED, A.VIEW_RESTRICTED, True, "case_manager"),
    (OTHER_CM, A.VIEW_RECORD, True, "support"),
    (OTHER_CM, A.EDIT_PLAN, False, "support"),
    (COUNSELOR, A.VIEW_NOTES, True, "support"),
    (COUNSELOR, A.VIEW_RESTRICTED, True, "support"),
    (COUNSELOR, A.ACKNOWLEDGE, False, "support"),
    (ADMIN, A.VIEW_RECORD, True, "admin"),
    (ADMIN, A.EXPORT, True, "admin"),
    (ADMIN, A.VIEW_RESTRICTED, False, "admin"),
    (ADMIN, A.EDIT_PLAN, False, "admin"),
    (ADMIN_GRANT, A.VIEW_RESTRICTED, True, "admin"),
    (ADMIN_OF_OTHER_PLATFORM, A.VIEW_RECORD, False, "none"),
    (ADMIN_OF_OTHER_PLATFORM, A.VIEW_NOTES, False, "none"),
    (ADMIN_OF_OTHER_PLATFORM, A.EXPORT, False, "none"),
    (ADMIN_OF_OTHER_PLATFORM, A.ASSIGN_CASE_MANAGER, False, "none"),
    (SCHOOL_ADMIN_OTHER_PLATFORM, A.VIEW_RECORD, False, "none"),
    (DISTRICT_ADMIN_OTHER_PLATFORM, A.VIEW_RECORD, True, "admin"),
    (CM_REVOKED, A.VIEW_RECORD, False, "none"),
    (CM_REVOKED, A.VIEW_NOTES, False, "none"),
    (COURSE_ADMIN_ONLY, A.VIEW_RECORD, False, "none"),
    (NOBODY, A.VIEW_RECORD, False, "none"),
]


@pytest.mark.parametrize(("who", "action", "allowed", "relationship"), TABLE)
def test_policy_table(who, action, allowed, relationship):
    decision = decide(who, STUDENT, action)
    assert decision.allowed is allowed, decision.basis
    assert decision.relationship == relationship
    assert decision.basis


def test_teacher_basis_names_course_and_section():
    assert decide(T_SAME_SECTION, STUDENT, A.VIEW_RECORD).basis == "teacher enrollment in Algebra I (Period 1)"


def test_student_ended_enrollment_ends_teacher_access():
    ended = StudentFacts(100, frozenset(), (enr("student", active=False),))
    assert not decide(T_SAME_SECTION, ended, A.VIEW_RECORD).allowed


def test_course_wide_student_enrollment_links_to_section_teacher():
    nrps_student = StudentFacts(100, frozenset(), (enr("student", section=10, course_wide=True),))
    assert decide(T_SAME_SECTION, nrps_student, A.VIEW_RECORD).allowed


def test_note_tiers_by_relationship():
    assert decide(T_SAME_SECTION, STUDENT, A.VIEW_NOTES).note_tiers == {"team"}
    assert decide(CASE_MANAGER, STUDENT, A.VIEW_NOTES).note_tiers == {"team", "case_team"}
    assert decide(CM_RESTRICTED, STUDENT, A.VIEW_NOTES).note_tiers == {"team", "case_team", "restricted"}


def test_student_with_teacher_role_elsewhere_still_gets_nothing_as_student():
    assert not decide(STUDENT_ACTOR, STUDENT, A.VIEW_RECORD).allowed


def test_lms_admin_of_one_platform_does_not_reach_a_student_recorded_only_on_another():
    decision = decide(ADMIN_OF_OTHER_PLATFORM, STUDENT, A.VIEW_RECORD)
    assert "another platform" in decision.basis and "district administrator grant" in decision.basis


def test_student_without_any_lms_record_is_reached_by_district_admins_only():
    sis_only = StudentFacts(101, frozenset(), (), platform_ids=frozenset())
    assert not decide(ADMIN, sis_only, A.VIEW_RECORD).allowed
    assert decide(ADMIN_GRANT, sis_only, A.VIEW_RECORD).allowed


def test_a_revoked_case_manager_grant_ends_caseload_access_with_a_true_basis():
    decision = decide(CM_REVOKED, STUDENT, A.VIEW_RECORD)
    assert not decision.allowed and "without an active case manager grant" in decision.basis
    assert decide(CASE_MANAGER, STUDENT, A.VIEW_RECORD).basis == "caseload (case manager)"

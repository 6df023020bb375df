"""Casework in the access policy: the case manager changes it, counselors/providers/admins read it, a case manager
grant does not reach another caseload, teachers, students and observers never see it."""

from __future__ import annotations

import pytest

from lti_app.domain.access import Action, ActorFacts, EnrollmentFact, StudentFacts, decide

SECTION = EnrollmentFact(1, 11, False, "student", True, "Algebra I", "Period 1")
STUDENT = StudentFacts(100, frozenset({50}), (SECTION,), platform_ids=frozenset({1}))


def actor(pid=7, roles=("teacher",), grants=(), restricted=False, enrollments=()):
    return ActorFacts(pid, frozenset(roles), frozenset(grants), restricted, tuple(enrollments), platform_id=1)


CASE_MANAGER = actor(50, grants=("case_manager",))
OTHER_CM = actor(grants=("case_manager",))
OTHER_CM_ADMIN = actor(grants=("case_manager", "school_admin"))
OTHER_CM_TEACHING = actor(grants=("case_manager",),
                          enrollments=[EnrollmentFact(1, 11, False, "teacher", True, "Algebra I", "Period 1")])
COUNSELOR = actor(roles=(), grants=("counselor",))
PROVIDER = actor(roles=(), grants=("provider",))
CM_AND_PROVIDER = actor(grants=("case_manager", "provider"))
TEACHER = actor(enrollments=[EnrollmentFact(1, 11, False, "teacher", True, "Algebra I", "Period 1")])
ADMIN = actor(roles=("admin",))
STUDENT_ACTOR = actor(roles=("student",))
OBSERVER = actor(roles=("observer",))

A = Action
TABLE = [
    (CASE_MANAGER, A.VIEW_CASEWORK, True), (CASE_MANAGER, A.EDIT_CASEWORK, True), (CASE_MANAGER, A.LOG_SERVICE, True),
    (OTHER_CM, A.VIEW_CASEWORK, False), (OTHER_CM, A.EDIT_CASEWORK, False), (OTHER_CM, A.LOG_SERVICE, False),
    (OTHER_CM, A.VIEW_RECORD, True),  # the student card stays open to the support team
    (OTHER_CM_ADMIN, A.VIEW_CASEWORK, True), (OTHER_CM_ADMIN, A.EDIT_CASEWORK, False),
    (OTHER_CM_TEACHING, A.VIEW_CASEWORK, False),
    (COUNSELOR, A.VIEW_CASEWORK, True), (COUNSELOR, A.EDIT_CASEWORK, False),
    (PROVIDER, A.VIEW_CASEWORK, True), (PROVIDER, A.LOG_SERVICE, True), (PROVIDER, A.EDIT_CASEWORK, False),
    (CM_AND_PROVIDER, A.VIEW_CASEWORK, True),
    (TEACHER, A.VIEW_CASEWORK, False), (TEACHER, A.LOG_SERVICE, False),
    (ADMIN, A.VIEW_CASEWORK, True), (ADMIN, A.EDIT_CASEWORK, False), (ADMIN, A.LOG_SERVICE, False),
    (STUDENT_ACTOR, A.VIEW_CASEWORK, False), (OBSERVER, A.VIEW_CASEWORK, False),
]


@pytest.mark.parametrize(("who", "action", "allowed"), TABLE)
def test_casework_policy_table(who, action, allowed):
    decision = decide(who, STUDENT, action)
    assert decision.allowed is allowed, decision.basis
    assert decision.basis


def test_case_manager_outside_caseload_is_told_why():
    decision = decide(OTHER_CM, STUDENT, A.VIEW_CASEWORK)
    assert decision.relationship == "support" and "not on your caseload" in decision.basis


def test_teacher_refusal_names_the_action():
    decision = decide(TEACHER, STUDENT, A.VIEW_CASEWORK)
    assert decision.relationship == "teacher" and "view_casework" in decision.basis

"""Claim parsing and role mapping, on golden data recorded from a real Moodle 4.5 and on Canvas-style claims."""

from __future__ import annotations

import json

import pytest

from lti_app.lti.context import from_claims
from lti_app.lti.roles import map_role, map_roles
from tests.support.recorded import MOODLE_4_5

FIXTURES = MOODLE_4_5
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.fixture
def moodle_student():
    return json.loads((FIXTURES / "id_token_claims_student.json").read_text())


def test_moodle_golden_claims_parse(moodle_student):
    ctx = from_claims(moodle_student, platform_id=3, lms_family="moodle")
    assert moodle_student["exp"] - moodle_student["iat"] == 60
    assert (ctx.sub, ctx.context_id, ctx.context_title, ctx.deployment_id) == ("4", "2", "LTI Lab 101", "1")
    assert ctx.roles == ("student",)
    assert ctx.nrps_url.endswith("/CourseSection/2/bindings/1/memberships")
    assert ctx.person_sourcedid is None  # Moodle sends an empty person_sourcedid
    assert ctx.placement == "course_navigation"
    assert ctx.canvas_user_id is None and ctx.canvas_section_ids == []


def test_moodle_login_initiation_hint_is_a_json_string():
    data = json.loads((FIXTURES / "oidc_login_initiation.json").read_text())
    assert json.loads(data["lti_message_hint"])["cmid"] == 1 and data["lti_deployment_id"] == "1"


@pytest.mark.parametrize(("uri", "role"), [
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", "teacher"),
    ("Instructor", "teacher"),  # short context role names (NRPS, LTI Core §A.2.3.1)
    ("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant", "ta"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", "student"),
    ("Learner", "student"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor", "observer"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper", "designer"),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator", "admin"),
    ("http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin", "admin"),
    # Institution staff roles make a staff person (issue #14: account-navigation staff can be granted roles).
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty", "staff"),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff", "staff"),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor", "staff"),
    ("http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator", "admin"),
    ("http://purl.imsglobal.org/vocab/lis/v2/system/person#User", None),
    # A course-level Administrator (LTI Core §A.2.3 context role) is course staff, never an LMS administrator.
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator", "staff"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership/Administrator#Support", "staff"),
    ("Administrator", "staff"),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student", None),
    ("urn:lti:role:ims/lis/Learner", None),
])
def test_role_mapping(uri, role):
    mapped = map_role(uri)
    assert (mapped.value if mapped else None) == role


def test_moodle_admin_teacher_gets_both_roles_in_stable_order():
    roles = map_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                       "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"])
    assert roles == ("admin", "teacher")


def test_canvas_custom_fields_and_unsubstituted_variables():
    claims = {"sub": "abc", CLAIM + "roles": [], CLAIM + "context": {"id": "ctx"},
              CLAIM + "custom": {"canvas_user_id": "1234", "canvas_course_id": "$Canvas.course.id",
                                 "canvas_section_ids": "11,12", "canvas_user_sis_id": ""}}
    ctx = from_claims(claims, platform_id=1, lms_family="canvas")
    assert ctx.canvas_user_id == "1234"
    assert ctx.canvas_course_id is None  # Canvas left the variable unsubstituted
    assert ctx.canvas_section_ids == ["11", "12"]
    assert ctx.user_sis_id is None


def test_account_navigation_launch_has_no_context():
    ctx = from_claims({"sub": "x", CLAIM + "roles": []}, platform_id=1)
    assert ctx.context_id is None and ctx.placement == "account_navigation"


def test_moodle_site_admin_launching_from_an_activity_is_admin_and_teacher():
    # What Moodle 4.5's lti_get_ims_role sends a site administrator in an activity (mod/lti/locallib.php).
    roles = map_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                       "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
                       "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"])
    assert roles == ("admin", "teacher")


def test_course_administrator_role_alone_is_staff_not_lms_admin():
    assert map_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator"]) == ("staff",)

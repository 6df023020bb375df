"""Issue #14 item 3 and item 5 through a real LTI 1.3 launch: which launch roles make an LMS administrator, staff
who only launch with institution roles, and the Canvas root account a launch teaches Caseload."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.models import Enrollment, Person, Platform, RoleGrant
from tests.support import admin_world
from tests.support import factories as f
from tests.support.lti_platform import CLAIM, LtiTestPlatform

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.fixture
def app_config():
    return {"cookie_secure": False}


def _launch(client: Any, lms: LtiTestPlatform, roles: list[str], sub: str, **claims: Any) -> Any:
    return lms.launch(client, role="", sub=sub, **{CLAIM + "roles": roles, **claims})


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_staff_launching_only_with_institution_roles_can_be_granted_a_role(app, client, lms, db_session, token_for):
    resp = _launch(client, lms, [LIS + "institution/person#Faculty"], "faculty-1", context_id=None)
    page = " ".join(unescape(resp.get_data(as_text=True)).split())
    assert resp.status_code == 200 and "Ask your district's Caseload administrator" in page
    person = db_session.scalars(select(Person).where(Person.lti_sub == "faculty-1")).one()
    assert person.kind == "staff"
    assert db_session.scalars(select(Enrollment).where(Enrollment.person_id == person.id)).all() == []
    # A district administrator grants them a role before they ever launch from a course.
    plat = db_session.scalars(select(Platform)).one()
    boss = f.person(db_session, plat, "Oriel Banks", kind="staff")
    db_session.add(RoleGrant(person_id=boss.id, role="district_admin"))
    db_session.commit()
    token = token_for(boss, roles=("staff",))
    granted = client.post("/admin/grants", data={"t": token, "csrf_token": admin_world.csrf_for(app, token),
                                                 "person_id": person.id, "role": "counselor"})
    assert granted.status_code == 303, granted.get_data(as_text=True)
    assert db_session.scalars(select(RoleGrant.role).where(RoleGrant.person_id == person.id)).all() == ["counselor"]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_a_course_level_administrator_is_course_staff_and_never_reaches_administration(client, lms, db_session):
    resp = _launch(client, lms, [LIS + "membership#Administrator"], "course-admin-1")
    assert resp.status_code == 200  # the staff page: no administration, no student data
    assert "/admin/" not in resp.headers.get("Location", "")
    person = db_session.scalars(select(Person).where(Person.lti_sub == "course-admin-1")).one()
    assert person.kind == "staff"
    assert db_session.scalars(select(Enrollment).where(Enrollment.person_id == person.id)).all() == []


def test_a_moodle_site_admin_in_an_activity_is_teacher_and_admin(app, client, lms):
    resp = _launch(client, lms, [LIS + "membership#Instructor", LIS + "system/person#Administrator",
                                 LIS + "institution/person#Administrator"], "site-admin-1")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/panels/course?t=")
    panel = client.get(resp.headers["Location"])
    assert ">Administration</a>" in panel.get_data(as_text=True)


@pytest.fixture
def canvas_lms(app: Any, db_session: Any) -> Any:
    platform = LtiTestPlatform().start()
    platform.register(db_session, name="district-canvas", lms="canvas")
    yield platform
    platform.stop()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_the_first_canvas_launch_records_the_root_account_and_later_ones_never_replace_it(client, canvas_lms,
                                                                                          db_session):
    uuid = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
    unsubstituted = _launch(client, canvas_lms, [LIS + "membership#Instructor"], "t-0",
                            **{CLAIM + "custom": {"canvas_root_account_uuid": "$vnd.Canvas.root_account.uuid"}})
    assert unsubstituted.status_code == 303
    db_session.expire_all()
    assert db_session.scalars(select(Platform)).one().canvas_root_account_uuid is None
    for sub, value in (("t-1", uuid), ("t-2", "AnotherRootAccountUuid00000000000000000")):
        resp = _launch(client, canvas_lms, [LIS + "membership#Instructor"], sub,
                       **{CLAIM + "custom": {"canvas_root_account_uuid": value}})
        assert resp.status_code == 303
    db_session.expire_all()
    assert db_session.scalars(select(Platform)).one().canvas_root_account_uuid == uuid

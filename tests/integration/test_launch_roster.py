"""The launch's one-statement roster writes follow the same rules as services.roster (on PostgreSQL through the
data-modifying CTEs, on SQLite through services.roster itself)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from lti_app.models import Course, Enrollment, Person, Platform, RoleGrant, Section
from lti_app.services.launch import roster_writes as launch_roster
from lti_app.services.roster import primitives as roster

T0 = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def plat(db_session):
    p = Platform(name="p", lms="canvas", issuer="https://lms.test", client_id="c", auth_login_url="https://lms.test/a",
                 auth_token_url="https://lms.test/t", keyset_url="https://lms.test/k", settings={})
    db_session.add(p)
    db_session.commit()
    return p


BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


@BOTH
def test_person_is_created_then_updated_only_where_given_and_stays_staff(db_session, plat):
    created = launch_roster.upsert_person(db_session, plat.id, "u1", kind="staff", name="Avery Quinlan",
                                          email="a@example.test")
    assert created.grants == frozenset()
    again = launch_roster.upsert_person(db_session, plat.id, "u1", kind="student", name=None, email="b@example.test")
    assert again.id == created.id
    db_session.add(RoleGrant(person_id=created.id, role="case_manager"))
    db_session.add(RoleGrant(person_id=created.id, role="counselor", revoked_at=T0))
    db_session.commit()
    db_session.expire_all()
    person = db_session.get(Person, created.id)
    assert (person.name, person.email, person.kind) == ("Avery Quinlan", "b@example.test", "staff")
    assert launch_roster.upsert_person(db_session, plat.id, "u1", kind="staff").grants == {"case_manager"}
    assert db_session.scalars(select(Person)).all() == [person]


@BOTH
def test_course_is_created_with_its_course_wide_section_which_follows_the_title(db_session, plat):
    first = launch_roster.upsert_course_ids(db_session, plat.id, "ctx-1", title="Algebra I", label="ALG1")
    db_session.commit()
    section = db_session.get(Section, first.course_wide_section_id)
    assert (section.course_id, section.lms_section_id, section.name) == (first.id, "", "Algebra I")
    second = launch_roster.upsert_course_ids(db_session, plat.id, "ctx-1", title="Algebra I (honours)", label=None)
    db_session.commit()
    db_session.expire_all()
    assert second == first
    course = db_session.get(Course, first.id)
    assert (course.title, course.label) == ("Algebra I (honours)", "ALG1")
    assert db_session.get(Section, first.course_wide_section_id).name == "Algebra I (honours)"
    assert launch_roster.ensure_section_id(db_session, first.id, "77") == launch_roster.ensure_section_id(
        db_session, first.id, "77")
    assert db_session.scalars(select(Section.name).where(Section.lms_section_id == "77")).one() == "Section 77"


@BOTH
def test_enrollment_is_created_refreshed_and_never_overwritten_by_an_older_observation(db_session, plat):
    person = launch_roster.upsert_person(db_session, plat.id, "u1", kind="staff")
    course = launch_roster.upsert_course_ids(db_session, plat.id, "ctx-1", title="Algebra I")

    def apply(state: str, at: dt.datetime) -> None:
        launch_roster.apply_enrollment_ids(db_session, person_id=person.id, course_id=course.id,
                                           section_id=course.course_wide_section_id, role="teacher", state=state,
                                           source="launch", source_time=at)

    apply("active", T0)
    db_session.commit()
    enrollment = db_session.scalars(select(Enrollment)).one()
    assert (enrollment.state, enrollment.source, enrollment.source_time) == ("active", "launch", T0)
    # A webhook made it inactive later; a launch observed before that changes nothing.
    roster.apply_enrollment(db_session, person=db_session.get(Person, person.id), course=db_session.get(Course, course.id),
                            section=db_session.get(Section, course.course_wide_section_id), role="teacher",
                            state="inactive", source="webhook", source_time=T0 + dt.timedelta(minutes=10))
    db_session.commit()
    apply("active", T0 + dt.timedelta(minutes=5))
    db_session.commit()
    db_session.expire_all()
    enrollment = db_session.scalars(select(Enrollment)).one()
    assert (enrollment.state, enrollment.source) == ("inactive", "webhook")
    # A newer launch re-activates it.
    apply("active", T0 + dt.timedelta(minutes=20))
    db_session.commit()
    db_session.expire_all()
    enrollment = db_session.scalars(select(Enrollment)).one()
    assert (enrollment.state, enrollment.source, enrollment.source_time) == ("active", "launch",
                                                                             T0 + dt.timedelta(minutes=20))

"""Roster primitives: newest event wins, stale events change nothing, removals respect newer data."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.services.roster import primitives as roster
from lti_app.services.roster.primitives import Change
from tests.support import factories as f

T0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_delete_before_create_leaves_enrollment_deleted(db_session):
    plat = f.platform(db_session)
    person = roster.upsert_person(db_session, plat.id, "u1", name="Avery Quinlan")
    course = roster.upsert_course(db_session, plat.id, "c1", title="Algebra I")
    sec = roster.course_wide_section(db_session, course)
    later = T0 + dt.timedelta(minutes=5)
    assert roster.apply_enrollment(db_session, person=person, course=course, section=sec, role="student",
                                   state="deleted", source="webhook", source_time=later) is Change.CREATED
    assert roster.apply_enrollment(db_session, person=person, course=course, section=sec, role="student",
                                   state="active", source="webhook", source_time=T0) is Change.STALE
    db_session.commit()
    (enr,) = course_enrollments(db_session, course)
    assert enr.state == "deleted" and enr.source_time == later


def course_enrollments(session, course):
    from sqlalchemy import select

    from lti_app.models import Enrollment

    return list(session.scalars(select(Enrollment).where(Enrollment.course_id == course.id)))


def test_replayed_event_is_unchanged_and_newer_event_updates(db_session):
    plat = f.platform(db_session)
    person = roster.upsert_person(db_session, plat.id, "u1")
    course = roster.upsert_course(db_session, plat.id, "c1", title="Biology")
    sec = roster.ensure_section(db_session, course, "42", name="Period 2")
    kw = {"person": person, "course": course, "section": sec, "role": "student", "source": "webhook"}
    assert roster.apply_enrollment(db_session, state="active", source_time=T0, **kw) is Change.CREATED
    assert roster.apply_enrollment(db_session, state="active", source_time=T0, **kw) is Change.UNCHANGED
    assert roster.apply_enrollment(db_session, state="inactive", source_time=T0 + dt.timedelta(seconds=1),
                                   **kw) is Change.UPDATED


def test_end_enrollments_skips_rows_with_newer_observations(db_session):
    plat = f.platform(db_session)
    course = roster.upsert_course(db_session, plat.id, "c1")
    sec = roster.course_wide_section(db_session, course)
    a = roster.upsert_person(db_session, plat.id, "a")
    b = roster.upsert_person(db_session, plat.id, "b")
    roster.apply_enrollment(db_session, person=a, course=course, section=sec, role="student", state="active",
                            source="nrps", source_time=T0)
    roster.apply_enrollment(db_session, person=b, course=course, section=sec, role="student", state="active",
                            source="webhook", source_time=T0 + dt.timedelta(hours=1))
    ended = roster.end_enrollments(db_session, course=course, person_ids={a.id, b.id}, source="nrps",
                                   source_time=T0 + dt.timedelta(minutes=30))
    assert ended == 1
    states = {e.person_id: e.state for e in course_enrollments(db_session, course)}
    assert states == {a.id: "inactive", b.id: "active"}


def test_upsert_person_updates_only_given_fields_and_keeps_staff(db_session):
    plat = f.platform(db_session)
    p = roster.upsert_person(db_session, plat.id, "t1", name="Rowan Ellery", email="r@example.test", kind="staff")
    p2 = roster.upsert_person(db_session, plat.id, "t1", name=None, lms_user_id="77", kind="student")
    assert p2.id == p.id and p2.name == "Rowan Ellery" and p2.lms_user_id == "77" and p2.kind == "staff"
    assert roster.find_person_by_lms_user_id(db_session, plat.id, "77").id == p.id

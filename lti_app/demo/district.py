"""The demo district for the practice LMS: fictional staff, students, courses and sections, seeded
idempotently (running ``caseload demo`` twice changes nothing). Other areas add their own demo data through
the seeders in ``DEMO_SEEDERS`` (plans and accommodations, casework), each ``seed(session, district)``."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.demo import practice_platform
from lti_app.demo.common import DemoDistrict
from lti_app.domain.vocab import EnrollmentState, PersonKind, RosterSource
from lti_app.models import Person, RoleGrant
from lti_app.services.roster import primitives as roster
from lti_app.settings import Settings

log = logging.getLogger(__name__)

DEMO_SEEDERS = ("lti_app.demo.plans", "lti_app.demo.casework", "lti_app.demo.goals", "lti_app.demo.quizzes",
                "lti_app.demo.alerts")
"""``quizzes`` after ``plans`` (a teacher's own override goes to a plan student); ``alerts`` last: it records the
seeded classes as the alerts job's starting point."""

# Made-up names, combined deterministically; any resemblance to real people is accidental.
GIVEN = ["Avery", "Briar", "Calder", "Dorian", "Emery", "Finley", "Greer", "Hollis", "Indigo", "Jules", "Kestrel",
         "Linden", "Marlo", "Nova", "Oakley", "Perrin", "Quill", "Rowan", "Sable", "Tamsin", "Umber", "Vale",
         "Wren", "Xylo", "Yarrow", "Zephyr", "Arden", "Bexley", "Cove", "Dune"]
FAMILY = ["Quinlan", "Ashgrove", "Brindle", "Copperfield", "Dunmore", "Elderby", "Fernhill", "Galloway",
          "Hartwell", "Ivesdale", "Juniper", "Kettering", "Larkspur", "Merriweather", "Northcott", "Oakhurst",
          "Pembrook", "Quenby", "Rookwood", "Stonebridge", "Thistlewood", "Underhill", "Vantage", "Whitlock"]
COURSES = [("ALG1", "Algebra I", ["Period 1", "Period 3"]), ("BIO", "Biology", ["Period 2", "Period 5"]),
           ("ENG9", "English 9", ["Period 4"]), ("HIST", "World History", ["Period 6", "Period 7"]),
           ("ART", "Studio Art", ["Period 8"])]
TEACHERS = ["Rowan Ellery", "Sable Whitlock", "Hollis Merriweather", "Greer Northcott", "Marlo Fernhill",
            "Calder Oakhurst"]
CASE_MANAGERS = ["Tamsin Larkspur", "Perrin Galloway"]
ADMIN = "Linden Stonebridge"
STUDENT_COUNT = 120
SEED_TIME = dt.datetime(2026, 8, 24, 8, 0, tzinfo=dt.UTC)
# The practice LMS's own user ids (numbers, as Moodle's: its quiz web service speaks Moodle's), kept in
# ``Person.lms_user_id``; the LTI ``sub`` stays the demo's readable id.
TEACHER_USER_IDS, CASE_MANAGER_USER_IDS, ADMIN_USER_ID, STUDENT_USER_IDS = 11, 21, 31, 101


def _staff(session: Session, platform_id: int, sub: str, name: str, lms_user_id: int) -> Person:
    given, _, family = name.partition(" ")
    return roster.upsert_person(session, platform_id, sub, lms_user_id=str(lms_user_id), name=name, given_name=given,
                                family_name=family,
                                email=f"{given.lower()}.{family.lower()}@staff.example.test",
                                kind=PersonKind.STAFF.value, sis_id=f"STAFF-{sub.split('-')[-1].upper()}")


def _grant(session: Session, person_id: int, role: str, can_see_restricted: bool = False) -> None:
    exists = session.scalars(select(RoleGrant).where(RoleGrant.person_id == person_id, RoleGrant.role == role,
                                                     RoleGrant.revoked_at.is_(None))).first()
    if exists is None:
        session.add(RoleGrant(person_id=person_id, role=role, can_see_restricted=can_see_restricted,
                              school="Juniper Ridge High School"))


def seed_roster(session: Session, settings: Settings) -> DemoDistrict:
    platform = practice_platform.ensure_platform(session, settings)
    district = DemoDistrict(platform=platform)
    teachers = [_staff(session, platform.id, f"demo-teacher-{i + 1}", n, TEACHER_USER_IDS + i)
                for i, n in enumerate(TEACHERS)]
    district.teachers = teachers
    district.case_managers = [_staff(session, platform.id, f"demo-cm-{i + 1}", n, CASE_MANAGER_USER_IDS + i)
                              for i, n in enumerate(CASE_MANAGERS)]
    district.admins = [_staff(session, platform.id, "demo-admin-1", ADMIN, ADMIN_USER_ID)]
    session.flush()
    for i, cm in enumerate(district.case_managers):
        _grant(session, cm.id, "case_manager", can_see_restricted=(i == 0))
    _grant(session, district.admins[0].id, "district_admin", can_see_restricted=True)

    rng = random.Random(20260824)  # deterministic: the same district every time  # noqa: S311
    for i in range(STUDENT_COUNT):
        given = GIVEN[i % len(GIVEN)]
        family = FAMILY[(i * 7) % len(FAMILY)]
        sis = f"S{100001 + i}"
        district.students.append(roster.upsert_person(
            session, platform.id, f"demo-student-{i + 1:03d}", lms_user_id=str(STUDENT_USER_IDS + i),
            name=f"{given} {family}", given_name=given,
            family_name=family, email=f"{sis.lower()}@students.example.test", sis_id=sis,
            kind=PersonKind.STUDENT.value))
    for ci, (label, title, section_names) in enumerate(COURSES):
        course = roster.upsert_course(session, platform.id, f"demo-course-{label.lower()}", title=title, label=label,
                                      lms_course_id=str(1000 + ci), sis_id=f"2026-{label}",
                                      nrps_url=practice_platform.urls(settings)["nrps"] + f"/demo-course-{label.lower()}")
        district.courses.append(course)
        sections = [roster.ensure_section(session, course, f"{1000 + ci}{si}", name=f"{title} — {name}")
                    for si, name in enumerate(section_names)]
        district.sections[course.id] = [roster.course_wide_section(session, course), *sections]
        # One teacher per section; the first teacher also co-teaches the second course's first section.
        for si, section in enumerate(sections):
            teacher = teachers[(ci + si * 3) % len(teachers)]
            roster.apply_enrollment(session, person=teacher, course=course, section=section, role="teacher",
                                    state=EnrollmentState.ACTIVE.value, source=RosterSource.DEMO.value,
                                    source_time=SEED_TIME)
        members = rng.sample(district.students, 48)
        for si, student in enumerate(members):
            section = sections[si % len(sections)]
            roster.apply_enrollment(session, person=student, course=course, section=section, role="student",
                                    state=EnrollmentState.ACTIVE.value, source=RosterSource.DEMO.value,
                                    source_time=SEED_TIME)
    session.flush()
    return district


def seed_demo(session: Session, settings: Settings) -> DemoDistrict:
    """Seed everything; the caller commits."""
    district = seed_roster(session, settings)
    for module_name in DEMO_SEEDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            log.info("demo seeder %s is not installed; skipped", module_name)
            continue
        module.seed(session, district)
        session.flush()
    return district

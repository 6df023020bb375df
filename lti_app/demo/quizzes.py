"""Demo quizzes in the practice LMS and its LMS connection, switched off (issue #12). Idempotent.

Every demo course gets two timed quizzes and an untimed one; a teacher has already given one plan student a later
close date on a unit test (Caseload must keep it when it adds the student's time). The practice platform gets a
connection of the Moodle kind to its own web service (``practice_quizzes``), **switched off**: a newcomer, as the
district administrator, previews what switching on would change, switches on, and a case manager reads the
verification report. Running ``caseload demo`` again only follows a moved practice URL.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.demo import practice_quizzes
from lti_app.demo.common import DemoDistrict
from lti_app.models import AppliedAccommodation, Enrollment, LmsConnection, Person, Plan, PlanVersion, StudentLink
from lti_app.models.practice import PracticeQuiz, PracticeQuizOverride
from lti_app.services.lms_actions import connections
from lti_app.settings import Settings

# (name, time limit in minutes (0: untimed), attempts (0: unlimited), closes in this many days (None: open-ended))
QUIZZES = [("Unit 1 check-in", 20, 1, None), ("Unit 2 test", 45, 2, 21), ("Vocabulary practice", 0, 0, None)]


def service_url(settings: Settings) -> str:
    """The practice LMS's web service root, as an administrator would type a Moodle site's address."""
    return settings.practice_url + practice_quizzes.SERVICE_PATH


def _closes(days: int) -> int:
    """A school-day afternoon ``days`` ahead, in district time (Unix seconds)."""
    day = clock.today() + dt.timedelta(days=days)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return int(dt.datetime.combine(day, dt.time(15, 30), clock.district_zone()).timestamp())


def _plan_student_in(session: Session, course_id: int) -> str | None:
    """The LMS user id of the first student of the course whose plan in force has an LMS rule."""
    return session.scalar(
        select(Person.lms_user_id)
        .join(Enrollment, Enrollment.person_id == Person.id)
        .join(StudentLink, StudentLink.person_id == Person.id)
        .join(Plan, Plan.student_id == StudentLink.student_id)
        .join(PlanVersion, PlanVersion.plan_id == Plan.id)
        .join(AppliedAccommodation, AppliedAccommodation.plan_version_id == PlanVersion.id)
        .where(Enrollment.course_id == course_id, Enrollment.role == "student", Enrollment.state == "active",
               Plan.status == "active", PlanVersion.status == "active")
        .order_by(Person.lms_user_id).limit(1))


def seed_quizzes(session: Session, district: DemoDistrict) -> None:
    for index, course in enumerate(district.courses):
        if session.scalar(select(PracticeQuiz.id).where(PracticeQuiz.course_id == course.id).limit(1)) is not None:
            continue
        made = []
        for name, minutes, attempts, closes_in in QUIZZES:
            quiz = PracticeQuiz(course_id=course.id, name=f"{course.label} {name}", timelimit=minutes * 60,
                                attempts=attempts, timeopen=0, timeclose=_closes(closes_in) if closes_in else 0)
            session.add(quiz)
            made.append(quiz)
        session.flush()
        if index == 0:  # a teacher's own override: two more days for one plan student (Caseload keeps it)
            userid = _plan_student_in(session, course.id)
            test = made[1]
            if userid is not None and userid.isdigit():
                session.add(PracticeQuizOverride(quiz_id=test.id, userid=int(userid),
                                                 timeclose=test.timeclose + 2 * 86400))
    session.flush()


def seed_connection(session: Session, district: DemoDistrict, settings: Settings) -> LmsConnection:
    platform = district.platform
    url = service_url(settings)
    conn = session.scalar(select(LmsConnection).where(LmsConnection.platform_id == platform.id))
    if conn is None:
        token = practice_quizzes.issue_token(platform)
        conn = LmsConnection(platform_id=platform.id, kind=connections.MOODLE, api_base_url=url, client_id=None,
                             secret_encrypted=cipher().encrypt(token), scopes=[], enabled=False, health="unknown",
                             health_detail="")
        session.add(conn)
    elif conn.kind == connections.MOODLE and conn.api_base_url != url:
        conn.api_base_url = url  # the practice LMS moved (another port or host): follow it
    session.flush()
    return conn


def seed(session: Session, district: DemoDistrict) -> None:
    seed_quizzes(session, district)
    seed_connection(session, district, current_app.config["CASELOAD"])

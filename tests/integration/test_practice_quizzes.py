"""The practice LMS's quizzes (issue #12's newcomer demo): its Moodle-style web service answered over real HTTP by the
app's own threaded server (as the demo runs), Moodle's semantics (whole-record override save, one override per user,
enrolled users only, token and service checks), the demo district's switched-off connection, and the whole newcomer
path — preview, switch on, the overrides in the practice LMS, a verification report without gaps. Both backends."""

from __future__ import annotations

import math
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from integrations.moodle.webservice import MoodleError, MoodleTokenRefused, MoodleWebService
from lti_app.demo import practice_quizzes
from lti_app.demo.district import seed_demo
from lti_app.models import (
    AppliedAccommodation,
    Course,
    Enrollment,
    LmsActionLedger,
    LmsConnection,
    Person,
    Plan,
    PlanVersion,
    StudentLink,
)
from lti_app.models.practice import PracticeQuiz, PracticeQuizOverride
from lti_app.services.lms_actions import connections
from lti_app.services.lms_actions.reconcile import reconcile_course
from tests.support.casework_world import Client, text_of

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app_config() -> dict[str, Any]:
    port = _free_port()
    return {"base_url": f"http://127.0.0.1:{port}", "practice_lms_url": f"http://127.0.0.1:{port}"}


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app served for real (werkzeug, threaded, as ``caseload serve`` in the demo): Caseload's Moodle client
    calls the practice LMS on this very server over HTTP."""
    from werkzeug.serving import make_server

    base = app.config["CASELOAD"].base_url
    port = int(base.rsplit(":", 1)[1])
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def demo(app, db_session, served) -> Any:
    district = seed_demo(db_session, app.config["CASELOAD"])
    db_session.commit()
    return district


def _ws(db_session) -> MoodleWebService:
    conn = db_session.scalar(select(LmsConnection))
    return connections.moodle_client(conn)




def _student_in(db_session, course: Course, *, with_rule: bool) -> Person:
    """An active student of the course with (or without) a plan whose version in force has an LMS rule."""
    ruled = set(db_session.scalars(
        select(StudentLink.person_id).join(Plan, Plan.student_id == StudentLink.student_id)
        .join(PlanVersion, PlanVersion.plan_id == Plan.id)
        .join(AppliedAccommodation, AppliedAccommodation.plan_version_id == PlanVersion.id)
        .where(Plan.status == "active", PlanVersion.status == "active")))
    for person in db_session.scalars(select(Person).join(Enrollment, Enrollment.person_id == Person.id)
                                     .where(Enrollment.course_id == course.id, Enrollment.role == "student",
                                            Enrollment.state == "active").order_by(Person.id)):
        if (person.id in ruled) == with_rule:
            return person
    raise AssertionError("the demo course has no such student")


@BOTH
def test_the_demo_seeds_quizzes_rules_and_a_switched_off_connection_once(app, db_session, demo):
    quizzes = db_session.scalar(select(func.count()).select_from(PracticeQuiz))
    overrides = db_session.scalar(select(func.count()).select_from(PracticeQuizOverride))
    seed_demo(db_session, app.config["CASELOAD"])
    db_session.commit()

    assert quizzes == 3 * len(demo.courses)
    assert db_session.scalar(select(func.count()).select_from(PracticeQuiz)) == quizzes
    assert db_session.scalar(select(func.count()).select_from(PracticeQuizOverride)) == overrides == 1
    conn = db_session.scalars(select(LmsConnection)).one()
    assert conn.platform_id == demo.platform.id and conn.kind == connections.MOODLE and not conn.enabled
    assert conn.api_base_url == app.config["CASELOAD"].practice_url + "/practice/moodle"
    assert demo.platform.lms == "generic"  # its LTI stays the practice LMS's own (see docs/design-notes.md)
    rules = list(db_session.scalars(select(AppliedAccommodation)))
    assert len(rules) >= 5 and all(r.multiplier in (1.5, 2) for r in rules)
    assert any(r.extra_attempts == 1 for r in rules)
    assert all(p.lms_user_id and p.lms_user_id.isdigit() for p in demo.students)


@BOTH
def test_the_practice_web_service_answers_moodles_functions_over_http(app, db_session, demo):
    ws = _ws(db_session)
    info = ws.site_info()
    assert {f["name"] for f in info["functions"]} == set(practice_quizzes.FUNCTIONS)
    course = demo.courses[1]
    found = ws.quizzes_by_courses([str(course.lms_course_id)])
    assert [(q.name, q.timelimit, q.attempts) for q in found] == [
        (f"{course.label} Unit 1 check-in", 1200, 1), (f"{course.label} Unit 2 test", 2700, 2),
        (f"{course.label} Vocabulary practice", 0, 0)]
    assert found[1].timeclose > 0 and found[0].timeclose == 0
    assert all(q.course_id == str(course.lms_course_id) for q in found)
    unknown = ws.call("mod_quiz_get_quizzes_by_courses", {"courseids": ["999999"]}).body
    assert unknown["quizzes"] == [] and unknown["warnings"][0]["itemid"] == 999999

    student = _student_in(db_session, course, with_rule=False)
    quiz = found[1]
    saved = ws.save_overrides(quiz.id, [{"userid": student.lms_user_id, "timelimit": 3600, "attempts": 2,
                                         "password": "kiwi"}]).body
    [oid] = saved["ids"]
    [override] = ws.get_overrides(quiz.id)
    # a value equal to the quiz's own is not an override (Moodle's clear_unused_values)
    assert override == {"id": oid, "quiz": int(quiz.id), "userid": int(student.lms_user_id), "groupid": None,
                        "timeopen": None, "timeclose": None, "timelimit": 3600, "attempts": None, "password": "kiwi"}
    with pytest.raises(MoodleError) as second:
        ws.save_overrides(quiz.id, [{"userid": student.lms_user_id, "timelimit": 4000}])
    assert second.value.errorcode == "invalidparameter" and "already exists" in str(second.value)
    # a save is the whole record: the password not sent again is erased, as Moodle does
    ws.save_overrides(quiz.id, [{"id": oid, "userid": student.lms_user_id, "timelimit": 4000}])
    assert ws.get_overrides(quiz.id)[0]["password"] is None and ws.get_overrides(quiz.id)[0]["timelimit"] == 4000

    outsider = db_session.scalars(select(Person).where(Person.platform_id == demo.platform.id,
                                                       Person.lms_user_id.is_not(None),
                                                       ~Person.id.in_(select(Enrollment.person_id).where(
                                                           Enrollment.course_id == course.id)))).first()
    for bad, words in ([{"userid": outsider.lms_user_id, "timelimit": 4000}], "not enrolled"), \
                      ([{"userid": student.lms_user_id, "id": oid, "timelimit": 2700}], "at least one"), \
                      ([{"timelimit": 4000}], "exactly one"), \
                      ([{"userid": "abc", "timelimit": 4000}], "integer"):
        with pytest.raises(MoodleError) as refused:
            ws.save_overrides(quiz.id, bad)
        assert refused.value.errorcode == "invalidparameter" and words in str(refused.value), bad
    with pytest.raises(MoodleError) as missing:
        ws.get_overrides("999999")
    assert missing.value.errorcode == "invalidrecord"

    assert ws.call("mod_quiz_delete_overrides", {"data": {"quizid": quiz.id, "ids": [oid]}}).body == {"ids": [oid]}
    assert ws.get_overrides(quiz.id) == []
    # the practice LMS's groups are the course's sections: a group override reaches the section's students
    section = demo.sections[course.id][1]
    expected = set(db_session.scalars(select(Person.lms_user_id).join(Enrollment, Enrollment.person_id == Person.id)
                                      .where(Enrollment.section_id == section.id, Enrollment.role == "student",
                                             Enrollment.state == "active")))
    assert expected and ws.group_members([str(section.id)]) == {str(section.id): expected}
    with pytest.raises(MoodleError) as no_group:
        ws.group_members([str(demo.sections[course.id][0].id)])  # the course-wide "section" is not a group
    assert no_group.value.errorcode == "invalidrecord"
    [gid] = ws.save_overrides(quiz.id, [{"groupid": section.id, "timelimit": 5000}]).body["ids"]
    assert ws.get_overrides(quiz.id) == [{"id": gid, "quiz": int(quiz.id), "userid": None, "groupid": section.id,
                                          "timeopen": None, "timeclose": None, "timelimit": 5000, "attempts": None,
                                          "password": None}]

    with pytest.raises(MoodleTokenRefused):
        MoodleWebService(ws.endpoint.removesuffix("/webservice/rest/server.php"), "not-the-token").site_info()
    with pytest.raises(MoodleError) as outside:
        ws.call("core_user_get_users")
    assert outside.value.errorcode == "accessexception"


@BOTH
def test_a_refused_save_saves_none_of_its_overrides(app, db_session, demo):
    ws = _ws(db_session)
    course = demo.courses[0]
    quiz = ws.quizzes_by_courses([str(course.lms_course_id)])[0]
    student = _student_in(db_session, course, with_rule=False)
    with pytest.raises(MoodleError):
        ws.save_overrides(quiz.id, [{"userid": student.lms_user_id, "timelimit": 3000},
                                    {"userid": student.lms_user_id, "timelimit": 3100}])
    assert ws.get_overrides(quiz.id) == []


@BOTH
def test_the_newcomer_previews_switches_on_and_every_timed_quiz_carries_the_time(app, client, token_for, db_session,
                                                                                demo):
    admin = Client(client, token_for(demo.admins[0], None, roles=("admin",)))
    page = admin.get("/lms/admin")
    assert page.status_code == 200 and "practice" in text_of(page) and "Moodle web services" in text_of(page)
    platform_id = demo.platform.id
    preview = admin.get(f"/lms/admin/platforms/{platform_id}/preview")
    assert preview.status_code == 200 and "nothing was written" in text_of(preview)
    assert "Unit 2 test" in text_of(preview)
    assert db_session.scalar(select(func.count()).select_from(PracticeQuizOverride)) == 1  # the teacher's only
    assert db_session.scalar(select(func.count()).select_from(LmsActionLedger)) == 0

    switched = admin.post(f"/lms/admin/platforms/{platform_id}/switch", {"on": "1"})
    assert switched.status_code == 303 and "notice=on" in switched.location

    # every plan student with a rule, in every course, carries the time on every timed quiz; untimed: nothing
    db_session.expire_all()
    overrides = {(o.quiz_id, o.userid): o for o in db_session.scalars(select(PracticeQuizOverride))}
    quizzes = list(db_session.scalars(select(PracticeQuiz)))
    expected = 0
    for course in demo.courses:
        rows = db_session.execute(
            select(Person.lms_user_id, AppliedAccommodation.multiplier, AppliedAccommodation.extra_attempts)
            .join(Enrollment, Enrollment.person_id == Person.id)
            .join(StudentLink, StudentLink.person_id == Person.id)
            .join(Plan, Plan.student_id == StudentLink.student_id)
            .join(PlanVersion, PlanVersion.plan_id == Plan.id)
            .join(AppliedAccommodation, AppliedAccommodation.plan_version_id == PlanVersion.id)
            .where(Enrollment.course_id == course.id, Enrollment.role == "student", Enrollment.state == "active",
                   PlanVersion.status == "active")).all()
        assert rows, f"no plan student with an LMS rule in {course.title}"
        for quiz in (q for q in quizzes if q.course_id == course.id):
            for userid, multiplier, attempts in rows:
                o = overrides.get((quiz.id, int(userid)))
                if not quiz.timelimit:
                    assert o is None
                    continue
                expected += 1
                assert o is not None and o.timelimit == math.ceil(quiz.timelimit * multiplier), (quiz.name, userid)
                assert o.attempts == (quiz.attempts + 1 if attempts else None)
    assert expected > 10
    kept = [o for o in overrides.values() if o.timeclose]
    assert len(kept) == 1 and kept[0].timelimit  # the teacher's later close date stays beside Caseload's time

    manager = demo.case_managers[0]
    report = Client(client, token_for(manager, None, roles=("staff",))).get("/lms/report")
    text = text_of(report)
    assert report.status_code == 200
    found = re.search(r"(\d+) of (\d+) student courses have gaps", text)
    assert found and found.group(1) == "0" and int(found.group(2)) > 0, text[:500]
    assert "not applied yet" not in text

    # the practice LMS's page shows them as a teacher sees them in the LMS
    practice = client.get("/practice/", base_url=app.config["CASELOAD"].practice_url)
    body = text_of(practice)
    assert practice.status_code == 200 and "User overrides of" in body and "1 h 7 min 30 s" in body

    # a re-check of the unchanged district writes nothing
    for course in demo.courses:
        assert reconcile_course(db_session, course.id, reason="manual").writes == 0


@BOTH
def test_the_practice_quizzes_outlive_a_restart(app, db_session, demo):
    from lti_app import create_app
    from lti_app.crypto import cipher
    from lti_app.demo import practice_platform
    from lti_app.services.uow import UnitOfWork
    from tests.conftest import test_settings

    ws = _ws(db_session)
    course = demo.courses[2]
    quiz = ws.quizzes_by_courses([str(course.lms_course_id)])[0]
    student = _student_in(db_session, course, with_rule=False)
    ws.save_overrides(quiz.id, [{"userid": student.lms_user_id, "timelimit": 1500}])

    settings = app.config["CASELOAD"]
    restarted = create_app(test_settings(settings.database_url, base_url=settings.base_url,
                                         practice_lms_url=settings.practice_url))
    try:
        with restarted.app_context(), UnitOfWork() as uow:
            conn = uow.session.scalar(select(LmsConnection))
            found = practice_quizzes.handle(uow.session, practice_platform.get_platform(uow.session), {
                "wstoken": cipher().decrypt(conn.secret_encrypted), "wsfunction": "mod_quiz_get_overrides",
                "quizid": quiz.id})
    finally:
        restarted.extensions["caseload.engine"].dispose()
    assert [(o["userid"], o["timelimit"]) for o in found["overrides"]] == [(int(student.lms_user_id), 1500)]

"""Issue #10, the leaner launch: a returning teacher's complete launch (login, launch, first page) in at most six SQL
statements, with the registration (platform and deployment rows) cached per process — and every change to a
platform or deployment, made in this process or in another one, still honoured at the next launch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from lti_app.lti.registry_cache import registry_cache
from lti_app.models import Deployment, Platform, UsedNonce
from tests.support.lti_platform import CLAIM, LtiTestPlatform


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"cookie_secure": False}


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.extensions["caseload.engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _elsewhere(app: Any, statement: Any) -> None:
    """Run a change the way another process (the CLI, another web worker) would: on its own connection, outside
    this process's ORM sessions, so nothing here is told about it."""
    with app.extensions["caseload.engine"].begin() as conn:
        conn.execute(statement)


def _nonces(db_session: Any) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(UsedNonce)))


def _complete_launch(client: Any, lms: LtiTestPlatform, sub: str = "teacher-1") -> tuple[Any, Any]:
    resp = lms.launch(client, role="teacher", sub=sub, **RETURN_TO)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = client.get(resp.headers["Location"])
    return resp, page


RETURN_TO = {CLAIM + "launch_presentation": {"document_target": "iframe",
                                              "return_url": "https://district.example.test/courses/7"}}
"""What Canvas and Moodle send with every launch: the course page to return to, whose origin frames Caseload."""


def _page_header_reads(page_sql: list[str]) -> list[str]:
    """What every page's header reads for its viewer (base.html: the links the person's grants allow and the unread
    alerts count), told apart from the panel's own read."""
    return [s for s in page_sql if "FROM alerts" in s or "FROM role_grants" in s]


def test_returning_teachers_complete_launch_costs_six_statements_header_included_and_no_savepoint(app, client, lms):
    _complete_launch(client, lms)  # the first launch creates the roster rows and caches the registration
    with statements(app) as login_sql:
        login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"], role="teacher", sub="teacher-1", **RETURN_TO))
    with statements(app) as launch_sql:
        resp = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    engine = app.extensions["caseload.engine"]
    transactions: list[str] = []
    event.listen(engine, "begin", lambda _c: transactions.append("begin"))
    event.listen(engine, "commit", lambda _c: transactions.append("commit"))
    event.listen(engine, "rollback", lambda _c: transactions.append("rollback"))
    with statements(app) as page_sql:
        page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    # The page's reads, its header's included, run in one transaction ended by one COMMIT (a round trip each).
    assert transactions == ["begin", "commit"], transactions
    # Login: the cached registration, nothing read. Launch: one INSERT … ON CONFLICT each for the nonce (which also
    # re-checks the cached registration), the person, the course and the enrollment; the framing origin of its
    # return_url was vouched for by the first launch, so it is neither read nor written again. First page: the
    # panel's one read (course, teaching sections and students), and the header's one read (grants and unread
    # alerts in one UNION ALL).
    assert login_sql == []
    assert len(launch_sql) == 4, launch_sql
    header_sql = _page_header_reads(page_sql)
    assert len(header_sql) == 1 and "UNION ALL" in header_sql[0].upper(), header_sql
    panel_sql = [s for s in page_sql if s not in header_sql]
    assert len(panel_sql) == 1, panel_sql
    assert len(login_sql + launch_sql + page_sql) <= 6
    assert not any("SAVEPOINT" in s.upper() for s in launch_sql + page_sql)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_platform_disabled_by_another_process_refuses_the_next_launch_although_it_was_cached(app, client, lms,
                                                                                          db_session):
    _complete_launch(client, lms)
    assert len(registry_cache(app)) > 0
    before = _nonces(db_session)
    _elsewhere(app, update(Platform).values(status="disabled"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 403
    assert "not registered with Caseload" in resp.get_data(as_text=True)
    assert _nonces(db_session) == before  # a refused launch writes nothing


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_deployment_disabled_by_another_process_refuses_the_next_launch_although_it_was_cached(app, client, lms,
                                                                                            db_session):
    _complete_launch(client, lms)
    _elsewhere(app, update(Deployment).values(status="disabled"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 403
    assert "is disabled in Caseload" in resp.get_data(as_text=True)
    assert _nonces(db_session) == 1


def test_deployment_approved_by_another_process_is_accepted_at_its_next_launch(app, client, lms, db_session):
    _elsewhere(app, update(Deployment).values(status="pending"))
    assert lms.launch(client, role="teacher").status_code == 403  # pending rows are never cached
    _elsewhere(app, update(Deployment).values(status="active"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 303, resp.get_data(as_text=True)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_token_signed_with_the_old_key_is_refused_once_another_process_changed_the_keyset_url(app, client, lms):
    """The platform moved to a new key pair published at a new URL: the cached row still names the old URL, whose
    keys would verify the token. The nonce insert sees the changed row, and the launch is decided again from it."""
    _complete_launch(client, lms)
    moved = LtiTestPlatform().start()  # the same platform's new JWKS endpoint, with a new key
    try:
        _elsewhere(app, update(Platform).values(keyset_url=moved.jwks_url))
        login = lms.start_login(client)
        old_key_token = lms.sign(lms.claims(login["nonce"], role="teacher"))
        resp = client.post("/lti/launch", data={"id_token": old_key_token, "state": login["state"]})
        assert resp.status_code == 400
        assert "signed with a key the LMS does not publish" in resp.get_data(as_text=True)
        login = lms.start_login(client)
        new_key_token = moved.sign(lms.claims(login["nonce"], role="teacher"))
        resp = client.post("/lti/launch", data={"id_token": new_key_token, "state": login["state"]})
        assert resp.status_code == 303, resp.get_data(as_text=True)
    finally:
        moved.stop()


def test_second_registration_added_by_another_process_can_log_in_although_the_issuer_was_cached(app, client, lms,
                                                                                             db_session):
    _complete_launch(client, lms)
    plat = db_session.scalars(select(Platform)).one()
    with app.extensions["caseload.engine"].begin() as conn:
        conn.execute(Platform.__table__.insert().values(
            name="second", lms=plat.lms, issuer=plat.issuer, client_id="second-client",
            auth_login_url=plat.auth_login_url, auth_token_url=plat.auth_token_url, keyset_url=plat.keyset_url,
            status="active", settings={}))
    resp = client.get("/lti/login", query_string={
        "iss": lms.issuer, "login_hint": "hint", "target_link_uri": lms.tool_launch_url,
        "client_id": "second-client"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert "client_id=second-client" in resp.headers["Location"]


def test_replayed_id_token_is_still_refused_as_a_replay_with_the_registration_cached(app, client, lms, db_session):
    login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"], role="teacher"))
    first = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert first.status_code == 303
    assert len(registry_cache(app)) > 0
    again = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert _nonces(db_session) == 1


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_platform_changed_through_this_process_orm_empties_the_cache_at_commit(app, client, lms, db_session):
    _complete_launch(client, lms)
    cache = registry_cache(app)
    assert len(cache) > 0
    plat = db_session.scalars(select(Platform)).one()
    plat.auth_login_url = lms.issuer + "/auth-moved"
    db_session.flush()
    assert len(cache) > 0  # not before the change is committed: other requests may still read the old row
    db_session.commit()
    assert len(cache) == 0
    login = lms.start_login(client)  # the redirect follows at once
    assert login["client_id"] == lms.client_id


def test_bulk_update_of_deployments_through_the_orm_empties_the_cache_at_commit(app, client, lms, db_session):
    _complete_launch(client, lms)
    cache = registry_cache(app)
    db_session.execute(update(Deployment).values(status="disabled"))
    db_session.rollback()
    assert len(cache) > 0  # rolled back: nothing changed
    db_session.execute(update(Deployment).values(status="disabled"))
    db_session.commit()
    assert len(cache) == 0


def _class_with_plans(s: Any, students: int, course_title: str = "Algebra I") -> tuple[Any, Any]:
    """A teacher of a course's two periods and ``students`` students, half in each period, each with an active IEP
    of two accommodations and a case manager; one of the teacher's acknowledgements."""
    from lti_app.models import Accommodation, Acknowledgement, Plan, PlanVersion, RoleGrant, Student
    from tests.support import factories as f

    plat = f.platform(s)
    course = f.course(s, plat, course_title)
    periods = [f.section(s, course, "101", "Period 1"), f.section(s, course, "102", "Period 2")]
    teacher = f.person(s, plat, "Rowan Ellery", kind="staff")
    manager = f.person(s, plat, "Tamsin Larkspur", kind="staff")
    s.add(RoleGrant(person_id=manager.id, role="case_manager"))
    for period in periods:
        f.enroll(s, teacher, course, "teacher", period)
    for n in range(students):
        person = f.person(s, plat, f"Student{n} Fenwick", sis_id=f"S{course.id}-{n}")
        f.enroll(s, person, course, "student", periods[n % 2])
        student = Student(sis_id=f"S{course.id}-{n}", given_name=f"Student{n}", family_name="Fenwick")
        s.add(student)
        s.flush()
        plan = Plan(student_id=student.id, plan_type="IEP", status="active", case_manager_id=manager.id)
        s.add(plan)
        s.flush()
        version = PlanVersion(plan_id=plan.id, version_no=1, status="active")
        s.add(version)
        s.flush()
        for i, text in enumerate(("Tests: 1.5x time", "Seat near the front")):
            s.add(Accommodation(plan_version_id=version.id, category="timing", text=text, applies_to="all",
                                position=i))
        if n == 0:
            s.add(Acknowledgement(staff_person_id=teacher.id, student_id=student.id, plan_version_id=version.id,
                                  section_id=periods[0].id, acknowledged_at=dt.datetime.now(dt.UTC)))
    s.commit()
    return teacher, course


def _first_page_statements(app: Any, client: Any, token: str) -> tuple[list[str], str]:
    with statements(app) as sql:
        resp = client.get("/panels/course", query_string={"t": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return sql, resp.get_data(as_text=True)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_first_page_reads_do_not_grow_with_the_number_of_students(app, client, db_session, token_for):
    small_teacher, small_course = _class_with_plans(db_session, 2, "Algebra I")
    big_teacher, big_course = _class_with_plans(db_session, 12, "Biology")
    # The first view of a class also links its students' LMS identities to their records (SIS id), and shows them.
    _, first_view = _first_page_statements(app, client, token_for(big_teacher, big_course))
    assert first_view.count("Tests: 1.5x time") >= 12
    _first_page_statements(app, client, token_for(small_teacher, small_course))
    small, small_html = _first_page_statements(app, client, token_for(small_teacher, small_course))
    big, big_html = _first_page_statements(app, client, token_for(big_teacher, big_course))
    assert small_html.count("Tests: 1.5x time") >= 2 and big_html.count("Tests: 1.5x time") >= 12
    assert len(big) == len(small), (small, big)
    assert not any("student_links" in s and "enrollments" not in s for s in big)  # linked: no separate link reads


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_first_page_of_a_course_without_planned_students_is_one_read(app, client, db_session, token_for):
    from tests.support import factories as f

    plat = f.platform(db_session)
    course = f.course(db_session, plat, "Chemistry")
    teacher = f.person(db_session, plat, "Rowan Ellery", kind="staff")
    f.enroll(db_session, teacher, course, "teacher")
    f.enroll(db_session, f.person(db_session, plat, "Ivo Marsh"), course, "student")  # no SIS id, no plan
    db_session.commit()
    sql, html = _first_page_statements(app, client, token_for(teacher, course))
    assert "No student in your sections has an active plan" in html
    panel_reads = [s for s in sql if "enrollments" in s]
    assert len(panel_reads) == 1, sql


def test_first_page_shows_only_students_of_the_teachers_own_sections(app, client, db_session, token_for):
    from tests.support import factories as f

    teacher, course = _class_with_plans(db_session, 4)
    other = f.person(db_session, db_session.get(Platform, course.platform_id), "Sable Whitlock", kind="staff")
    period_2 = f.section(db_session, course, "102", "Period 2")
    f.enroll(db_session, other, course, "teacher", period_2)
    db_session.commit()
    _, html = _first_page_statements(app, client, token_for(other, course))
    assert "Student1 Fenwick" in html and "Student3 Fenwick" in html  # period 2
    assert "Student0 Fenwick" not in html and "Student2 Fenwick" not in html  # period 1


def test_framing_origin_removed_by_an_administrator_is_learned_again_by_the_next_launch(app, client, lms, db_session):
    from lti_app.models import PlatformFrameOrigin
    from lti_app.services.platforms import framing

    _complete_launch(client, lms)
    origins = lambda: set(db_session.scalars(select(PlatformFrameOrigin.origin)))  # noqa: E731
    db_session.expire_all()
    assert origins() == {"https://district.example.test"}
    framing.remove_origin(db_session, db_session.scalars(select(Platform)).one(), "https://district.example.test",
                          actor_id=None, via="cli")
    db_session.commit()
    db_session.expire_all()
    assert origins() == set()
    _complete_launch(client, lms)
    db_session.expire_all()
    assert origins() == {"https://district.example.test"}


def test_memoised_tool_links_keep_their_arguments_script_root_and_each_requests_token(app):
    from flask import g

    from lti_app.auth import Viewer, app_url

    def links(script_root: str = "") -> tuple[str, str, str]:
        with app.test_request_context("/", base_url=f"http://localhost{script_root}/"):
            g.viewer = Viewer(person_id=1, platform_id=1, course_id=1, roles=("teacher",))
            return (app_url("panels.student", student_id=1), app_url("panels.student", student_id=2),
                    app_url("panels.course", category="timing"))

    first, second = links(), links()
    assert first[0].startswith("/panels/student/1?t=") and first[1].startswith("/panels/student/2?t=")
    assert first[2].startswith("/panels/course?category=timing&t=")
    assert first[0].split("?t=")[1] != second[0].split("?t=")[1]  # each request's own viewer token
    assert links("/caseload")[0].startswith("/caseload/panels/student/1?t=")

"""Benchmark: the teacher course panel for a course of 300 students, 60 with plans of 8 accommodations each,
on PostgreSQL. Target (issue #4): p95 server time < 50 ms, and a number of SQL queries that does not grow
with the number of students (printed for 60 and 120 planned students).

Server time is measured in-process around the WSGI call (Flask test client), so no network is involved and the figure
is the page's own (gunicorn's handling and access-log line are in ``bench.launch``, which runs the README's gunicorn
set-up); the app logs at the README's level (INFO).
Usage: python -m bench.panel [--requests 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

from cryptography.fernet import Fernet

from bench._support import StatementCounter, fresh_database, machine, pct

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(session, planned: int, size: int = 300):  # type: ignore[no-untyped-def]
    from lti_app.models import Accommodation, Plan, PlanVersion, RoleGrant, Student
    from tests.support import factories as f

    plat = f.platform(session)
    course = f.course(session, plat, "Algebra I")
    teacher = f.person(session, plat, "Rowan Ellery", kind="staff")
    cm = f.person(session, plat, "Tamsin Larkspur", kind="staff")
    session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    f.enroll(session, teacher, course, "teacher")
    cats = ["presentation", "response", "setting", "timing"]
    for i in range(size):
        p = f.person(session, plat, f"Student{i} Bench", sis_id=f"B{i}")
        f.enroll(session, p, course, "student")
        if i < planned:
            st = Student(sis_id=f"B{i}", given_name=f"Student{i}", family_name="Bench")
            session.add(st)
            session.flush()
            plan = Plan(student_id=st.id, plan_type="IEP" if i % 2 else "504", status="active", case_manager_id=cm.id)
            session.add(plan)
            session.flush()
            v = PlanVersion(plan_id=plan.id, version_no=1, status="active")
            session.add(v)
            session.flush()
            for k in range(8):
                session.add(Accommodation(plan_version_id=v.id, category=cats[k % 4], text=f"Accommodation {k}",
                                          position=k))
    session.commit()
    return teacher, course


def run(planned: int, requests: int) -> tuple[list[float], int]:
    import secrets

    from lti_app import create_app
    from lti_app.auth import COOKIE_MODE, Viewer, bind, binding_cookie_name, issue_token

    with fresh_database(f"panel{planned}") as url:
        app = create_app({"database_url": url, "env": "test", "data_keys": [Fernet.generate_key().decode()],
                          "log_level": "INFO"})  # the README's level: the app's own logging is measured
        with app.app_context():
            s = app.extensions["caseload.sessionmaker"]()
            teacher, course = build(s, planned)
            browser_secret = secrets.token_urlsafe(32)
            with app.test_request_context():
                # As a launch does (issue #14): the page token is bound to this browser, which holds the cookie.
                token = issue_token(Viewer(teacher.id, teacher.platform_id, course.id, ("teacher",),
                                           binding=bind(COOKIE_MODE, browser_secret)))
                cookie = binding_cookie_name()
            s.close()
            from lti_app.runtime import tune_gc

            tune_gc()  # as gunicorn's post_worker_init hook does in production (config/gunicorn.conf.py)
            client = app.test_client()
            client.set_cookie(cookie, browser_secret)
            engine = app.extensions["caseload.engine"]
            counter = StatementCounter(engine)

            for _ in range(10):
                assert client.get("/panels/course", query_string={"t": token}).status_code == 200
            counter.n = 0
            client.get("/panels/course", query_string={"t": token})
            queries = counter.n
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = client.get("/panels/course", query_string={"t": token})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.get_data().count(b'class="card student-row"') == planned
        engine.dispose()
    return times, queries


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    print(f"machine: {machine()}  date: {dt.date.today()}")
    for planned in (60, 120):
        times, queries = run(planned, args.requests)
        print(f"course of 300, {planned} planned x 8 accommodations: p50 {pct(times, 50) * 1000:.1f} ms, "
              f"p95 {pct(times, 95) * 1000:.1f} ms, SQL queries per page: {queries}")


if __name__ == "__main__":
    main()

"""Benchmark: the case manager's caseload home (GET /casework/) in a district of 5,000 students on PostgreSQL.

The district: 5,000 students in 40 courses (6 courses each, 120 teachers), 1,200 of them with an active plan spread
over 20 case managers; the measured case manager has 60 students, each with a plan version, teachers'
acknowledgements, some open questions, one or two services and twelve weeks of sessions (the other students on
plans have services and sessions too, so the aggregate queries run against a realistic table). Target (issue #5):
p95 server time < 100 ms. The SQL statement count per page is printed to show it does not depend on the caseload.

Server time is measured in-process around the WSGI call (Flask test client), so no network is involved; the page
writes its access-log rows (one per student) like any real view.
Usage: python -m bench.caseload [--requests 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from bench._support import StatementCounter, fresh_database, machine, pct
from lti_app import clock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STUDENTS = 5_000
COURSES = 40
TEACHERS = 120
PLANNED = 1_200
MANAGERS = 20
MINE = 60


def build(session: Any) -> Any:  # noqa: PLR0915 - one linear script
    from lti_app.crypto import cipher
    from lti_app.models import (
        Acknowledgement,
        Course,
        Enrollment,
        Person,
        Plan,
        PlanVersion,
        Platform,
        Question,
        RoleGrant,
        Section,
        ServiceRequirement,
        ServiceSession,
        Student,
        StudentLink,
    )

    rng = random.Random(5)
    now = dt.datetime.now(dt.UTC)
    today = clock.today()
    plat = Platform(name="bench", lms="canvas", issuer="https://bench.example.test", client_id="bench",
                    auth_login_url="https://bench.example.test/a", auth_token_url="https://bench.example.test/t",
                    keyset_url="https://bench.example.test/k", status="active", settings={})
    session.add(plat)
    session.flush()

    def bulk(model: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), 5_000):
            session.execute(insert(model), rows[i:i + 5_000])

    pid = iter(range(1, 10**7))
    teachers = [next(pid) for _ in range(TEACHERS)]
    managers = [next(pid) for _ in range(MANAGERS)]
    pupils = [next(pid) for _ in range(STUDENTS)]
    people = [{"id": p, "platform_id": plat.id, "lti_sub": f"t{p}", "name": f"Teacher{p} Bench", "kind": "staff"}
              for p in teachers]
    people += [{"id": p, "platform_id": plat.id, "lti_sub": f"m{p}", "name": f"Manager{p} Bench", "kind": "staff"}
               for p in managers]
    people += [{"id": p, "platform_id": plat.id, "lti_sub": f"s{p}", "name": f"Student{p} Bench", "sis_id": f"B{p}",
                "kind": "student"} for p in pupils]
    bulk(Person, people)
    bulk(RoleGrant, [{"person_id": m, "role": "case_manager", "can_see_restricted": False, "granted_at": now}
                     for m in managers])
    bulk(Course, [{"id": c, "platform_id": plat.id, "lti_context_id": f"c{c}", "title": f"Course {c}"}
                  for c in range(1, COURSES + 1)])
    bulk(Section, [{"id": c, "course_id": c, "lms_section_id": "", "name": f"Course {c}"} for c in range(1, COURSES + 1)])
    enrollments = []
    for c in range(1, COURSES + 1):
        for t in rng.sample(teachers, 3):
            enrollments.append({"person_id": t, "course_id": c, "section_id": c, "role": "teacher"})
    for p in pupils:
        for c in rng.sample(range(1, COURSES + 1), 6):
            enrollments.append({"person_id": p, "course_id": c, "section_id": c, "role": "student"})
    bulk(Enrollment, [{**e, "state": "active", "source": "nrps", "source_time": now} for e in enrollments])
    bulk(Student, [{"id": i + 1, "sis_id": f"B{p}", "given_name": f"Student{p}", "family_name": "Bench",
                    "created_at": now} for i, p in enumerate(pupils)])
    bulk(StudentLink, [{"student_id": i + 1, "person_id": p, "linked_by": "sis_id", "created_at": now}
                       for i, p in enumerate(pupils)])
    me = managers[0]
    planned = list(range(1, PLANNED + 1))
    owner = {sid: (me if sid <= MINE else managers[1 + sid % (MANAGERS - 1)]) for sid in planned}
    bulk(Plan, [{"id": sid, "student_id": sid, "plan_type": "IEP" if sid % 3 else "504", "status": "active",
                 "case_manager_id": owner[sid], "effective_on": today - dt.timedelta(days=100 + sid % 200),
                 "annual_review_due": today + dt.timedelta(days=sid % 365 - 30), "created_at": now} for sid in planned])
    bulk(PlanVersion, [{"id": sid, "plan_id": sid, "version_no": 1, "status": "active", "summary": "",
                        "created_at": now} for sid in planned])
    teachers_of: dict[int, set[int]] = {}
    course_teachers: dict[int, list[int]] = {}
    for e in enrollments:
        if e["role"] == "teacher":
            course_teachers.setdefault(e["course_id"], []).append(e["person_id"])
    for e in enrollments:
        if e["role"] == "student":
            teachers_of.setdefault(e["person_id"], set()).update(course_teachers[e["course_id"]])
    acks = []
    for sid in planned:
        for t in sorted(teachers_of[pupils[sid - 1]])[: 5 + sid % 10]:
            acks.append({"staff_person_id": t, "student_id": sid, "plan_version_id": sid, "section_id": 1,
                         "acknowledged_at": now})
    bulk(Acknowledgement, acks)
    body = cipher().encrypt("Bench question")
    bulk(Question, [{"student_id": sid, "asked_by_id": teachers[sid % TEACHERS], "case_manager_id": owner[sid],
                     "body_encrypted": body, "status": "open" if sid % 2 else "answered", "created_at": now}
                    for sid in planned if sid % 4 == 0])
    kinds = ["speech_language", "specialized_instruction", "occupational_therapy", "counseling"]
    reqs, sessions = [], []
    rid = 0
    monday = today - dt.timedelta(days=today.weekday())
    for sid in planned:
        for k in range(1 + sid % 2):
            rid += 1
            period = "month" if k else "week"
            reqs.append({"id": rid, "student_id": sid, "plan_id": sid, "service_type": kinds[(sid + k) % 4],
                         "minutes": 60 if period == "week" else 240, "period": period, "provider_name": "Bench",
                         "setting": "", "starts_on": today - dt.timedelta(days=120), "created_at": now,
                         "updated_at": now})
            for week in range(1, 13):
                for day in (1, 3):
                    sessions.append({"requirement_id": rid, "student_id": sid, "minutes": 30,
                                     "held_on": monday - dt.timedelta(weeks=week) + dt.timedelta(days=day),
                                     "attendance": "delivered" if rng.random() > 0.1 else "student_absent",
                                     "created_at": now})
    bulk(ServiceRequirement, reqs)
    bulk(ServiceSession, sessions)
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()
    print(f"district: {STUDENTS} students, {len(enrollments)} enrollments, {PLANNED} plans, {len(acks)} "
          f"acknowledgements, {len(reqs)} services, {len(sessions)} sessions; caseload of {MINE}")
    return session.get(Person, me)


def run(requests: int) -> tuple[list[float], int, int]:
    from lti_app import create_app
    from lti_app.auth import Viewer, issue_token

    with fresh_database("caseload") as url:
        app = create_app({"database_url": url, "env": "test", "data_keys": [Fernet.generate_key().decode()],
                          "log_level": "WARNING"})
        with app.app_context():
            s = app.extensions["caseload.sessionmaker"]()
            me = build(s)
            with app.test_request_context():
                token = issue_token(Viewer(me.id, me.platform_id, None, ("teacher",)))
            s.close()
            from lti_app.runtime import tune_gc

            tune_gc()  # as gunicorn's post_worker_init hook does in production (config/gunicorn.conf.py)
            client = app.test_client()
            engine = app.extensions["caseload.engine"]
            counter = StatementCounter(engine)

            for _ in range(10):
                assert client.get("/casework/", query_string={"t": token}).status_code == 200
            counter.n = 0
            page = client.get("/casework/", query_string={"t": token}).get_data(as_text=True)
            queries = counter.n
            rows = page.count('class="service-shortfall"')
            assert rows == MINE, rows
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = client.get("/casework/", query_string={"t": token})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200
        engine.dispose()
    return times, queries, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    print(f"machine: {machine()}  date: {dt.date.today()}")
    times, queries, rows = run(args.requests)
    print(f"caseload home, {rows} students, {args.requests} requests: p50 {pct(times, 50) * 1000:.1f} ms, "
          f"p95 {pct(times, 95) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, SQL statements per page: {queries}")


if __name__ == "__main__":
    main()

"""Benchmark: the case manager's caseload home (GET /casework/) in a district of 5,000 students on PostgreSQL.

The district: 5,000 students in 40 courses of two sections each (6 courses per student, 120 teachers: one per
section and a course-wide co-teacher), 1,200 of them with an active plan spread over 20 case managers; the measured
case manager has 200 students (issue #11; 60 for issue #5 with ``--caseload 60``), each with a plan version,
teachers' acknowledgements, some open questions, one or two services with twelve weeks of sessions and make-ups
(the service ledger), and the deadline inputs of issue #11: last meeting and evaluation, dates of birth (transition
plan), reevaluation waivers, consents and eligibility dates, 504 reviews, goals with four reporting periods and
final progress reports, and kept completions. The other students on plans have the same, so the aggregate queries
run against realistic tables. Target (issues #5, #11): p95 server time < 100 ms. The SQL statement count per page is
printed to show it does not depend on the caseload.

Server time is measured in-process around the WSGI call (Flask test client), so no network is involved and the
figure is the page's own (gunicorn's request handling and its access-log line are measured by ``bench.launch``, which
runs the README's gunicorn set-up); the app logs at the README's default level (INFO), and the page writes its
access-log rows (one per student) like any real view.
Usage: python -m bench.caseload [--requests 300] [--caseload 200]
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
MINE = 200


def build(session: Any) -> Any:  # noqa: PLR0915 - one linear script
    from lti_app.crypto import cipher
    from lti_app.models import (
        Acknowledgement,
        Course,
        DeadlineCompletion,
        Enrollment,
        Goal,
        Person,
        Plan,
        PlanVersion,
        Platform,
        ProgressReport,
        Question,
        ReportingPeriod,
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
    # Per course: the course-wide section (id c) and two class sections (ids 100 + 2c, 101 + 2c).
    sections = [{"id": c, "course_id": c, "lms_section_id": "", "name": f"Course {c}"} for c in range(1, COURSES + 1)]
    for c in range(1, COURSES + 1):
        sections += [{"id": 100 + 2 * c + k, "course_id": c, "lms_section_id": f"c{c}-p{k + 1}",
                      "name": f"Course {c} period {k + 1}"} for k in (0, 1)]
    bulk(Section, sections)
    enrollments = []
    for c in range(1, COURSES + 1):
        one, two, co = rng.sample(teachers, 3)
        enrollments += [{"person_id": one, "course_id": c, "section_id": 100 + 2 * c, "role": "teacher"},
                        {"person_id": two, "course_id": c, "section_id": 101 + 2 * c, "role": "teacher"},
                        {"person_id": co, "course_id": c, "section_id": c, "role": "teacher"}]
    for p in pupils:
        for c in rng.sample(range(1, COURSES + 1), 6):
            enrollments.append({"person_id": p, "course_id": c, "section_id": 100 + 2 * c + p % 2, "role": "student"})
    bulk(Enrollment, [{**e, "state": "active", "source": "nrps", "source_time": now} for e in enrollments])
    bulk(Student, [{"id": i + 1, "sis_id": f"B{p}", "given_name": f"Student{p}", "family_name": "Bench",
                    "date_of_birth": today - dt.timedelta(days=365 * 14 + (i * 37) % (365 * 4)), "created_at": now}
                   for i, p in enumerate(pupils)])
    bulk(StudentLink, [{"student_id": i + 1, "person_id": p, "linked_by": "sis_id", "created_at": now}
                       for i, p in enumerate(pupils)])
    me = managers[0]
    planned = list(range(1, PLANNED + 1))
    owner = {sid: (me if sid <= MINE else managers[1 + sid % (MANAGERS - 1)]) for sid in planned}
    def plan_row(sid: int) -> dict[str, Any]:
        iep = bool(sid % 3)
        evaluated = today - dt.timedelta(days=(sid * 13) % 1200)
        waived = iep and sid % 17 == 0
        return {"id": sid, "student_id": sid, "plan_type": "IEP" if iep else "504", "status": "active",
                "case_manager_id": owner[sid], "effective_on": today - dt.timedelta(days=100 + sid % 200),
                "annual_review_due": today + dt.timedelta(days=sid % 365 - 30), "created_at": now,
                "last_evaluation_on": evaluated,
                "last_meeting_on": today - dt.timedelta(days=(sid * 7) % 400) if iep else None,
                "last_504_review_on": None if iep else today - dt.timedelta(days=(sid * 5) % 420),
                "evaluation_consent_on": evaluated - dt.timedelta(days=40) if sid % 11 == 0 else None,
                "eligibility_determined_on": evaluated if iep and sid % 11 == 0 else None,
                "reevaluation_waived_on": evaluated + dt.timedelta(days=3 * 365 - 60) if waived else None,
                "reevaluation_waiver_covers": evaluated.replace(year=evaluated.year + 3)
                if waived and (evaluated.month, evaluated.day) != (2, 29) else None,
                "transition_plan_on": today - dt.timedelta(days=sid % 90) if iep and sid % 4 == 0 else None}

    bulk(Plan, [plan_row(sid) for sid in planned])
    bulk(PlanVersion, [{"id": sid, "plan_id": sid, "version_no": 1, "status": "active", "summary": "",
                        "created_at": now} for sid in planned])
    acks = []
    courses_of: dict[int, list[dict[str, Any]]] = {}
    staff_of: dict[int, list[dict[str, Any]]] = {}
    for e in enrollments:
        if e["role"] == "student":
            courses_of.setdefault(e["person_id"], []).append(e)
        else:
            staff_of.setdefault(e["course_id"], []).append(e)
    for sid in planned:
        for e in courses_of[pupils[sid - 1]][: 3 + sid % 4]:
            for t in staff_of[e["course_id"]]:
                acks.append({"staff_person_id": t["person_id"], "student_id": sid, "plan_version_id": sid,
                             "section_id": e["section_id"], "acknowledged_at": now})
    bulk(Acknowledgement, acks)
    # Reporting calendar and goals: progress-report deadlines for every plan with goals.
    year = today.year if today.month >= 8 else today.year - 1
    quarters = [(dt.date(year, 8, 24), dt.date(year, 10, 30)), (dt.date(year, 11, 2), dt.date(year + 1, 1, 22)),
                (dt.date(year + 1, 1, 25), dt.date(year + 1, 3, 26)), (dt.date(year + 1, 3, 29), dt.date(year + 1, 6, 4))]
    bulk(ReportingPeriod, [{"id": q + 1, "school": "", "name": f"Quarter {q + 1}", "starts_on": a, "ends_on": b,
                            "report_due_on": b + dt.timedelta(days=7)} for q, (a, b) in enumerate(quarters)])
    bulk(Goal, [{"student_id": sid, "plan_id": sid, "area": "reading", "description": "Bench goal",
                 "baseline": 10, "target": 40, "unit": "wpm", "measurement_method": "probe",
                 "baseline_on": today - dt.timedelta(days=90), "target_on": today + dt.timedelta(days=200),
                 "status": "active", "position": 0, "created_at": now, "updated_at": now}
                for sid in planned if sid % 3])
    bulk(ProgressReport, [{"student_id": sid, "plan_id": sid, "period_id": 1, "status": "final", "created_at": now,
                           "updated_at": now} for sid in planned if sid % 3 and sid % 2])
    bulk(DeadlineCompletion, [{"plan_id": sid, "student_id": sid, "kind": "annual_review",
                               "due_on": today - dt.timedelta(days=400), "completed_on": today - dt.timedelta(
                                   days=400 - sid % 9), "days_late": sid % 9,
                               "late_reason": "staff_unavailable" if sid % 9 else None,
                               "recorded_at": now, "updated_at": now} for sid in planned if sid % 3])
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
                                     "attendance": "delivered" if rng.random() > 0.1 else "provider_absent",
                                     "kind": "session", "created_at": now})
            sessions.append({"requirement_id": rid, "student_id": sid, "minutes": 30, "kind": "make_up",
                             "held_on": monday - dt.timedelta(days=2), "attendance": "delivered",
                             "created_at": now})
    bulk(ServiceRequirement, reqs)
    bulk(ServiceSession, sessions)
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()
    print(f"district: {STUDENTS} students, {len(enrollments)} enrollments, {PLANNED} plans, {len(acks)} "
          f"acknowledgements, {len(reqs)} services, {len(sessions)} sessions (with make-ups), deadline inputs and "
          f"completions on every plan, goals on {sum(1 for sid in planned if sid % 3)}; caseload of {MINE}")
    return session.get(Person, me)


def run(requests: int) -> tuple[list[float], list[float], int, int]:
    import secrets

    from lti_app import create_app
    from lti_app.auth import COOKIE_MODE, Viewer, bind, binding_cookie_name, issue_token

    with fresh_database("caseload") as url:
        # The README's log level (INFO, the default), so the app's own logging is in the figures; gunicorn's access
        # line (one short write per request) is outside an in-process run and is in bench.launch's.
        app = create_app({"database_url": url, "env": "test", "data_keys": [Fernet.generate_key().decode()],
                          "log_level": "INFO"})
        with app.app_context():
            s = app.extensions["caseload.sessionmaker"]()
            me = build(s)
            browser_secret = secrets.token_urlsafe(32)
            with app.test_request_context():
                # As a launch does: the token is bound to this browser, which holds the binding cookie.
                token = issue_token(Viewer(me.id, me.platform_id, None, ("teacher",),
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
                assert client.get("/casework/", query_string={"t": token}).status_code == 200
            counter.n = 0
            page = client.get("/casework/", query_string={"t": token}).get_data(as_text=True)
            queries = counter.n
            rows = page.count('class="service-shortfall"')
            assert rows == MINE, rows
            times, cpu = [], []
            for _ in range(requests):
                t0, c0 = time.perf_counter(), time.process_time()
                r = client.get("/casework/", query_string={"t": token})
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert r.status_code == 200
        engine.dispose()
    return times, cpu, queries, rows


def main() -> None:
    global MINE
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--caseload", type=int, default=MINE, help="students on the measured case manager's caseload")
    args = ap.parse_args()
    MINE = args.caseload
    print(f"machine: {machine()}  date: {dt.date.today()}")
    load = os.getloadavg()[0]
    times, cpu, queries, rows = run(args.requests)
    print(f"caseload home, {rows} students, {args.requests} requests: p50 {pct(times, 50) * 1000:.1f} ms, "
          f"p95 {pct(times, 95) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, SQL statements per page: {queries}")
    # The web process's own CPU per page (the database server's is not in it): on a shared machine this shows what
    # the page costs, apart from the wait for a core.
    print(f"web process CPU per page: p50 {pct(cpu, 50) * 1000:.1f} ms, p95 {pct(cpu, 95) * 1000:.1f} ms; "
          f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

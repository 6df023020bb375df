"""Benchmark: the alerts job after a term-start burst of 10,000 enrollment changes, on PostgreSQL.

The district: 12,000 students (5,000 with an active plan, spread over 40 case managers), 300 courses of two
sections with a teacher each; every student is in 4 sections. The alerts job runs once (the baseline), then the
burst lands: each of the 5,000 plan students leaves one of their sections and joins a section of another course
(10,000 enrollment changes, written straight to ``enrollments`` as any roster source ends up doing), plus 2,000
changes for students without a plan (which must alert nobody). Then one run of the job is timed: detection and
storing the alerts (target: within 30 s), then e-mail to a real SMTP server on loopback (aiosmtpd): one message per
case manager (target: exactly one each). A second run must find nothing and send nothing.

Usage: python -m bench.alerts [--students 12000] [--planned 5000] [--managers 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import sys
import time
from collections import Counter
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import insert, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._support import StatementCounter, fresh_database, machine  # noqa: E402

COURSES = 300
SECTIONS_PER_STUDENT = 4


def build(session: Any, students: int, planned: int, managers: int) -> dict[str, Any]:
    from lti_app.models import Course, Enrollment, Person, Plan, PlanVersion, Platform, RoleGrant, Section, Student, StudentLink

    rng = random.Random(13)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    plat = Platform(name="bench", lms="canvas", issuer="https://bench.example.test", client_id="bench",
                    auth_login_url="https://bench.example.test/a", auth_token_url="https://bench.example.test/t",
                    keyset_url="https://bench.example.test/k", status="active", settings={})
    session.add(plat)
    session.flush()

    def bulk(model: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), 5_000):
            session.execute(insert(model), rows[i:i + 5_000])

    pid = iter(range(1, 10**7))
    people: list[dict[str, Any]] = []
    cms = [next(pid) for _ in range(managers)]
    teachers = [next(pid) for _ in range(COURSES * 2)]
    pupils = [next(pid) for _ in range(students)]
    for i, p in enumerate(cms):
        people.append({"id": p, "platform_id": plat.id, "lti_sub": f"cm-{i}", "name": f"Manager {i} Larkspur",
                       "kind": "staff", "email": f"cm{i}@district.example.test"})
    for i, p in enumerate(teachers):
        people.append({"id": p, "platform_id": plat.id, "lti_sub": f"t-{i}", "name": f"Teacher {i} Reed",
                       "kind": "staff", "email": f"t{i}@district.example.test"})
    for i, p in enumerate(pupils):
        people.append({"id": p, "platform_id": plat.id, "lti_sub": f"s-{i}", "name": f"Student {i} Alder",
                       "kind": "student", "sis_id": f"S{i:06d}"})
    bulk(Person, people)
    bulk(RoleGrant, [{"person_id": p, "role": "case_manager"} for p in cms])
    bulk(Course, [{"id": c + 1, "platform_id": plat.id, "lti_context_id": f"ctx-{c}", "title": f"Course {c}"}
                  for c in range(COURSES)])
    sections: list[dict[str, Any]] = []
    sid = iter(range(1, 10**7))
    course_sections: dict[int, list[int]] = {}
    for c in range(1, COURSES + 1):
        sections.append({"id": next(sid), "course_id": c, "lms_section_id": "", "name": f"Course {c - 1}"})
        course_sections[c] = []
        for k in range(2):
            s_id = next(sid)
            course_sections[c].append(s_id)
            sections.append({"id": s_id, "course_id": c, "lms_section_id": f"{c}-{k}", "name": f"Period {k + 1}"})
    bulk(Section, sections)
    eid = iter(range(1, 10**8))
    enrollments = []
    for c in range(1, COURSES + 1):
        for k, s_id in enumerate(course_sections[c]):
            enrollments.append({"id": next(eid), "person_id": teachers[(c - 1) * 2 + k], "course_id": c,
                                "section_id": s_id, "role": "teacher", "state": "active", "source": "nrps",
                                "source_time": now})
    placed: dict[int, list[tuple[int, int, int]]] = {}  # person -> [(enrollment id, course, section)]
    for p in pupils:
        for c in rng.sample(range(1, COURSES + 1), SECTIONS_PER_STUDENT):
            s_id = rng.choice(course_sections[c])
            e = next(eid)
            enrollments.append({"id": e, "person_id": p, "course_id": c, "section_id": s_id, "role": "student",
                                "state": "active", "source": "nrps", "source_time": now})
            placed.setdefault(p, []).append((e, c, s_id))
    bulk(Enrollment, enrollments)
    bulk(Student, [{"id": i + 1, "sis_id": f"S{i:06d}", "given_name": f"Student{i}", "family_name": "Alder"}
                   for i in range(students)])
    bulk(StudentLink, [{"student_id": i + 1, "person_id": p, "linked_by": "sis_id"} for i, p in enumerate(pupils)])
    bulk(Plan, [{"id": i + 1, "student_id": i + 1, "plan_type": "IEP", "status": "active",
                 "case_manager_id": cms[i % managers]} for i in range(planned)])
    bulk(PlanVersion, [{"plan_id": i + 1, "version_no": 1, "status": "active"} for i in range(planned)])
    session.execute(text("SELECT setval(pg_get_serial_sequence('enrollments', 'id'), (SELECT max(id) FROM enrollments))"))
    session.commit()
    analyze(session)
    return {"pupils": pupils, "placed": placed, "course_sections": course_sections, "next_eid": next(eid), "now": now}


def analyze(session: Any) -> None:
    """Table statistics, as autovacuum keeps them in a running district (a table filled a second ago has none, and
    PostgreSQL then plans as if it were empty)."""
    session.connection().exec_driver_sql("ANALYZE")
    session.commit()


def burst(session: Any, world: dict[str, Any], planned: int, others: int) -> int:
    """Each planned student leaves one section and joins a section of a course they are not in; ``others`` more
    changes for students without a plan. Written in bulk, as the inbox's commit groups write them."""
    from lti_app.models import Enrollment

    rng = random.Random(14)
    when = dt.datetime.now(dt.UTC)
    ended: list[int] = []
    added: list[dict[str, Any]] = []
    eid = world["next_eid"]
    unplanned = world["pupils"][planned:]
    movers = world["pupils"][:planned] + unplanned[:others // 2]
    for p in movers:
        rows = world["placed"][p]
        ended.append(rows[0][0])
        taken = {c for _, c, _ in rows}
        course = rng.choice([c for c in range(1, COURSES + 1) if c not in taken])
        added.append({"id": eid, "person_id": p, "course_id": course,
                      "section_id": rng.choice(world["course_sections"][course]), "role": "student",
                      "state": "active", "source": "webhook", "source_time": when})
        eid += 1
    for i in range(0, len(ended), 5_000):
        session.execute(Enrollment.__table__.update().where(Enrollment.id.in_(ended[i:i + 5_000]))
                        .values(state="deleted", source="webhook", source_time=when))
    for i in range(0, len(added), 5_000):
        session.execute(insert(Enrollment), added[i:i + 5_000])
    session.commit()
    analyze(session)
    return len(ended) + len(added)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=12_000)
    ap.add_argument("--planned", type=int, default=5_000)
    ap.add_argument("--managers", type=int, default=40)
    args = ap.parse_args()
    from lti_app import create_app
    from lti_app.services.alerts import delivery, job
    from tests.support.smtp_server import SmtpServer

    print(f"machine: {machine()}  date: {dt.date.today()}")
    smtp = SmtpServer().start()
    try:
        with fresh_database("alerts") as url:
            app = create_app({"database_url": url, "env": "test", "data_keys": [Fernet.generate_key().decode()],
                              "log_level": "INFO", "smtp_url": smtp.url,
                              "mail_from": "Caseload <caseload@district.example.test>"})
            settings = app.config["CASELOAD"]
            with app.app_context():
                s = app.extensions["caseload.sessionmaker"]()
                started = time.perf_counter()
                world = build(s, args.students, args.planned, args.managers)
                print(f"district built in {time.perf_counter() - started:.1f} s: {args.students} students, "
                      f"{args.planned} with plans, {args.managers} case managers, {COURSES * 2} sections")
                started = time.perf_counter()
                base = job.run(s, settings)
                print(f"baseline run: {base.baselined} placements recorded in {time.perf_counter() - started:.2f} s, "
                      f"{base.new_alerts} alerts")
                changes = burst(s, world, args.planned, 2_000)
                print(f"burst: {changes} enrollment changes ({args.planned * 2} for students with a plan)")
                counter = StatementCounter(app.extensions["caseload.engine"])
                timings: dict[str, float] = {}

                def timed_delivery(*a: Any, **kw: Any) -> Any:
                    timings["detect"] = time.perf_counter() - started
                    t = time.perf_counter()
                    out = delivery.default_sender(*a, **kw)
                    timings["smtp"] = time.perf_counter() - t
                    return out

                started = time.perf_counter()
                report = job.run(s, dataclasses.replace(settings), send=timed_delivery)
                total = time.perf_counter() - started
                messages = smtp.wait_for(args.managers, timeout=60)
                per_person = Counter(m["To"] for m in messages)
                print(f"alerts run: {report.new_alerts} alerts ({report.joined} joined, {report.left} left) "
                      f"computed and stored in {timings.get('detect', total):.2f} s; {report.delivery.sent_messages} "
                      f"e-mails for {report.delivery.sent_alerts} alerts sent in {timings.get('smtp', 0):.2f} s; "
                      f"whole run {total:.2f} s, {counter.n} SQL statements")
                print(f"e-mails received: {len(messages)} for {len(per_person)} case managers, at most "
                      f"{max(per_person.values())} each; largest e-mail {max(len(m.as_bytes()) for m in messages):,} bytes")
                counter.n = 0
                started = time.perf_counter()
                again = job.run(s, settings)
                print(f"rerun: {again.new_alerts} new alerts, {again.delivery.sent_messages} e-mails, "
                      f"{time.perf_counter() - started:.2f} s, {counter.n} SQL statements")
                ok = (timings.get("detect", total) < 30 and len(per_person) == args.managers
                      and max(per_person.values()) == 1 and again.new_alerts == 0 and again.delivery.sent_messages == 0
                      and len(messages) == args.managers)
                print("targets (alerts within 30 s, one e-mail per case manager, rerun sends nothing):",
                      "met" if ok else "NOT met")
                s.close()
            app.extensions["caseload.engine"].dispose()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()

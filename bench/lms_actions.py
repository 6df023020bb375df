"""Benchmark: accommodations applied in the LMS for a district (issue #12), against the fake Canvas or Moodle.

A district of ``--students`` plan students with timed accommodations (1.5x, 2x or 10 extra minutes), each in
``--courses-per-student`` courses of ``--class-size`` plan students, ``--quizzes`` timed quizzes per course; the
fake LMS (tests/support/fake_canvas.py or fake_moodle.py) runs in a separate process and sleeps ``--latency``
seconds per call. Courses are reconciled one after another, as one worker holding one token does (Canvas wants
one request at a time per token). Three passes:
1. first application (reason "plan": reads everything, writes the difference);
2. nightly re-check of the unchanged district (reason "sweep": trusts recent checks of unchanged quizzes);
3. full verification of the unchanged district (reason "manual": reads every quiz's per-student values again).
Reported: calls made (reads, writes, from the LMS's own count), calls per change, wall time, peak RSS.

Usage: .venv/bin/python -m bench.lms_actions [--lms canvas|moodle] [--students 2000] [--latency 0.05]
Goals: the re-check makes zero writes and one read per course per quiz list; the first application makes at most
one write per quiz and student (Canvas Classic: one per quiz for all its students).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import fresh_database, machine  # noqa: E402

RULES = [("1.5", None), ("2", None), (None, 10)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(lms: str, latency: float, layout: list[tuple[str, list[str]]], quizzes: int, commands: Any,
          replies: Any) -> None:
    """Child process: the LMS, with its courses, students and timed quizzes. Commands: ("count",) / ("stop",)."""
    if lms == "canvas":
        from tests.support.fake_canvas import FakeCanvas

        canvas = FakeCanvas(latency=latency, page_size=100).start()
        for course_id, students in layout:
            canvas.add_course(course_id, students)
            for q in range(quizzes):
                canvas.add_quiz(course_id, f"Quiz {q + 1}", 20 + 5 * (q % 5))
        replies.put((canvas.base_url, canvas.client_id, canvas.client_secret, canvas.refresh_token, ""))
        fake: Any = canvas
    else:
        from tests.support.fake_moodle import FakeMoodle

        moodle = FakeMoodle(latency=latency).start()
        for course_id, students in layout:
            moodle.enrol(int(course_id), *(int(s) for s in students))
            for q in range(quizzes):
                moodle.add_quiz(int(course_id), f"Quiz {q + 1}", timelimit=60 * (20 + 5 * (q % 5)))
        replies.put((moodle.base_url, "", "", "", moodle.token))
        fake = moodle
    while True:
        command = commands.get()
        if command[0] == "stop":
            fake.stop()
            return
        if lms == "canvas":
            replies.put((canvas.count("GET"), canvas.count("POST") + canvas.count("PUT")))
        else:
            writes = moodle.count("mod_quiz_save_overrides") + moodle.count("mod_quiz_delete_overrides")
            replies.put((moodle.count() - writes, writes))


def build_district(session: Any, lms: str, students: int, per_student: int, class_size: int
                   ) -> tuple[Any, list[tuple[str, list[str]]]]:
    from lti_app.models import (
        AppliedAccommodation,
        Course,
        Enrollment,
        Person,
        Plan,
        PlanVersion,
        Section,
        Student,
        StudentLink,
    )
    from tests.support import factories as f

    plat = f.platform(session, name=f"bench-{lms}", lms=lms)
    n_courses = max(1, students * per_student // class_size)
    courses = [Course(platform_id=plat.id, lti_context_id=f"ctx-{i}", title=f"Course {i}",
                      lms_course_id=str(100 + i)) for i in range(n_courses)]
    session.add_all(courses)
    session.flush()
    sections = [Section(course_id=c.id, lms_section_id="", name=c.title) for c in courses]
    session.add_all(sections)
    people = [Person(platform_id=plat.id, lti_sub=f"s-{i}", lms_user_id=str(10_000 + i), name=f"Student {i}",
                     kind="student") for i in range(students)]
    records = [Student(sis_id=f"B-{i}", given_name="Student", family_name=str(i)) for i in range(students)]
    session.add_all(people + records)
    session.flush()
    session.add_all([StudentLink(student_id=s.id, person_id=p.id) for p, s in zip(people, records, strict=True)])
    plans = [Plan(student_id=s.id, plan_type="IEP", status="active") for s in records]
    session.add_all(plans)
    session.flush()
    versions = [PlanVersion(plan_id=p.id, version_no=1, status="active", summary="bench") for p in plans]
    session.add_all(versions)
    session.flush()
    for i, v in enumerate(versions):
        mult, minutes = RULES[i % len(RULES)]
        session.add(AppliedAccommodation(plan_version_id=v.id, multiplier=Decimal(mult) if mult else None,
                                         extra_minutes=minutes, reduce_choices=False, window_guard=False))
    layout: dict[int, list[str]] = {c.id: [] for c in courses}
    for i, person in enumerate(people):
        for k in range(per_student):
            course = courses[(i * per_student + k) % n_courses]
            session.add(Enrollment(person_id=person.id, course_id=course.id, section_id=sections[courses.index(
                course)].id, role="student", state="active", source="demo"))
            layout[course.id].append(person.lms_user_id or "")
    session.commit()
    return plat, [(c.lms_course_id or "", layout[c.id]) for c in courses]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lms", choices=("canvas", "moodle"), default="canvas")
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--courses-per-student", type=int, default=6)
    parser.add_argument("--class-size", type=int, default=25)
    parser.add_argument("--quizzes", type=int, default=15)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    from lti_app import create_app
    from lti_app.services.lms_actions import connections
    from lti_app.services.lms_actions.reconcile import reconcile_course

    ctx = mp.get_context("spawn")
    commands, replies = ctx.Queue(), ctx.Queue()
    child = None
    with fresh_database("lms") as url:
        app = create_app({"env": "test", "database_url": url, "secret_key": "bench-" + "x" * 40,
                          "data_keys": [Fernet.generate_key().decode()]})
        try:
            with app.app_context():
                session = app.extensions["caseload.sessionmaker"]()
                t0 = time.perf_counter()
                plat, layout = build_district(session, args.lms, args.students, args.courses_per_student,
                                              args.class_size)
                from lti_app.models import Course

                course_ids = [c for (c,) in session.query(Course.id).filter(Course.platform_id == plat.id)
                              .order_by(Course.id)]
                child = ctx.Process(target=serve, args=(args.lms, args.latency, layout, args.quizzes, commands,
                                                        replies), daemon=True)
                child.start()
                base, client_id, secret, refresh, token = replies.get(timeout=600)
                if args.lms == "canvas":
                    conn = connections.save_canvas(session, plat, base, client_id, secret, refresh)
                else:
                    conn = connections.save_moodle(session, plat, base, token)
                connections.set_enabled(session, conn, True, None)
                session.commit()
                print(f"LMS actions bench: {args.lms}, {args.students} plan students x {args.courses_per_student} "
                      f"courses, {len(course_ids)} courses of {args.class_size}, {args.quizzes} timed quizzes each, "
                      f"{args.latency * 1000:.0f} ms per LMS call; district built in {time.perf_counter() - t0:.1f} s")
                print(f"  {machine()}")
                print(f"  peak RSS before the first pass: {peak_rss_mb():.0f} MB")
                pairs = args.students * args.courses_per_student * args.quizzes
                ok = True
                for label, reason in (("first application", "plan"), ("nightly re-check (unchanged)", "sweep"),
                                      ("full verification (unchanged)", "manual")):
                    commands.put(("count",))
                    reads0, writes0 = replies.get(timeout=60)
                    started = time.perf_counter()
                    changes = 0
                    for course_id in course_ids:
                        result = reconcile_course(session, course_id, reason=reason)
                        changes += result.applied
                        if result.status != "done":
                            print(f"FAILED: course {course_id}: {result.status} {result.detail}")
                            return 1
                    elapsed = time.perf_counter() - started
                    commands.put(("count",))
                    reads1, writes1 = replies.get(timeout=60)
                    reads, writes = reads1 - reads0, writes1 - writes0
                    per_change = f"{(reads + writes) / changes:.3f}" if changes else "—"
                    print(f"  {label:<31} {elapsed:7.1f} s  reads {reads:6}  writes {writes:6}  changes {changes:6}"
                          f"  calls/change {per_change}  reads/course {reads / len(course_ids):.1f}"
                          f"  peak RSS {peak_rss_mb():.0f} MB")
                    if reason == "plan":
                        quizzes = len(course_ids) * args.quizzes
                        print(f"    writes per quiz {writes / quizzes:.2f} (goal <= 1 on Canvas Classic; "
                              f"{pairs} student-quiz pairs)")
                        ok = ok and writes <= quizzes
                    elif reason == "sweep":
                        lists = 2 if args.lms == "canvas" else 1
                        ok = ok and writes == 0 and reads <= lists * len(course_ids)
                    else:
                        ok = ok and writes == 0
                session.close()
        finally:
            if child is not None:
                commands.put(("stop",))
                child.join(timeout=30)
            app.extensions["caseload.engine"].dispose()
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

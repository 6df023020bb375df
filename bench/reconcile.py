"""Benchmark: NRPS reconcile of a 5,000-member course (100 members a page) on PostgreSQL.

The LMS is the local test platform (tests/support/nrps_platform.py) in a separate process, so the figures are
Caseload's own: wall time of each reconcile and the process's peak RSS (resource.getrusage). Three runs:
1. first sync: 5,000 people and enrollments created;
2. unchanged roster: everything confirmed, nothing written but source times;
3. churn: 250 members left, 250 joined, 250 renamed.

Usage: .venv/bin/python bench/reconcile.py [--members 5000] [--page 100]
       (PostgreSQL from CASELOAD_BENCH_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres;
       a scratch database is created and dropped.)
Targets: each reconcile < 10 s, peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_URL = os.environ.get("CASELOAD_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FIRST = ["Avery", "Rowan", "Sage", "Jules", "Indigo", "Remy", "Tamsin", "Linden", "Marlo", "Quincy"]
LAST = ["Quinlan", "Ellery", "Whitcombe", "Marlowe", "Farrant", "Castellan", "Oakes", "Hale", "Vance", "Ashdown"]


def members(start: int, count: int, renamed: set[int] | None = None) -> list[dict[str, Any]]:
    from tests.support.nrps_platform import member

    out = []
    for i in range(start, start + count):
        role = ["Instructor"] if i % 250 == 0 else ["Learner"]
        name = f"{FIRST[i % 10]} {LAST[(i // 10) % 10]}{' Jr' if renamed and i in renamed else ''}"
        out.append(member(f"user-{i}", role, name=name, email=f"user{i}@example.test"))
    return out


def serve_platform(client_id: str, jwks: dict[str, Any], page: int, commands: Any, replies: Any) -> None:
    """Child process: the LMS. Commands: ("set", start, count, renamed) / ("stop",)."""
    from tests.support.nrps_platform import NrpsTestPlatform

    platform = NrpsTestPlatform(client_id, jwks, default_page_size=page, max_page_size=page).start()
    replies.put((platform.token_url, platform.nrps_url("bench-course")))
    while True:
        command = commands.get()
        if command[0] == "stop":
            platform.stop()
            return
        _, start, count, renamed = command
        platform.set_members("bench-course", members(start, count, renamed), title="Bench course")
        replies.put(("ok", len(platform.requests_to("/nrps/"))))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()

    from cryptography.fernet import Fernet
    from sqlalchemy import create_engine, func, select, text
    from sqlalchemy.engine import make_url

    from lti_app import create_app
    from lti_app.migrate import upgrade

    name = f"caseload_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    ctx = mp.get_context("spawn")
    commands, replies = ctx.Queue(), ctx.Queue()
    child = None
    try:
        upgrade(url, "head")
        app = create_app({"env": "test", "database_url": url, "secret_key": "bench-" + "x" * 40,
                          "data_keys": [Fernet.generate_key().decode()]})
        with app.app_context():
            from lti_app.models import Enrollment
            from lti_app.services.roster import reconcile
            from tests.support import factories as f
            from tests.support.nrps_platform import make_tool_key

            session = app.extensions["caseload.sessionmaker"]()
            jwks = make_tool_key(session)
            session.commit()
            child = ctx.Process(target=serve_platform, args=("bench-client", jwks, args.page, commands, replies),
                                daemon=True)
            child.start()
            token_url, nrps_url = replies.get(timeout=30)
            plat = f.platform(session, name="bench", lms="moodle", client_id="bench-client", auth_token_url=token_url)
            course = f.course(session, plat, title="Bench course", lti_context_id="bench-course", nrps_url=nrps_url)
            session.commit()
            course_id = course.id
            n = args.members
            scenarios = [
                ("first sync (all new)", (0, n, None)),
                ("unchanged roster", (0, n, None)),
                ("churn: 250 left, 250 joined, 250 renamed", (250, n, set(range(1000, 1250)))),
            ]
            print(f"NRPS reconcile bench: {n} members, {args.page} per page, PostgreSQL, LMS in a separate process")
            print(f"  peak RSS after start-up (app, database, key; before any reconcile): {peak_rss_mb():.0f} MB")
            results = []
            for label, (start, count, renamed) in scenarios:
                commands.put(("set", start, count, renamed))
                replies.get(timeout=60)
                t0 = time.perf_counter()
                outcome = reconcile.reconcile_course(session, course_id, trigger="bench")
                elapsed = time.perf_counter() - t0
                if not outcome.ok:
                    print(f"FAILED: {label}: {outcome.error}")
                    return 1
                active = session.scalar(select(func.count()).select_from(Enrollment)
                                        .where(Enrollment.course_id == course_id, Enrollment.state == "active"))
                results.append((label, elapsed, outcome, active))
                print(f"  {label:<44} {elapsed:6.2f} s   +{outcome.added} ~{outcome.updated} -{outcome.removed}"
                      f"   active={active}   peak RSS so far {peak_rss_mb():.0f} MB")
            session.close()
        worst = max(r[1] for r in results)
        rss = peak_rss_mb()
        print(f"slowest reconcile: {worst:.2f} s (target < 10 s)   peak RSS: {rss:.0f} MB (target <= 150 MB)")
        return 0 if worst < 10 and rss <= 150 else 1
    finally:
        if child is not None:
            commands.put(("stop",))
            child.join(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())

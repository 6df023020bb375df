"""Benchmark: CSV import of 10,000 accommodation rows on PostgreSQL (target: < 10 s including validation).

The file: 2,000 fictional students, each with one plan (IEP, 504 or ELL...) of five accommodations, every column
of the template filled. Timed, each on the same fresh database:
1. parse + validate only (no database);
2. dry run (validation + reading the database to say what would change);
3. first import (everything created: 2,000 students, 2,000 plans and versions, 10,000 accommodations);
4. the same file again (idempotent: nothing written);
5. a file where 10% of the plans changed one accommodation (200 new versions);
6. the first file through the admin upload page (multipart POST, on a second fresh database).

Usage: .venv/bin/python -m bench.import_csv [--students 2000] [--per-plan 5]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import fresh_database, machine  # noqa: E402

FIRST = ["Avery", "Rowan", "Sage", "Jules", "Indigo", "Remy", "Tamsin", "Linden", "Marlo", "Quincy"]
LAST = ["Quinlan", "Ellery", "Whitcombe", "Marlowe", "Farrant", "Castellan", "Oakes", "Hale", "Vance", "Ashdown"]
TYPES = ["IEP", "504", "IEP", "504", "ELL", "health", "behaviour", "MTSS"]
ACCOMMODATIONS = [
    ("timing", "Tests and quizzes: 1.5x time", "tests", "1.5"),
    ("setting", "Tests in a separate, quiet room", "tests", ""),
    ("presentation", "Provide a copy of class notes or slides before the lesson", "classroom", ""),
    ("response", "May use a calculator except where computation is being tested", "all", ""),
    ("presentation", "Directions given both orally and in writing", "all", ""),
    ("timing", "A 5-minute movement break when requested, up to twice per class", "classroom", ""),
    ("response", "May dictate longer written answers or use speech-to-text", "all", ""),
]


def make_csv(students: int, per_plan: int, changed_every: int = 0) -> bytes:
    from lti_app.services.casework.importer import COLUMN_NAMES

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for i in range(students):
        dob = dt.date(2008, 1, 1) + dt.timedelta(days=(i * 37) % 2500)
        effective = dt.date(2026, 8, 15) + dt.timedelta(days=i % 60)
        plan_type = TYPES[i % len(TYPES)]
        for k in range(per_plan):
            cat, text, applies, mult = ACCOMMODATIONS[(i + k) % len(ACCOMMODATIONS)]
            if changed_every and i % changed_every == 0 and k == 0:
                mult = "2"
            writer.writerow([f"S-{100000 + i}", FIRST[i % 10], f"{LAST[(i // 10) % 10]}{i}", "", dob.isoformat(),
                             str(9 + i % 4), "Juniper Ridge High School", "", plan_type, "active", effective.isoformat(),
                             (effective + dt.timedelta(days=364)).isoformat(),
                             (effective + dt.timedelta(days=364)).isoformat(), "", f"cm{i % 20}@example.org", cat,
                             text, f"C-{(i + k) % len(ACCOMMODATIONS)}", applies, "Mathematics;Science" if k == 2 else "",
                             mult, ""])
    return out.getvalue().encode()


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<58} {elapsed:6.2f} s")
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--per-plan", type=int, default=5)
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    from lti_app import create_app
    from lti_app.db import session_scope
    from lti_app.services.casework.importer import parse, run_import

    first = make_csv(args.students, args.per_plan)
    changed = make_csv(args.students, args.per_plan, changed_every=10)
    rows = args.students * args.per_plan
    print(f"machine: {machine()} · {dt.date.today()}")
    print(f"file: {rows:,} accommodation rows, {args.students:,} students/plans, {len(first) / 1e6:.1f} MB")
    settings = {"env": "test", "secret_key": "bench-" + "x" * 40, "data_keys": [Fernet.generate_key().decode()],
                "import_max_bytes": 50_000_000}
    results: dict[str, float] = {}
    with fresh_database("import") as url:
        app = create_app({**settings, "database_url": url})
        with app.app_context():
            parsed, results["parse"] = timed("parse + validate only (no database)", lambda: parse(first))
            assert not parsed.errors, parsed.errors[:3]
            with session_scope(app) as s:
                report, results["dry"] = timed("dry run (validate + read the database)",
                                               lambda: run_import(s, first, dry_run=True))
                assert report.plans_created == args.students
            with session_scope(app) as s:
                report, results["first"] = timed("first import (all created)",
                                                 lambda: run_import(s, first, dry_run=False, via="cli"))
                assert report.applied and report.accommodations_written == rows, report.counts()
            with session_scope(app) as s:
                report, results["again"] = timed("same file again (idempotent, nothing written)",
                                                 lambda: run_import(s, first, dry_run=False, via="cli"))
                assert report.changes == 0, report.counts()
            with session_scope(app) as s:
                report, results["changed"] = timed("10% of plans changed (new versions)",
                                                   lambda: run_import(s, changed, dry_run=False, via="cli"))
                assert report.versions_created == args.students // 10, report.counts()
        app.extensions["caseload.engine"].dispose()
    with fresh_database("import_web") as url:
        app = create_app({**settings, "database_url": url})
        with app.app_context():
            from lti_app.auth import Viewer, csrf_token, issue_token
            from lti_app.models import Person, Platform

            with session_scope(app) as s:
                plat = Platform(name="bench", lms="moodle", issuer="https://lms.example.test", client_id="c",
                                auth_login_url="https://lms.example.test/a", auth_token_url="https://lms.example.test/t",
                                keyset_url="https://lms.example.test/k", status="active", settings={})
                s.add(plat)
                s.flush()
                admin = Person(platform_id=plat.id, lti_sub="admin", name="Marlo Vance", kind="staff")
                s.add(admin)
                s.commit()
                viewer = Viewer(person_id=admin.id, platform_id=plat.id, course_id=None, roles=("admin",))
            with app.test_request_context():
                token, csrf = issue_token(viewer), csrf_token(viewer)
            client = app.test_client()

            def upload():  # type: ignore[no-untyped-def]
                return client.post("/admin/imports", content_type="multipart/form-data", data={
                    "t": token, "csrf_token": csrf, "mode": "apply", "file": (io.BytesIO(first), "bench.csv")})

            resp, results["web"] = timed("first import through the admin upload page", upload)
            assert resp.status_code == 200 and b"Imported." in resp.data, resp.status_code
        app.extensions["caseload.engine"].dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:.0f} MB")
    worst = max(results["first"], results["web"])
    print(f"target: {rows:,} rows imported in < 10 s including validation -> {worst:.2f} s: "
          f"{'met' if worst < 10 else 'NOT met'}")


if __name__ == "__main__":
    main()

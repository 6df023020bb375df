"""Benchmark: a burst of signed Canvas Live Events against gunicorn (2 workers) on PostgreSQL, applied by a Celery
worker on Redis.

    python -m bench.webhooks [--events 20000] [--clients 48] [--threads 16] [--worker-nice 10] [--setup documented|lean]
    python -m bench.webhooks --in-process [--events 6000] [--threads 16]

The events are enrollment_created / enrollment_updated for one course, with 10% duplicates (the same signed
event delivered twice) and 10% out of order (an enrollment's later event sent before its earlier one). All are
signed before the clock starts. Reported: accepted events/s during the burst, the time from the end of the burst
until every stored event is applied, and the checks: nothing lost (every distinct event stored once and applied),
nothing double-applied (every event applied in exactly one attempt) and the final state of every enrollment equal
to its newest event. The worker runs at nice 10, as the README recommends where web and worker share a machine
(a burst is acknowledged first and applied right after). Needs PostgreSQL (CASELOAD_TEST_PG_URL) and Redis
(CASELOAD_BENCH_REDIS_URL).

``--setup documented`` (the default) runs gunicorn and the Celery worker as the README's production section does:
``config/gunicorn.conf.py`` with its worker count (2 per core) and 16 threads, the access log on stdout (written to a
file here, as journald would), ``INFO`` for the app and ``--loglevel INFO`` for the worker (its log to a file).
``--setup lean`` is the set-up of the figures recorded before 2026-12-06 (2 gunicorn workers, no access log,
``WARNING`` everywhere), kept to compare with them.

``--in-process`` posts the same mix of events through Flask's test client from ``--threads`` threads in this
process (no gunicorn, no sockets, no worker applying them) and reports the CPU time (``time.process_time``) and
SQL statements per event: the acceptance path's own cost, which varies far less between machines and runs than
the wall-clock figures of the full benchmark. It includes the test client's own work (building each request).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, func, select, text

from bench._support import fresh_database, machine, wait_until_healthy
from tests.support.lms_events import CanvasLiveEvents

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("CASELOAD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
STATES = ["active", "inactive", "completed", "deleted", "active"]


def build_events(sender: CanvasLiveEvents, total: int, users: int, rng: random.Random
                 ) -> tuple[list[str], dict[str, str], int]:
    """(tokens in delivery order, expected final state per Canvas user id, distinct events)."""
    distinct = int(total / 1.1)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    per_user: dict[int, list[tuple[dt.datetime, str]]] = {}
    events: list[tuple[int, str]] = []  # (user, token)
    for i in range(distinct):
        user = 30000 + (i % users)
        seq = len(per_user.setdefault(user, []))
        when = t0 + dt.timedelta(seconds=seq * 60 + (i % users) / users)
        name = "enrollment_created" if seq == 0 else "enrollment_updated"
        state = "active" if seq == 0 else STATES[(seq + user) % len(STATES)]
        payload = sender.enrollment(name, enrollment_id=user, course_id=565, user_id=user, section_id=4811,
                                    state=state, when=when, user_name=f"Bench Learner {user}")
        per_user[user].append((when, {"completed": "inactive"}.get(state, state)))
        events.append((user, sender.sign(payload)))
    # 10% out of order: swap an event with the next event of the same user.
    swaps = int(total * 0.1)
    index_of: dict[int, list[int]] = {}
    for idx, (user, _) in enumerate(events):
        index_of.setdefault(user, []).append(idx)
    candidates = [ix for ix in index_of.values() if len(ix) >= 2]
    done = 0
    while done < swaps and candidates:
        ix = rng.choice(candidates)
        k = rng.randrange(len(ix) - 1)
        a, b = ix[k], ix[k + 1]
        events[a], events[b] = events[b], events[a]
        done += 1
    tokens = [token for _, token in events]
    # 10% duplicates: redeliver an already-sent event a little later.
    for _ in range(total - distinct):
        src = rng.randrange(len(tokens))
        tokens.insert(min(len(tokens), src + rng.randrange(1, 50)), tokens[src])
    expected = {str(user): max(history)[1] for user, history in per_user.items()}
    return tokens, expected, distinct


def seed(url: str, data_key: str, keyset_url: str, users: int) -> None:
    """The bench platform (Live Events verified against ``keyset_url``), course 565 with section 4811, and the
    ``users`` people the events name."""
    from lti_app import create_app

    app = create_app({"database_url": url, "env": "test", "data_keys": [data_key]})
    with app.app_context():
        from lti_app.db import session_scope
        from lti_app.models import Course, Person, Platform, Section
        from lti_app.services.platforms import keys

        with session_scope() as s:
            keys.ensure_keys(s)
            plat = Platform(name="bench-canvas", lms="canvas", issuer="https://canvas.bench.test",
                            client_id="bench", auth_login_url="https://canvas.bench.test/auth",
                            auth_token_url="https://canvas.bench.test/token",
                            keyset_url="https://canvas.bench.test/jwks",
                            live_events_keyset_url=keyset_url, status="active", settings={},
                            canvas_root_account_uuid=CanvasLiveEvents.root_account_uuid)
            s.add(plat)
            s.flush()
            course = Course(platform_id=plat.id, lti_context_id="ctx-565", lms_course_id="565", title="Bench")
            s.add(course)
            s.flush()
            s.add_all([Section(course_id=course.id, lms_section_id="", name="Bench"),
                       Section(course_id=course.id, lms_section_id="4811", name="Period 1")])
            s.add_all([Person(platform_id=plat.id, lti_sub=f"sub-{u}", lms_user_id=str(u), kind="student",
                              name=f"Bench Learner {u}") for u in range(30000, 30000 + users)])
            s.commit()
    app.extensions["caseload.engine"].dispose()


def in_process(events: int, users: int, threads: int) -> None:
    import threading
    from collections import Counter

    from cryptography.fernet import Fernet

    from bench._support import StatementCounter
    from lti_app import create_app

    redis.Redis.from_url(BROKER).flushdb()
    sender = CanvasLiveEvents().start()
    tokens, _, distinct = build_events(sender, events, users, random.Random(7))
    warm_up = [sender.sign(sender.enrollment("enrollment_created", enrollment_id=9, course_id=565, user_id=29000 + i,
                                             section_id=4811)) for i in range(threads)]
    path = "/webhooks/canvas/bench-canvas"
    statuses: Counter[str] = Counter()
    try:
        with fresh_database("webhooks_cpu") as url:
            data_key = Fernet.generate_key().decode()
            seed(url, data_key, sender.keyset_url, users)
            app = create_app({"database_url": url, "env": "test", "data_keys": [data_key], "broker_url": BROKER,
                              "log_level": "INFO"})

            def post_all(batch: list[str], ready: threading.Barrier | None) -> None:
                client = app.test_client()
                if ready is not None:
                    ready.wait()
                for token in batch:
                    resp = client.post(path, data=token, content_type="application/jwt")
                    statuses[str(resp.get_json().get("status", resp.status_code))] += 1

            def run(all_tokens: list[str]) -> tuple[float, float]:
                ready = threading.Barrier(threads + 1)
                workers = [threading.Thread(target=post_all, args=(all_tokens[i::threads], ready))
                           for i in range(threads)]
                for w in workers:
                    w.start()
                ready.wait()
                c0, w0 = time.process_time(), time.perf_counter()
                for w in workers:
                    w.join()
                return time.process_time() - c0, time.perf_counter() - w0

            run(warm_up)  # key set fetched, statements compiled, pool filled
            statuses.clear()
            statements = StatementCounter(app.extensions["caseload.engine"])
            cpu, wall = run(tokens)
            app.extensions["caseload.engine"].dispose()
    finally:
        sender.stop()
        redis.Redis.from_url(BROKER).flushdb()
    print(f"machine: {machine()}")
    print(f"in-process: {len(tokens)} events ({distinct} distinct), {threads} threads posting; "
          f"responses: {dict(statuses)}")
    print(f"CPU per event: {cpu / len(tokens) * 1000:.2f} ms   SQL statements per event: "
          f"{statements.n / len(tokens):.2f}   wall: {len(tokens) / wall:.0f} events/s on this process alone")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=48, help="concurrent connections of the load generator")
    ap.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker (gthread)")
    ap.add_argument("--worker-class", default="gthread",
                    help="gunicorn worker class: gthread (recommended) or gevent (pip install gevent; not adopted)")
    ap.add_argument("--worker-nice", type=int, default=10,
                    help="run the Celery worker at this nice level (README: acknowledging comes before applying)")
    ap.add_argument("--port", type=int, default=5078)
    ap.add_argument("--setup", choices=("documented", "lean"), default="documented",
                    help="gunicorn and worker as the README documents them (workers, access log, INFO), or the old lean one")
    ap.add_argument("--in-process", action="store_true", help="test client in this process: CPU per event")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.events if args.events != 20000 else 6000, args.users, args.threads)
        return
    rng = random.Random(7)
    base = f"http://127.0.0.1:{args.port}"
    redis.Redis.from_url(BROKER).flushdb()
    sender = CanvasLiveEvents().start()
    print(f"signing {args.events} events ...", flush=True)
    tokens, expected, distinct = build_events(sender, args.events, args.users, rng)
    with fresh_database("webhooks") as url:
        from cryptography.fernet import Fernet

        data_key = Fernet.generate_key().decode()
        documented = args.setup == "documented"
        env = {**os.environ, "CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": url, "CASELOAD_BASE_URL": base,
               "CASELOAD_SECRET_KEY": "bench-secret-" + "x" * 40, "CASELOAD_DATA_KEYS": data_key,
               "CASELOAD_BROKER_URL": BROKER, "CASELOAD_LOG_LEVEL": "INFO" if documented else "WARNING",
               "CASELOAD_THREADS": str(args.threads)}
        seed(url, data_key, sender.keyset_url, args.users)
        web_cmd = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-k", args.worker_class,
                   "--worker-connections", "200", "-b", f"127.0.0.1:{args.port}"]
        if not documented:
            web_cmd += ["-w", "2", "--log-level", "warning", "--access-logfile", "/dev/null"]
        web_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - counted and closed once the processes stopped
        worker_log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        server = subprocess.Popen([*web_cmd, "lti_app:create_app()"], env=env, cwd=ROOT, stdout=web_log)
        worker = subprocess.Popen(
            ["nice", "-n", str(args.worker_nice), sys.executable, "-m", "celery", "-A", "lti_app.celery_worker",
             "worker", "--concurrency", "2", "--loglevel", "INFO" if documented else "WARNING",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            env=env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT)
        engine = create_engine(url)
        try:
            wait_until_healthy(base)
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
                fh.write("\n".join(tokens) + "\n")
                bodies_file = fh.name
            started = time.perf_counter()
            out = subprocess.run(["node", str(ROOT / "bench" / "js" / "post_burst.mjs"),
                                  f"{base}/webhooks/canvas/bench-canvas", bodies_file, str(args.clients),
                                  "application/jwt"], capture_output=True, text=True, check=True)
            burst = time.perf_counter() - started
            summary = json.loads(out.stdout)
            os.unlink(bodies_file)
            statuses = summary["statuses"]
            failures = summary["examples"] if summary["failures"] else []
            burst_end = time.perf_counter()
            with engine.connect() as conn:
                while True:
                    left = conn.execute(text("SELECT count(*) FROM inbound_events WHERE status IN "
                                             "('pending', 'waiting')")).scalar_one()
                    conn.commit()
                    if left == 0 or time.perf_counter() - burst_end > 300:
                        break
                    time.sleep(0.05)
            drain = time.perf_counter() - burst_end
            from lti_app.models import Enrollment, InboundEvent

            with engine.connect() as conn:
                by_status = dict(conn.execute(select(InboundEvent.status, func.count()).group_by(
                    InboundEvent.status)).all())
                multi = conn.execute(select(func.count()).where(InboundEvent.attempts != 1)).scalar_one()
                stored = conn.execute(select(func.count()).select_from(InboundEvent)).scalar_one()
                rows = conn.execute(text("SELECT p.lms_user_id, e.state FROM enrollments e JOIN persons p "
                                         "ON p.id = e.person_id")).all()
            final = {r[0]: r[1] for r in rows}
            wrong = sum(1 for user, state in expected.items() if final.get(user) != state)
            del Enrollment
        finally:
            server.terminate()
            worker.terminate()
            server.wait(20)
            worker.wait(30)
            engine.dispose()
            sender.stop()
            web_log.seek(0)
            worker_log.seek(0)
            web_lines, worker_lines = sum(1 for _ in web_log), sum(1 for _ in worker_log)
            web_log.close()
            worker_log.close()
    print(f"machine: {machine()}")
    workers = (f"{os.environ.get('CASELOAD_WORKERS') or 2 * (os.cpu_count() or 1)} workers"
               if args.setup == "documented" else "2 workers")
    described = ("README: config file, access log, INFO" if args.setup == "documented"
                 else "lean: no access log, WARNING")
    print(f"set-up: {args.setup} ({described}); log lines written: web {web_lines}, worker {worker_lines}")
    print(f"events sent: {len(tokens)} ({distinct} distinct, {len(tokens) - distinct} duplicates, "
          f"~10% out of order), {args.clients} connections (Node load generator); gunicorn {workers} x {args.threads} "
          f"threads; Celery worker concurrency 2 at nice {args.worker_nice}")
    print(f"responses: {statuses}, failures: {len(failures)} {failures[:3]}")
    print(f"accepted events/s during the burst: {len(tokens) / burst:.0f} (burst {burst:.1f} s; "
          f"load generator's own clock: {summary['seconds']:.1f} s)")
    print(f"all applied {drain:.1f} s after the burst ended")
    print(f"stored: {stored} (distinct sent: {distinct}); by status: {by_status}")
    print(f"lost: {distinct - by_status.get('applied', 0)}; applied in more than one attempt: {multi}; "
          f"enrollments whose final state differs from their newest event: {wrong} of {len(expected)}")


if __name__ == "__main__":
    main()

"""Fault injection on accommodations applied in the LMS (issue #12, "Reliability": a sweep that is killed halfway
resumes without double changes; a re-check of an unchanged district makes no writes).

A real Celery worker (``celery -A lti_app.celery_worker worker``) on a private Redis and a private PostgreSQL
(tests/support/faults.py) applies the plans of several courses against the fake Moodle web service, which answers
each call after a delay. "Apply now" queues one ``caseload.lms.reconcile_course`` per course. The worker is
SIGKILLed (with its pool processes, as the OOM killer would) at the worst moment: the fake Moodle has just stored a
save and the worker has not yet heard the answer, so the write is in the LMS and not in Caseload's ledger.

How the work resumes is how it resumes in production: the tasks are ``acks_late``, so the messages the killed worker
held stay in Redis's ``unacked`` set and Redis's transport hands them out again once the visibility timeout has
passed (``broker_resilience`` in lti_app/tasks/__init__.py: hours). The test does not wait hours: it moves the
delivery times of the unacknowledged messages back past the timeout (the clock advancing), then starts the worker
again, as the supervisor's ``Restart=always`` does; the restarted worker's first restore sweep hands them out.
Messages the worker had not fetched yet are simply still queued.

What is asserted afterwards: every plan student's timed quiz carries its time in the LMS; no value was written twice
for the same (quiz, student, value) (the fake's own log of saves); a full re-check afterwards writes nothing and adds
nothing to the ledger; the ledger records every change Caseload made exactly once, including the one whose answer
the killed worker never read, and records none as a teacher's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from tests.fault.conftest import Servers
from tests.support import faults
from tests.support.fake_moodle import FakeMoodle

pytestmark = [pytest.mark.fault, pytest.mark.xdist_group("faults")]

COURSES = 6
QUIZ_LIMITS = (1200, 1800, 2400)
"""Each course's timed quizzes (seconds); every course also has an untimed one, which needs nothing."""
RULES: tuple[tuple[str | None, int | None], ...] = (("1.5", None), ("2", None), (None, 10))
"""Each course's plan students: a multiplier or extra minutes; a fourth student has no plan."""
LATENCY = 0.12
"""Seconds the fake Moodle takes per call: a course takes about a second, so the kill lands mid-sweep."""
KILL_AT_WRITE = 8
"""The worker is killed while the fake Moodle holds the answer to this save (of 18)."""
SECRET = "fault-secret-" + "x" * 40


def _extra(rule: tuple[str | None, int | None], limit: int) -> int:
    multiplier, minutes = rule
    return limit + (int(limit * (Decimal(multiplier) - 1)) if multiplier else int(minutes or 0) * 60)


@dataclass
class LmsWorld:
    servers: Servers
    broker: faults.PrivateRedis
    url: str
    engine: Any
    app: Any
    moodle: FakeMoodle
    worker: faults.Process
    platform_id: int
    course_ids: list[int]
    expected: dict[tuple[int, int], int]
    """(Moodle quiz id, Moodle user id) -> the time limit the plan requires there."""
    kills: list[float] = field(default_factory=list)

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()

    def applied_rows(self) -> list[tuple[str, str, str, Any]]:
        with self.engine.connect() as conn:
            return [(q, u, f, (after or {}).get("value")) for q, u, f, after in conn.execute(text(
                "SELECT lms_quiz_id, lms_user_id, field, after FROM lms_action_ledger WHERE outcome = 'applied'"))]

    def lms_has_everything(self) -> bool:
        for (quiz, user), limit in self.expected.items():
            found = self.moodle.user_override(quiz, user)
            if found is None or found["timelimit"] != limit:
                return False
        return True

    def apply_now(self) -> int:
        from lti_app.services.lms_actions import admin

        with self.app.app_context():
            session = self.app.extensions["caseload.sessionmaker"]()
            try:
                return admin.apply_now(session, self.platform_id)
            finally:
                session.close()

    def recheck(self) -> list[Any]:
        """A full verification of every course, in this process: reads every quiz again."""
        from lti_app.services.lms_actions.reconcile import reconcile_course

        with self.app.app_context():
            session = self.app.extensions["caseload.sessionmaker"]()
            try:
                return [reconcile_course(session, cid, reason="manual") for cid in self.course_ids]
            finally:
                session.close()


def _seed(app: Any, moodle: FakeMoodle) -> tuple[int, list[int], dict[tuple[int, int], int]]:
    from lti_app.services.lms_actions import connections
    from tests.support import factories as f
    from tests.support.lms_world import plan_student

    expected: dict[tuple[int, int], int] = {}
    with app.app_context():
        s = app.extensions["caseload.sessionmaker"]()
        plat = f.platform(s, name="fault-moodle", lms="moodle")
        course_ids = []
        for c in range(COURSES):
            lms_course = 700 + c
            course = f.course(s, plat, f"Chemistry {c + 1}", lms_course_id=str(lms_course))
            course_ids.append(course.id)
            users = [5000 + 10 * c + k for k in range(len(RULES) + 1)]
            moodle.enrol(lms_course, *users)
            quizzes = [moodle.add_quiz(lms_course, f"Unit {q + 1} test", timelimit=limit)
                       for q, limit in enumerate(QUIZ_LIMITS)]
            moodle.add_quiz(lms_course, "Lab safety", timelimit=0)
            for k, rule in enumerate(RULES):
                multiplier, minutes = rule
                plan_student(s, plat, course, f"Fault Learner{c}{k}", str(users[k]), multiplier=multiplier,
                             extra_minutes=minutes, sis=f"F-{users[k]}")
                for quiz, limit in zip(quizzes, QUIZ_LIMITS, strict=True):
                    expected[(quiz, users[k])] = _extra(rule, limit)
            without_plan = f.person(s, plat, f"Fault Classmate{c}", lms_user_id=str(users[-1]))
            f.enroll(s, without_plan, course, "student")
        conn = connections.save_moodle(s, plat, moodle.base_url, moodle.token)
        connections.set_enabled(s, conn, True, None)
        s.commit()
        platform_id = plat.id
        s.close()
    return platform_id, course_ids, expected


@contextlib.contextmanager
def _world(servers: Servers, broker: faults.PrivateRedis, tmp_path: Path) -> Iterator[LmsWorld]:
    import redis

    from lti_app import create_app

    url = servers.copy_database("lms_faults")
    data_key = Fernet.generate_key().decode()
    redis.Redis.from_url(broker.url).flushdb()
    app = create_app({"database_url": url, "broker_url": broker.url, "env": "test", "data_keys": [data_key],
                      "secret_key": SECRET})
    moodle = FakeMoodle(latency=LATENCY).start()
    platform_id, course_ids, expected = _seed(app, moodle)
    env = faults.caseload_env(url, broker.url, data_key, SECRET, "http://127.0.0.1:9")
    worker = faults.worker(env, tmp_path / "worker.log")
    engine = create_engine(url, pool_pre_ping=True)
    world = LmsWorld(servers, broker, url, engine, app, moodle, worker, platform_id, course_ids, expected)
    try:
        with faults.running(worker):
            faults.wait_for(lambda: "ready" in worker.output(), 30, "the Celery worker being ready")
            yield world
    finally:
        moodle.after_write = None
        moodle.stop()
        engine.dispose()
        app.extensions["caseload.engine"].dispose()
        if not servers.pg.alive():
            servers.pg.start()
        if broker.proc is None:
            broker.start()


@pytest.fixture
def lms_world(servers: Servers, tmp_path: Path) -> Iterator[LmsWorld]:
    with _world(servers, servers.redis, tmp_path) as world:
        yield world


@contextlib.contextmanager
def _world_on_own_broker(servers: Servers, tmp_path: Path, *, persist: bool) -> Iterator[LmsWorld]:
    broker = faults.PrivateRedis(tmp_path / ("redis-aof" if persist else "redis-volatile"), persist=persist)
    broker.start()
    try:
        with _world(servers, broker, tmp_path) as world:
            yield world
    finally:
        broker.stop()


@pytest.fixture
def lms_world_persistent_broker(servers: Servers, tmp_path: Path) -> Iterator[LmsWorld]:
    """The same, on a Redis of its own that keeps its data through a crash (an append-only file)."""
    with _world_on_own_broker(servers, tmp_path, persist=True) as world:
        yield world


@pytest.fixture
def lms_world_volatile_broker(servers: Servers, tmp_path: Path) -> Iterator[LmsWorld]:
    """The same, on a Redis of its own without persistence: a crash loses every message it held."""
    with _world_on_own_broker(servers, tmp_path, persist=False) as world:
        yield world


def _kill_when_the_lms_holds_an_unanswered_write(world: LmsWorld, at_write: int) -> threading.Event:
    """Arm the fake Moodle: when it has stored save number ``at_write``, it holds the answer until the worker is
    dead (the test kills it meanwhile). Returns the event set when that write has landed."""
    landed, released = threading.Event(), threading.Event()
    seen = Counter[str]()
    lock = threading.Lock()

    def hold(function: str) -> None:
        with lock:
            seen[function] += 1
            mine = seen[function] == at_write
        if mine:
            landed.set()
            released.wait(30)

    world.moodle.after_write = hold
    landed.released = released  # type: ignore[attr-defined]
    return landed


def _age_unacknowledged(world: LmsWorld) -> int:
    """Move the delivery time of every message Redis holds as unacknowledged back past the visibility timeout, as
    if that much time had passed. Returns how many there were."""
    import redis

    from lti_app.tasks import broker_resilience

    timeout = broker_resilience(world.broker.url, world.app.config["CASELOAD"].reconcile_interval_seconds)[
        "broker_transport_options"]["visibility_timeout"]
    r = redis.Redis.from_url(world.broker.url)
    held = r.zrange("unacked_index", 0, -1, withscores=True)
    for tag, score in held:
        r.zadd("unacked_index", {tag: score - timeout - 60})
    return len(held)


def _settled(world: LmsWorld) -> bool:
    import redis

    r = redis.Redis.from_url(world.broker.url)
    return (world.lms_has_everything() and r.llen("celery") == 0 and r.zcard("unacked_index") == 0
            and world.scalar("SELECT count(*) FROM lms_course_backlog WHERE last_ok_at IS NOT NULL") == COURSES)


def _assert_applied_exactly_once(w: LmsWorld) -> None:
    # every plan student's timed quiz carries its time; nobody without a plan got anything
    assert w.lms_has_everything()
    plan_users = {u for _, u in w.expected}
    assert {u for _, u, _ in w.moodle.saved} <= plan_users
    # no write twice for the same (quiz, student, value); one save per quiz per run, none repeated by the resume
    writes = Counter((q, u, v["timelimit"]) for q, u, v in w.moodle.saved)
    assert [k for k, n in writes.items() if n > 1] == []
    assert w.moodle.count("mod_quiz_save_overrides") == COURSES * len(QUIZ_LIMITS)  # one per quiz, all students

    # the ledger records every change Caseload made exactly once, the interrupted one included, none as a teacher's
    ledger = Counter(w.applied_rows())
    assert [k for k, n in ledger.items() if n > 1] == []
    assert set(ledger) == {(str(q), str(u), "timelimit", v) for q, u, v in writes}
    assert w.scalar("SELECT count(*) FROM lms_action_ledger WHERE outcome <> 'applied'") == 0
    assert w.scalar("SELECT count(*) FROM lms_ledger_intents") == 0, "an intent was left unsettled"

    # a re-check afterwards makes zero writes and adds nothing to the ledger
    rows, saves = w.scalar("SELECT count(*) FROM lms_action_ledger"), len(w.moodle.saved)
    results = w.recheck()
    assert [r.status for r in results] == ["done"] * COURSES
    assert sum(r.writes for r in results) == 0
    assert len(w.moodle.saved) == saves
    assert w.scalar("SELECT count(*) FROM lms_action_ledger") == rows


def test_worker_killed_mid_sweep_between_an_lms_write_and_its_ledger_resumes_without_double_writes(
        lms_world: LmsWorld) -> None:
    w = lms_world
    landed = _kill_when_the_lms_holds_an_unanswered_write(w, KILL_AT_WRITE)
    assert w.apply_now() == COURSES

    assert landed.wait(40), "the sweep never reached the write to interrupt\n" + faults.describe([w.worker])
    w.worker.kill()
    landed.released.set()  # type: ignore[attr-defined]
    w.moodle.after_write = None
    saves_at_kill = len({(q, u) for q, u, _ in w.moodle.saved})
    ledger_at_kill = len(w.applied_rows())
    assert 0 < ledger_at_kill < len(w.expected), "the kill should land mid-sweep"
    assert saves_at_kill > ledger_at_kill, "the interrupted write is in the LMS and not yet in the ledger"

    held = _age_unacknowledged(w)
    assert held >= 1, "the killed worker's message should still be in Redis, unacknowledged"
    w.worker.start()
    try:
        faults.wait_for(lambda: _settled(w), 40, "the interrupted sweep being finished by the restarted worker",
                        every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + faults.describe([w.worker])) from None

    _assert_applied_exactly_once(w)
    assert w.worker.starts == 2


def test_database_crash_mid_sweep_after_an_lms_write_resumes_without_double_writes(lms_world: LmsWorld) -> None:
    """PostgreSQL crashes (immediate stop) right after the fake Moodle stored a save and before the worker could
    record it; it is back a few seconds later. The worker stays up: each reconcile that met the dead database is
    queued again with a growing delay (``caseload.lms.reconcile_course`` retries on ``OperationalError``) instead
    of failing, which would acknowledge its message and leave its course to the next night."""
    w = lms_world
    pg = w.servers.pg
    crashed = threading.Event()
    seen = Counter[str]()
    lock = threading.Lock()

    def crash(function: str) -> None:
        with lock:
            seen[function] += 1
            mine = seen[function] == KILL_AT_WRITE
        if mine:
            pg.crash()
            crashed.set()

    w.moodle.after_write = crash
    assert w.apply_now() == COURSES
    assert crashed.wait(40), "the sweep never reached the write to interrupt\n" + faults.describe([w.worker])
    w.moodle.after_write = None
    time.sleep(2.0)
    pg.start()
    try:
        faults.wait_for(lambda: _settled(w), 40, "the sweep being finished after the database came back", every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + faults.describe([w.worker])) from None

    _assert_applied_exactly_once(w)
    assert w.worker.running() and w.worker.starts == 1, "the worker had to be restarted"
    assert "the database could not be reached; retrying" in w.worker.output()


def test_broker_crash_mid_sweep_worker_survives_and_every_course_is_applied_once(
        lms_world_persistent_broker: LmsWorld) -> None:
    """Redis is SIGKILLed while the worker is in the middle of a course (the fake Moodle holds the answer to a save
    it stored) and restarted 2 s later from its append-only file. The worker is not restarted: the reconciles it
    was running run to their end (they need the LMS and the database, not Redis), it reconnects by itself and takes
    the courses still queued. A message left unacknowledged by the lost connection is handed out again after the
    visibility timeout (moved back here, as in the kill test); running again, it writes and records nothing.
    (Without persistence the queued messages are lost with Redis's data; the next test shows the beat job queuing
    those courses again from their requests in PostgreSQL.)"""
    w = lms_world_persistent_broker
    landed = _kill_when_the_lms_holds_an_unanswered_write(w, KILL_AT_WRITE)
    assert w.apply_now() == COURSES
    assert landed.wait(40), "the sweep never reached the write to interrupt\n" + faults.describe([w.worker])
    w.broker.crash()
    landed.released.set()  # type: ignore[attr-defined]
    w.moodle.after_write = None
    time.sleep(2.0)
    w.broker.start()
    faults.wait_for(lambda: w.worker.output().count("Connected to") >= 2, 30, "the worker reconnecting to Redis")
    # the reconciles that ran through the outage come back once the visibility timeout has passed
    faults.wait_for(lambda: _age_unacknowledged(w) == 0 and _settled(w), 40,
                    "the sweep being finished after Redis came back", every=0.5)

    _assert_applied_exactly_once(w)
    assert w.worker.running() and w.worker.starts == 1, "the worker had to be restarted"


def test_broker_crash_without_persistence_mid_sweep_the_beat_job_queues_the_lost_courses_again_applied_once(
        lms_world_volatile_broker: LmsWorld) -> None:
    """Redis (no persistence) is SIGKILLed mid-sweep and restarted empty: the queued courses' messages are gone. Each
    request was recorded in PostgreSQL before it was queued (``services/lms_actions/requests``); the course the worker
    was running finishes and clears its own; once the others are older than ``requests.STALE`` (moved back here, as
    the clock advancing), the 5-minute beat job (``caseload.lms.enrollments``) queues them again, and every course is
    applied once."""
    from lti_app.services.dispatch import LMS_ENROLLMENTS
    from lti_app.services.lms_actions import requests

    w = lms_world_volatile_broker
    landed = _kill_when_the_lms_holds_an_unanswered_write(w, KILL_AT_WRITE)
    assert w.apply_now() == COURSES
    assert w.scalar("SELECT count(*) FROM lms_course_backlog WHERE requested_at IS NOT NULL") == COURSES
    assert landed.wait(40), "the sweep never reached the write to interrupt\n" + faults.describe([w.worker])
    w.broker.crash()
    landed.released.set()  # type: ignore[attr-defined]
    w.moodle.after_write = None
    time.sleep(2.0)
    w.broker.start()
    faults.wait_for(lambda: w.worker.output().count("Connected to") >= 2, 30, "the worker reconnecting to Redis")
    faults.wait_for(lambda: w.scalar("SELECT count(*) FROM lms_course_backlog WHERE last_ok_at IS NOT NULL") >= 1,
                    30, "the course the worker was running being finished")
    assert not w.lms_has_everything(), "the queued courses should have been lost with Redis's data"
    with w.engine.begin() as conn:
        conn.execute(text("UPDATE lms_course_backlog SET requested_at = requested_at - make_interval(secs => :s)"),
                     {"s": requests.STALE.total_seconds() + 60})
    w.app.extensions["celery"].send_task(LMS_ENROLLMENTS)
    try:
        faults.wait_for(lambda: _settled(w), 40, "the lost courses being queued again by the beat job", every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + faults.describe([w.worker])) from None

    _assert_applied_exactly_once(w)
    assert w.scalar("SELECT count(*) FROM lms_course_backlog WHERE requested_at IS NOT NULL") == 0
    assert w.worker.running() and w.worker.starts == 1

"""Fault injection on the production set-up: gunicorn, a Celery worker and beat on a private PostgreSQL and a
private Redis, during a burst of signed Canvas Live Events. Each test breaks one thing mid-burst — the broker, the
database, the worker, a web worker — and then asserts what an LMS and a district rely on: every event the LMS sent is
stored once, each is applied exactly once (``attempts == 1``), the enrollments end in the state of each user's newest
event, and all of it within a bounded wait after the fault ends. The LMS's side is played by a sender that retries
what was not acknowledged (``Retry-After`` honoured, capped), as Canvas and the Moodle plugin do.

The servers are private (tests/support/faults.py): the machine's PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from tests.fault.conftest import Servers
from tests.support import faults
from tests.support.lms_events import CanvasLiveEvents

pytestmark = [pytest.mark.fault, pytest.mark.xdist_group("faults")]

USERS = 60
EVENTS_PER_USER = 5
STATES = ["active", "inactive", "completed", "active", "deleted"]
SETTLE_SECONDS = 60.0
"""Bound on the wait, after the fault is over and the last event was acknowledged, for every event to be applied
(the beat drains due events every second here, so a lost kick costs about a second)."""


@dataclass
class Burst:
    """Signed events, in the order an LMS would send them, and the state each user must end in."""

    tokens: list[str]
    expected: dict[str, str]


def build_burst(sender: CanvasLiveEvents) -> Burst:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    tokens: list[str] = []
    expected: dict[str, str] = {}
    for seq in range(EVENTS_PER_USER):
        for u in range(USERS):
            user = 40000 + u
            state = STATES[(seq + u) % len(STATES)] if seq else "active"
            payload = sender.enrollment("enrollment_created" if seq == 0 else "enrollment_updated",
                                        enrollment_id=user, course_id=565, user_id=user, section_id=4811, state=state,
                                        when=t0 + dt.timedelta(seconds=seq * 60 + u / USERS),
                                        user_name=f"Fault Learner {user}")
            tokens.append(sender.sign(payload))
            expected[str(user)] = {"completed": "inactive"}.get(state, state)
    return Burst(tokens, expected)


@dataclass
class Sender:
    """The LMS: posts every event, resends what was not acknowledged (connection refused or reset, 5xx), honouring
    ``Retry-After`` (capped at half a second to keep the test short). Bounded in time."""

    url: str
    tokens: list[str]
    threads: int = 6
    deadline_seconds: float = 120.0
    sent: int = 0
    acknowledged: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    unacknowledged: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    gates: dict[int, threading.Event] = field(default_factory=dict)
    """index -> event: the events from that index on are sent only once the gate is open (the test opens it when
    the fault has begun, or is over), so that the burst surely spans before, during and after each fault."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def _take(self, stop_at: float) -> int | None:
        with self._lock:
            if self._next >= len(self.tokens):
                return None
            index = self._next
            gate = self.gates.get(index)
            if gate is None or gate.is_set():
                self._next += 1
                return index
        gate.wait(max(0.0, stop_at - time.monotonic()))
        return self._take(stop_at) if gate.is_set() else None

    def attempts(self) -> int:
        return self.sent + sum(self.errors.values())

    def _post_until_acknowledged(self, session: requests.Session, index: int, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            try:
                resp = session.post(self.url, data=self.tokens[index], timeout=10,
                                    headers={"Content-Type": "application/jwt"})
            except requests.RequestException as exc:
                with self._lock:
                    self.errors[type(exc).__name__] += 1
                time.sleep(0.1)
                continue
            with self._lock:
                self.statuses[resp.status_code] += 1
                self.sent += 1
            if resp.status_code == 202:
                with self._lock:
                    self.acknowledged += 1
                return
            if resp.status_code == 503 and not resp.headers.get("Retry-After"):
                with self._lock:
                    self.unavailable_without_retry_after += 1
            if resp.status_code < 500:
                with self._lock:
                    self.refused.append(f"event {index} refused with {resp.status_code}: {resp.text[:300]}")
                return
            time.sleep(min(float(resp.headers.get("Retry-After", "0.2")), 0.5))
        with self._lock:
            self.unacknowledged.append(index)

    def run(self) -> None:
        stop_at = time.monotonic() + self.deadline_seconds

        def loop() -> None:
            with requests.Session() as session:
                while (index := self._take(stop_at)) is not None:
                    self._post_until_acknowledged(session, index, stop_at)

        pool = [threading.Thread(target=loop, daemon=True) for _ in range(self.threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(self.deadline_seconds + 15)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


@dataclass
class World:
    servers: Servers
    database_url: str
    engine: Any
    web: faults.Process
    worker: faults.Process
    beat: faults.Process
    base_url: str
    burst: Burst
    canvas: CanvasLiveEvents

    @property
    def processes(self) -> tuple[faults.Process, ...]:
        return (self.web, self.worker, self.beat)

    def count(self, where: str = "") -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM inbound_events " + where)).scalar_one())

    def run_burst(self, *fault_list: Fault) -> Sender:
        """Send the burst in ``2 * len(fault_list) + 1`` parts: part 0 with everything working; then, for each fault,
        break something, send the next part while it is broken (for at least ``fault.seconds``), repair it, and send
        the part after. Returns once the LMS has sent every event (and resent what was not acknowledged)."""
        parts = 2 * len(fault_list) + 1
        bounds = [len(self.burst.tokens) * k // parts for k in range(1, parts)]
        gates = {b: threading.Event() for b in bounds}
        sender = Sender(f"{self.base_url}/webhooks/canvas/fault-canvas", self.burst.tokens, gates=gates)
        thread = sender.start()
        for i, fault in enumerate(fault_list):
            before, during = bounds[2 * i], bounds[2 * i + 1]
            faults.wait_for(lambda n=before: sender.acknowledged >= n or bool(sender.refused), 60,
                            f"part {2 * i} being acknowledged")
            assert not sender.refused, sender.refused[:3]
            fault.down(self)
            started, attempts = time.monotonic(), sender.attempts()
            gates[before].set()
            faults.wait_for(lambda s=started, a=attempts, f=fault: time.monotonic() - s >= f.seconds
                            and sender.attempts() > a, fault.seconds + 30, "the LMS sending during the fault",
                            every=0.1)
            fault.up(self)
            gates[during].set()
        thread.join(sender.deadline_seconds + 30)
        assert not sender.refused, sender.refused[:3]
        assert not sender.unacknowledged, (f"{len(sender.unacknowledged)} events never acknowledged; statuses "
                                           f"{dict(sender.statuses)}, errors {dict(sender.errors)}\n"
                                           + faults.describe(self.processes))
        return sender

    def assert_all_applied_once(self, sender: Sender) -> None:
        distinct = len(set(self.burst.tokens))
        try:
            faults.wait_for(lambda: self.count("WHERE status = 'applied'") == distinct, SETTLE_SECONDS,
                            f"all {distinct} events being applied", every=0.2)
        except AssertionError as exc:
            by_status = self._by_status()
            raise AssertionError(f"{exc}: {by_status}; worker running: {self.worker.running()}\n"
                                 + faults.describe(self.processes)) from None
        assert self.count() == distinct, "an event was stored twice (or an unknown one appeared)"
        assert self.count("WHERE attempts <> 1") == 0, "an event was applied more than once"
        with self.engine.connect() as conn:
            final = dict(conn.execute(text(
                "SELECT p.lms_user_id, e.state FROM enrollments e JOIN persons p ON p.id = e.person_id")).all())
        wrong = {u: (final.get(u), s) for u, s in self.burst.expected.items() if final.get(u) != s}
        assert not wrong, f"enrollments not in the state of their newest event: {list(wrong.items())[:5]}"
        assert sender.unavailable_without_retry_after == 0, "a 503 came without Retry-After"
        for p in (self.web, self.worker, self.beat):
            assert p.running(), f"{p.name} exited\n" + faults.describe(self.processes)

    def _by_status(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(text("SELECT status, count(*) FROM inbound_events GROUP BY status")).all())


def _seed(database_url: str, data_key: str, keyset_url: str) -> None:
    from lti_app import create_app
    from tests.support import factories as f

    app = create_app({"database_url": database_url, "env": "test", "data_keys": [data_key],
                      "secret_key": "fault-secret-" + "x" * 40})
    with app.app_context():
        session = app.extensions["caseload.sessionmaker"]()
        plat = f.platform(session, name="fault-canvas", lms="canvas", live_events_keyset_url=keyset_url,
                          canvas_root_account_uuid=CanvasLiveEvents.root_account_uuid)
        course = f.course(session, plat, "Biology 9", lms_course_id="565")
        f.section(session, course, "4811", "Period 1")
        for u in range(USERS):
            f.person(session, plat, f"Fault Learner{u}", lms_user_id=str(40000 + u))
        session.commit()
        session.close()
    app.extensions["caseload.engine"].dispose()


@pytest.fixture
def world(servers: Servers, tmp_path: Path) -> Iterator[World]:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    admin = create_engine(servers.pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{servers.template}"'))
    admin.dispose()
    url = servers.pg.url(name)
    data_key = Fernet.generate_key().decode()
    canvas = CanvasLiveEvents().start()
    _seed(url, data_key, canvas.keyset_url)
    import redis

    redis.Redis.from_url(servers.redis.url).flushdb()
    port = faults.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = faults.caseload_env(url, servers.redis.url, data_key, "fault-secret-" + "x" * 40, base_url,
                              CASELOAD_INBOX_POLL_SECONDS="1", CASELOAD_INBOX_RETRY_BASE_SECONDS="1")
    web = faults.web(env, port, tmp_path / "web.log")
    worker = faults.worker(env, tmp_path / "worker.log")
    beat = faults.beat(env, tmp_path, tmp_path / "beat.log")
    engine = create_engine(url, pool_pre_ping=True)
    w = World(servers, url, engine, web, worker, beat, base_url, build_burst(canvas), canvas)
    with faults.running(web, worker, beat):
        faults.wait_for(lambda: requests.get(base_url + "/healthz", timeout=1).ok, 30, "the web server answering")
        faults.wait_for(lambda: "ready" in worker.output(), 30, "the Celery worker being ready")
        yield w
    engine.dispose()
    canvas.stop()
    if not servers.pg.alive():
        servers.pg.start()
    if servers.redis.proc is None:
        servers.redis.start()


# ---------------------------------------------------------------------------------------------------------------
# The faults
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    down: Callable[[World], None]
    up: Callable[[World], None]
    seconds: float


def _redis_outage(seconds: float) -> Fault:
    return Fault(lambda w: w.servers.redis.crash(), lambda w: w.servers.redis.start(), seconds)


def _kill_a_web_worker(w: World) -> None:
    pids = faults.gunicorn_workers(w.web.pid)
    assert pids, "gunicorn has no workers"
    os.kill(pids[0], 9)
    w.killed = pids  # type: ignore[attr-defined]


def _web_worker_replaced(w: World) -> None:
    killed = w.killed  # type: ignore[attr-defined]
    faults.wait_for(lambda: len(set(faults.gunicorn_workers(w.web.pid)) - {killed[0]}) >= len(killed), 30,
                    "gunicorn replacing the killed worker")


def test_broker_outage_mid_burst_worker_survives_and_every_event_is_applied_once(world: World) -> None:
    sender = world.run_burst(_redis_outage(4.0))
    world.assert_all_applied_once(sender)
    assert world.worker.starts == 1, "the worker had to be restarted"
    assert world.worker.output().count("Connected to") >= 2, "the worker did not reconnect to the broker"
    web_log = world.web.output()
    refused = web_log.count("could not ask for an inbox drain")
    # One line per web process that tried during the outage (2 processes), and one when the broker is back.
    assert 1 <= refused <= 2, "a refused kick is logged once per outage and process\n" + web_log[-3000:]
    assert 1 <= web_log.count("the broker takes inbox drains again") <= refused
    assert "Traceback" not in web_log, "a refused kick logged a traceback\n" + web_log[-3000:]


def test_two_broker_outages_mid_burst_worker_survives(world: World) -> None:
    sender = world.run_burst(_redis_outage(2.0), _redis_outage(2.0))
    world.assert_all_applied_once(sender)
    assert world.worker.starts == 1, "the worker had to be restarted"


def test_database_crash_and_stop_mid_burst_answer_503_with_retry_after_and_apply_everything_once(world: World) -> None:
    pg = world.servers.pg
    sender = world.run_burst(Fault(lambda w: pg.crash(), lambda w: pg.start(), 3.0),
                             Fault(lambda w: pg.stop(), lambda w: pg.start(), 2.0))
    assert sender.statuses[503] > 0, f"the database outage was never answered 503: {dict(sender.statuses)}"
    world.assert_all_applied_once(sender)
    assert world.worker.starts == 1, "the worker had to be restarted"


def test_worker_killed_mid_burst_restarted_applies_every_event_once(world: World) -> None:
    # The restart is what the supervisor's Restart=always does (config/systemd/caseload-worker.service).
    sender = world.run_burst(Fault(lambda w: w.worker.kill(), lambda w: w.worker.start(), 2.0))
    world.assert_all_applied_once(sender)
    assert world.worker.starts == 2


def test_web_worker_killed_mid_burst_every_event_is_stored_once_and_applied_once(world: World) -> None:
    sender = world.run_burst(Fault(_kill_a_web_worker, _web_worker_replaced, 0.5))
    world.assert_all_applied_once(sender)

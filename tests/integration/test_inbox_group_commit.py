"""Group commit of pushed events on PostgreSQL (``services/webhooks.GroupWriter``): requests that arrive while a
write is in flight are stored together in the next write, each request learns its own row id (or that it was a
duplicate), and an error reaches every request of its group and nobody else."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from lti_app.db import utcnow
from lti_app.models import InboundEvent
from lti_app.services.roster.webhooks import GroupWriter, WebhookRefused
from tests.support import factories as f


def _params(platform_id: int, key: str) -> dict[str, Any]:
    now = utcnow()
    return {"platform_id": platform_id, "source": "canvas", "event_type": "enrollment_created", "dedupe_key": key,
            "received_at": now, "event_time": now, "payload": {"key": key}, "status": "pending", "attempts": 0,
            "next_attempt_at": now, "last_error": None}


@pytest.fixture
def platform_id(db_session: Any) -> int:
    plat = f.platform(db_session, name="group-canvas", lms="canvas")
    db_session.commit()
    return int(plat.id)


def _count_inserts(engine: Any) -> list[int]:
    """Rows per INSERT INTO inbound_events statement sent to the server."""
    sizes: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.startswith("INSERT INTO inbound_events"):
            sizes.append(len(json.loads(params[0])))  # one JSON array of rows

    return sizes


def test_requests_arriving_during_a_write_are_stored_together_and_each_gets_its_answer(app, db_session,
                                                                                      platform_id, monkeypatch):
    engine = app.extensions["caseload.engine"]
    writer = GroupWriter()
    first_write_started, release_first_write = threading.Event(), threading.Event()
    real_write = GroupWriter._write

    def slow_first_write(engine_: Any, group: list[Any]) -> None:
        if not first_write_started.is_set():
            first_write_started.set()
            assert release_first_write.wait(10)
        real_write(engine_, group)

    monkeypatch.setattr(GroupWriter, "_write", staticmethod(slow_first_write))
    sizes = _count_inserts(engine)
    answers: dict[int, int | None] = {}

    def store(i: int, key: str) -> None:
        answers[i] = writer.store(engine, _params(platform_id, key))

    leader = threading.Thread(target=store, args=(0, "key-0"))
    leader.start()
    assert first_write_started.wait(10)
    # While the first write is held, 12 more requests arrive: 10 new keys, and key-3 three times.
    keys = [f"key-{n}" for n in range(1, 11)] + ["key-3", "key-3"]
    others = [threading.Thread(target=store, args=(i, key)) for i, key in enumerate(keys, start=1)]
    for t in others:
        t.start()
    for _ in range(200):
        with writer._lock:
            if len(writer._queue) == len(keys):
                break
        threading.Event().wait(0.01)
    release_first_write.set()
    for t in [leader, *others]:
        t.join(10)

    # The first request alone, then everyone who came meanwhile in one statement (10 distinct keys of 12).
    assert sizes == [1, 10]
    stored = dict(db_session.execute(select(InboundEvent.dedupe_key, InboundEvent.id)).all())
    assert sorted(stored) == sorted(f"key-{n}" for n in range(11))
    assert answers[0] == stored["key-0"]
    for i, key in enumerate(keys, start=1):
        if key == "key-3" and i > 10:
            assert answers[i] is None  # the same key again in the same group: a duplicate
        else:
            assert answers[i] == stored[key]


def test_an_already_stored_key_is_a_duplicate(app, db_session, platform_id):
    engine = app.extensions["caseload.engine"]
    writer = GroupWriter()
    first = writer.store(engine, _params(platform_id, "again"))
    assert first is not None
    assert writer.store(engine, _params(platform_id, "again")) is None
    assert db_session.scalar(select(func.count()).select_from(InboundEvent)) == 1


def test_a_failed_write_fails_its_whole_group_and_the_next_group_is_written(app, db_session, platform_id,
                                                                            monkeypatch):
    engine = app.extensions["caseload.engine"]
    writer = GroupWriter()
    real_write = GroupWriter._write
    calls = []

    def failing_once(engine_: Any, group: list[Any]) -> None:
        calls.append(len(group))
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        real_write(engine_, group)

    monkeypatch.setattr(GroupWriter, "_write", staticmethod(failing_once))
    with pytest.raises(OperationalError):
        writer.store(engine, _params(platform_id, "lost-1"))
    assert writer.store(engine, _params(platform_id, "kept-1")) is not None
    keys = set(db_session.scalars(select(InboundEvent.dedupe_key)))
    assert keys == {"kept-1"}  # nothing of the failed group was acknowledged or stored
    assert not writer._writing and not writer._queue


def test_a_row_jsonb_cannot_hold_is_refused_alone_before_it_joins_a_group(app, db_session, platform_id):
    engine = app.extensions["caseload.engine"]
    writer = GroupWriter()
    bad = _params(platform_id, "bad")
    bad["payload"] = {"score": float("nan")}
    with pytest.raises(WebhookRefused) as refused:
        writer.store(engine, bad)
    assert refused.value.status == 400
    assert writer._queue == [] and not writer._writing
    assert writer.store(engine, _params(platform_id, "good")) is not None
    db_session.expire_all()
    assert db_session.scalars(select(InboundEvent.dedupe_key)).all() == ["good"]


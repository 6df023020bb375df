"""With a broker, accepted webhooks are applied by a real Celery worker on Redis (not in the request)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import redis
from sqlalchemy import select

from lti_app.models import Enrollment, InboundEvent
from tests.conftest import TEST_DATA_KEY, TEST_SECRET
from tests.support import factories as f
from tests.support.lms_events import CanvasLiveEvents

BROKER = os.environ.get("CASELOAD_TEST_REDIS_URL_WEBHOOKS", "redis://127.0.0.1:6379/12")


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"broker_url": BROKER}


@pytest.mark.xdist_group("redis")
def test_worker_applies_accepted_canvas_events(app, client, db_session, pg_database_url):
    _redis_or_skip()
    redis.Redis.from_url(BROKER).flushdb()
    canvas = CanvasLiveEvents().start()
    plat = f.platform(db_session, name="district-canvas", lms="canvas", live_events_keyset_url=canvas.keyset_url,
                      canvas_root_account_uuid=canvas.root_account_uuid)
    course = f.course(db_session, plat, "Biology 9", lms_course_id="565")
    students = [f.person(db_session, plat, f"Student {i}", lms_user_id=str(3000 + i)) for i in range(5)]
    db_session.commit()
    env = {**os.environ, "CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": pg_database_url,
           "CASELOAD_BROKER_URL": BROKER, "CASELOAD_SECRET_KEY": TEST_SECRET, "CASELOAD_DATA_KEYS": TEST_DATA_KEY}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "lti_app.celery_worker", "worker", "--pool",
                               "solo", "--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat",
                               "--without-gossip", "--without-mingle"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        for i, student in enumerate(students):
            payload = canvas.enrollment("enrollment_created", enrollment_id=700 + i, course_id=565,
                                        user_id=int(student.lms_user_id), section_id=4811,
                                        when=t0 + dt.timedelta(seconds=i))
            resp = client.post("/webhooks/canvas/district-canvas", data=canvas.sign(payload),
                               content_type="application/jwt")
            assert resp.status_code == 202
        # With a broker the request only stores and acknowledges; the worker applies.
        deadline = time.monotonic() + 60
        applied = 0
        while time.monotonic() < deadline:
            db_session.expire_all()
            applied = len(list(db_session.scalars(select(InboundEvent).where(InboundEvent.status == "applied"))))
            if applied == len(students):
                break
            time.sleep(0.2)
        assert applied == len(students), "the worker did not apply the events within 60 s"
        active = db_session.scalars(select(Enrollment).where(Enrollment.course_id == course.id,
                                                             Enrollment.state == "active")).all()
        assert len(active) == len(students)
    finally:
        worker.terminate()
        worker.wait(20)
        canvas.stop()

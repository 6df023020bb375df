"""A real Celery worker on Redis runs the same tasks the embedded mode runs in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import select

from lti_app.models import SyncRun
from tests.conftest import TEST_DATA_KEY, TEST_SECRET

BROKER = os.environ.get("CASELOAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.mark.xdist_group("redis")
def test_worker_on_redis_applies_a_queued_task(app, db_session, pg_database_url):
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")
    redis.Redis.from_url(BROKER).flushdb()
    from tests.support import factories as f

    plat = f.platform(db_session)
    # The roster URL points at a closed port: the worker's reconcile records a failed run with its reason.
    course = f.course(db_session, plat, "Algebra I", nrps_url="http://127.0.0.1:9/memberships")
    db_session.commit()
    env = {**os.environ, "CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": pg_database_url,
           "CASELOAD_BROKER_URL": BROKER, "CASELOAD_SECRET_KEY": TEST_SECRET, "CASELOAD_DATA_KEYS": TEST_DATA_KEY}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "lti_app.celery_worker", "worker", "--pool", "solo",
                               "--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip",
                               "--without-mingle"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        from celery import Celery

        sender = Celery(broker=BROKER)
        sender.send_task("caseload.reconcile.course", args=(course.id, "schedule"))
        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline and (run is None or run.status == "running"):
            db_session.expire_all()
            run = db_session.scalars(select(SyncRun).where(SyncRun.course_id == course.id)).first()
            if run is None or run.status == "running":
                time.sleep(0.2)
        assert run is not None, "the worker did not run the task within 60 s"
        assert run.status == "failed" and run.error
    finally:
        worker.terminate()
        worker.wait(20)

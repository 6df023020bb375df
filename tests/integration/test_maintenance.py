"""Expired launch state and nonces are purged; live ones stay."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from lti_app.models import LaunchStateEntry, UsedNonce
from lti_app.services.launch.state import purge_launch_state
from tests.support import factories as f


def test_purge_removes_only_expired_rows(app, db_session):
    now = dt.datetime.now(dt.UTC)
    plat = f.platform(db_session)
    db_session.add_all([
        LaunchStateEntry(key="old", value={"v": 1}, expires_at=now - dt.timedelta(minutes=1)),
        LaunchStateEntry(key="live", value={"v": 1}, expires_at=now + dt.timedelta(minutes=5)),
        UsedNonce(platform_id=plat.id, nonce="n-old", expires_at=now - dt.timedelta(seconds=1)),
        UsedNonce(platform_id=plat.id, nonce="n-live", expires_at=now + dt.timedelta(hours=1)),
    ])
    db_session.commit()
    assert purge_launch_state(db_session, now) == 2
    assert db_session.scalar(select(func.count()).select_from(LaunchStateEntry)) == 1
    assert db_session.scalars(select(UsedNonce.nonce)).all() == ["n-live"]
    assert "purge-launch-state" in app.extensions["celery"].conf.beat_schedule

"""The kick (a web request asking for an inbox drain after storing an event) when the broker refuses: the request
neither fails nor waits, and the outage is logged once per process, not once per event with a traceback."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from lti_app.services.roster import inbox
from tests.support.faults import free_port


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"broker_url": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there


@pytest.fixture(autouse=True)
def fresh_kicker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox, "_kicker", inbox._Kicker())


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_kicks_to_a_refusing_broker_log_one_line_and_never_raise(app, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="lti_app.services.roster.inbox")
    started = time.monotonic()
    for _ in range(200):
        inbox.kick()
    elapsed = time.monotonic() - started
    refusals = [r for r in caplog.records if "could not ask for an inbox drain" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
    assert refusals[0].exc_info is None, "a refused kick is logged without a traceback"
    assert elapsed < 3.0, f"200 kicks took {elapsed:.1f} s: requests would wait on the dead broker"


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_kicks_inside_the_interval_arm_one_trailing_drain(app, monkeypatch) -> None:
    sent: list[float] = []
    monkeypatch.setattr(inbox, "enqueue", lambda name, **kw: sent.append(time.monotonic()))
    for _ in range(50):
        inbox.kick()
    assert len(sent) == 1, "the first kick is sent at once, the others wait for the interval"
    timer = inbox._kicker.timer
    assert timer is not None
    timer.join(2)
    assert len(sent) == 2, "one trailing drain after the interval, for the events committed meanwhile"
    assert sent[1] - sent[0] >= inbox.KICK_INTERVAL * 0.9

"""Redis's visibility timeout against the delays the LMS tasks are queued with: a message waiting for its countdown
must never be handed to a second worker (issue #12 reliability; ``broker_resilience``)."""

from __future__ import annotations

import pytest

from lti_app.tasks import broker_resilience
from lti_app.tasks.lms_actions import LMS_RETRY_MAX_SECONDS, LONGEST_COUNTDOWN_SECONDS, SWEEP_SPREAD_SECONDS


@pytest.mark.parametrize("interval", [60, 1800, 3600, 21600])
def test_the_visibility_timeout_outlasts_the_lms_sweeps_spread_and_the_longest_retry(interval: int) -> None:
    options = broker_resilience("redis://127.0.0.1:6379/0", interval)["broker_transport_options"]
    assert options["visibility_timeout"] > max(SWEEP_SPREAD_SECONDS, LMS_RETRY_MAX_SECONDS, interval)
    assert LONGEST_COUNTDOWN_SECONDS >= SWEEP_SPREAD_SECONDS


def test_the_default_interval_keeps_its_visibility_timeout() -> None:
    assert broker_resilience("redis://127.0.0.1:6379/0", 21600)["broker_transport_options"]["visibility_timeout"] == 25200

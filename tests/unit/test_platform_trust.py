"""Pure parts of issue #14's platform trust: Canvas root account uuids, Live Event freshness and root account
checks, the Moodle plugin's signed test answer."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.domain.roster_events import parse_canvas
from lti_app.services.platforms.canvas_account import clean_uuid
from lti_app.services.roster.webhooks import (
    LIVE_EVENT_MAX_AGE_SECONDS,
    Pong,
    Receipt,
    WebhookRefused,
    _check_fresh,
    _check_root_account,
    _PlatformInfo,
)

UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("raw", "clean"), [
    (UUID, UUID), (f"  {UUID} ", UUID), ("$vnd.Canvas.root_account.uuid", None), ("", None), (None, None),
    (42, None), ("short", None), ("x" * 65, None), ("VicYj3cu5BIFpoZh-DVU4DZumnlBrWi1grgJEzADs", None),
])
def test_only_a_substituted_canvas_uuid_is_a_root_account(raw, clean):
    assert clean_uuid(raw) == clean


def _platform(uuid: str | None = UUID) -> _PlatformInfo:
    return _PlatformInfo(1, "district-canvas", "canvas", "active", "https://keys.example.test/jwks", None, uuid)


def _event(when: dt.datetime = NOW, **metadata: object) -> dict:
    return {"metadata": {"event_name": "enrollment_created", "event_time": when.isoformat(),
                         "root_account_uuid": UUID, **metadata},
            "body": {"type": "StudentEnrollment", "workflow_state": "active", "course_id": "1", "user_id": "2",
                     "enrollment_id": "3", "course_section_id": "4"}}


def test_the_platforms_own_root_account_is_accepted_and_any_other_refused():
    _check_root_account(_platform(), _event())
    for metadata, status in [({"root_account_uuid": "AnotherDistrictsRootAccountUuid000000000"}, 403),
                             ({"root_account_uuid": None}, 403), ({"root_account_uuid": 7}, 403)]:
        with pytest.raises(WebhookRefused) as refused:
            _check_root_account(_platform(), _event(**metadata))
        assert refused.value.status == status
    with pytest.raises(WebhookRefused) as unknown:
        _check_root_account(_platform(None), _event())
    assert unknown.value.status == 409 and "--canvas-root-account-uuid" in unknown.value.reason


def test_a_live_event_issued_more_than_a_day_ago_is_stale():
    fresh = _event(NOW - dt.timedelta(hours=23))
    _check_fresh(fresh, parse_canvas(fresh, NOW), NOW)
    old = _event(NOW - dt.timedelta(seconds=LIVE_EVENT_MAX_AGE_SECONDS + 1))
    with pytest.raises(WebhookRefused) as stale:
        _check_fresh(old, parse_canvas(old, NOW), NOW)
    assert stale.value.status == 401 and "stale" in stale.value.reason
    # iat, when the token has one, is what counts: a re-signed old token is as stale as its signature.
    replayed = {**fresh, "iat": NOW.timestamp() - 2 * 86400}
    with pytest.raises(WebhookRefused):
        _check_fresh(replayed, parse_canvas(replayed, NOW), NOW)


def test_the_signed_test_answer_names_the_platform_it_matched():
    receipt = Receipt(None, False, "ping", pong=Pong("district-moodle", "moodle", "https://moodle.district.test"))
    assert receipt.status == "ok"
    assert receipt.pong is not None and "matched platform 'district-moodle' (moodle)" in receipt.pong.message()

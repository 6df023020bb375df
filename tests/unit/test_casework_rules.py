"""Casework form validation: every problem reported at once, in plain words; typed values when valid."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.domain.casework_rules import (
    CaseworkInvalid,
    contact_input,
    crisis_input,
    meeting_input,
    referral_change,
    referral_input,
    requirement_input,
    session_input,
)

TODAY = dt.date(2026, 12, 3)


def problems(fn, *args):
    with pytest.raises(CaseworkInvalid) as exc:
        fn(*args)
    return dict(exc.value.problems)


def test_valid_contact_is_typed():
    c = contact_input({"contacted_on": "2026-12-01", "method": "phone", "direction": "out", "summary": " Called. ",
                       "follow_up_on": "2026-12-08"}, TODAY)
    assert c.contacted_on == dt.date(2026, 12, 1) and c.summary == "Called." and c.follow_up_on == dt.date(2026, 12, 8)


def test_follow_up_before_the_contact_is_refused():
    p = problems(contact_input, {"contacted_on": "2026-12-01", "method": "phone", "direction": "out", "summary": "x",
                                 "follow_up_on": "2026-11-30"}, TODAY)
    assert "before the contact" in p["follow_up_on"]


def test_contact_reports_every_problem_at_once():
    p = problems(contact_input, {"contacted_on": "2027-01-01", "method": "pigeon", "direction": "", "summary": "  "},
                 TODAY)
    assert set(p) == {"contacted_on", "method", "direction", "summary"}
    assert "future" in p["contacted_on"]


def test_dates_must_be_iso():
    assert "YYYY-MM-DD" in problems(contact_input, {"contacted_on": "12/01/2026", "method": "phone", "direction": "in",
                                                    "summary": "x"}, TODAY)["contacted_on"]


def test_notice_after_the_meeting_and_held_in_the_future_are_refused():
    p = problems(meeting_input, {"meeting_type": "iep_annual", "meets_on": "2026-11-20", "participants": "Guardian",
                                 "notice_sent_on": "2026-11-25", "status": "held"}, TODAY)
    assert "after the meeting" in p["notice_sent_on"]
    p = problems(meeting_input, {"meeting_type": "iep_annual", "meets_on": "2026-12-20", "participants": "Guardian",
                                 "status": "held"}, TODAY)
    assert "future" in p["status"]
    p = problems(meeting_input, {"meeting_type": "iep_annual", "meets_on": "2026-12-20", "participants": "Guardian",
                                 "status": "scheduled", "outcome": "Agreed"}, TODAY)
    assert "once the meeting is held" in p["outcome"]


def test_service_minutes_must_be_positive_and_sane():
    base = {"service_type": "speech_language", "period": "week", "provider_name": "Oriel", "starts_on": "2026-09-01"}
    assert "at least 1" in problems(requirement_input, {**base, "minutes": "0"})["minutes"]
    assert "check the figure" in problems(requirement_input, {**base, "minutes": "5000"})["minutes"]
    assert requirement_input({**base, "minutes": "5000", "period": "month"}).minutes == 5000
    assert "whole number" in problems(requirement_input, {**base, "minutes": "1.5"})["minutes"]
    p = problems(requirement_input, {**base, "minutes": "30", "provider_name": "", "ends_on": "2026-08-01"})
    assert "provider" in p["provider_id"] and "before the start" in p["ends_on"]


def test_session_must_fall_inside_the_service_and_not_in_the_future():
    args = (TODAY, dt.date(2026, 9, 1), dt.date(2026, 11, 30))
    ok = session_input({"held_on": "2026-11-02", "minutes": "30", "attendance": "provider_absent"}, *args)
    assert ok.attendance == "provider_absent" and ok.minutes == 30
    assert "before the service starts" in problems(session_input, {"held_on": "2026-08-31", "minutes": "30",
                                                                   "attendance": "delivered"}, *args)["held_on"]
    assert "after the service ended" in problems(session_input, {"held_on": "2026-12-01", "minutes": "30",
                                                                 "attendance": "delivered"}, *args)["held_on"]
    assert "future" in problems(session_input, {"held_on": "2026-12-04", "minutes": "30", "attendance": "delivered"},
                                TODAY, dt.date(2026, 9, 1), None)["held_on"]
    assert "more than 480" in problems(session_input, {"held_on": "2026-11-02", "minutes": "600",
                                                       "attendance": "delivered"}, *args)["minutes"]


def test_referral_states():
    assert referral_input({"referral_type": "evaluation", "referred_to": "School psychologist", "reason": "x",
                           "referred_on": "2026-12-01"}, TODAY).referral_type == "evaluation"
    assert referral_change("pending", {"status": "accepted"}) == ("accepted", "")
    assert referral_change("accepted", {"status": "done", "note": " seen "}) == ("done", "seen")
    assert "closed" in problems(referral_change, "declined", {"status": "accepted"})["status"]
    assert "already pending" in problems(referral_change, "pending", {"status": "pending"})["status"]


def test_crisis_entries_are_restricted_by_default_and_only_restricted_staff_may_restrict():
    entry = crisis_input({"occurred_on": "2026-12-01", "description": "x"}, TODAY, True)
    assert entry.visibility == "restricted"
    assert "restricted" in problems(crisis_input, {"occurred_on": "2026-12-01", "description": "x"}, TODAY,
                                    False)["visibility"]
    assert crisis_input({"occurred_on": "2026-12-01", "description": "x", "visibility": "case_team"}, TODAY,
                        False).visibility == "case_team"


# --- issue #11: evidence is corrected with a reason and removed only with a reason and a confirmation --------------

def test_ferpa_99_10_a_correction_needs_its_reason():
    from lti_app.domain.casework_rules import change_reason

    assert change_reason({"reason": "  typed 45 for 30  "}, removal=False) == "typed 45 for 30"
    with pytest.raises(CaseworkInvalid) as exc:
        change_reason({"reason": " "}, removal=False)
    assert [f for f, _ in exc.value.problems] == ["reason"]


def test_ferpa_99_10_a_removal_needs_a_reason_and_a_ticked_confirmation():
    from lti_app.domain.casework_rules import change_reason

    with pytest.raises(CaseworkInvalid) as exc:
        change_reason({}, removal=True)
    assert [f for f, _ in exc.value.problems] == ["reason", "confirm"]
    with pytest.raises(CaseworkInvalid):
        change_reason({"reason": "logged twice"}, removal=True)
    assert change_reason({"reason": "logged twice", "confirm": "on"}, removal=True) == "logged twice"
    with pytest.raises(CaseworkInvalid):
        change_reason({"reason": "x" * 501, "confirm": "on"}, removal=True)


@pytest.mark.parametrize("value", ["a\x00b", "\x1b[31m", "x\x7f", "a\x85b"])
def test_form_text_with_a_control_character_is_refused_not_stored(value):
    from lti_app.domain.casework_rules import contact_input

    with pytest.raises(CaseworkInvalid) as exc:
        contact_input({"contacted_on": "2026-11-02", "method": "phone", "direction": "out", "summary": value},
                      dt.date(2026, 11, 3))
    assert any("control character" in m for m in exc.value.messages)


def test_session_kind_is_regular_by_default_and_make_up_when_chosen():
    from lti_app.domain.casework_rules import session_input

    data = {"held_on": "2026-11-02", "minutes": "30", "attendance": "delivered"}
    assert session_input(data, dt.date(2026, 11, 3), dt.date(2026, 9, 1), None).kind == "session"
    assert session_input({**data, "kind": "make_up"}, dt.date(2026, 11, 3), dt.date(2026, 9, 1), None).kind == "make_up"
    with pytest.raises(CaseworkInvalid):
        session_input({**data, "kind": "bonus"}, dt.date(2026, 11, 3), dt.date(2026, 9, 1), None)

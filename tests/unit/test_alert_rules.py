"""Pure alert rules: which roster differences are schedule changes, reminder windows, digest timing, e-mail text."""

from __future__ import annotations

import datetime as dt

from lti_app.domain import alerts as rules
from lti_app.domain.alerts import Placement as P

BIO_WIDE, BIO_P3, BIO_P5, ART_WIDE = P(1, 10, True), P(1, 13), P(1, 15), P(2, 20, True)


def eff(*placements: P) -> dict[int, frozenset[P]]:
    return rules.effective(placements)


def test_effective_prefers_a_known_section_over_the_course_wide_row():
    assert eff(BIO_WIDE, BIO_P3, ART_WIDE) == {1: frozenset({BIO_P3}), 2: frozenset({ART_WIDE})}


def test_joining_and_leaving_a_course_are_changes():
    change = rules.diff(eff(ART_WIDE), eff(BIO_P3))
    assert change.joined == [BIO_P3] and change.left == [ART_WIDE]


def test_the_same_class_seen_by_a_second_source_is_no_change():
    assert rules.diff(eff(BIO_P3), eff(BIO_P3, BIO_WIDE)) == rules.PlacementDiff()


def test_learning_or_losing_the_section_of_a_class_is_recorded_silently():
    learned = rules.diff(eff(BIO_WIDE), eff(BIO_P3))
    assert (learned.joined, learned.left, learned.refined_in, learned.refined_out) == ([], [], [BIO_P3], [BIO_WIDE])
    lost = rules.diff(eff(BIO_P3), eff(BIO_WIDE))
    assert (lost.joined, lost.left) == ([], [])


def test_moving_between_sections_is_a_join_and_a_leave():
    change = rules.diff(eff(BIO_P3), eff(BIO_P5))
    assert (change.joined, change.left) == ([BIO_P5], [BIO_P3])


def test_place_names_do_not_repeat_the_course():
    assert rules.place_name("Biology", "Period 3", False) == "Biology — Period 3"
    assert rules.place_name("Biology", "Biology — Period 3", False) == "Biology — Period 3"
    assert rules.place_name("Biology", "Biology", True) == "Biology"


def test_acknowledgement_line_names_who_still_has_to_acknowledge_300_323_d():
    assert rules.acknowledgement_line(["Ms Reed"], []) == "Ms Reed has not acknowledged yet."
    assert rules.acknowledgement_line(["A", "B", "C"], ["D"]) == "A, B and C have not acknowledged yet."
    assert rules.acknowledgement_line([], ["D"]) == "Acknowledged by D."
    assert rules.acknowledgement_line([], []) == "No teacher is enrolled in this section yet."


def test_reminders_put_each_deadline_in_the_smallest_window():
    today = dt.date(2026, 12, 7)
    items = [rules.DueItem(1, "Sam Alder", "annual review (IEP)", today + dt.timedelta(days=d))
             for d in (-1, 0, 7, 8, 30, 31)]
    summary = rules.summarize(items, today, [30, 7])
    assert [i.due_on.day for i in summary.overdue] == [6]
    assert [i.due_on.day for i in summary.within[7]] == [7, 14]
    assert [i.due_on.day for i in summary.within[30]] == [15, 6]
    assert summary.title() == "Deadlines: 1 overdue · 2 due within 7 days · 2 more within 30 days"
    assert rules.summarize(items[-1:], today, [7, 30]).empty


def test_daily_digest_goes_once_per_district_day_from_the_hour():
    at = dt.datetime(2026, 12, 7, 5, 59)
    assert not rules.daily_digest_due(at, 6, None)
    assert rules.daily_digest_due(at.replace(hour=6), 6, None)
    assert rules.daily_digest_due(at.replace(hour=23), 6, dt.date(2026, 12, 6))
    assert not rules.daily_digest_due(at.replace(hour=23), 6, dt.date(2026, 12, 7))


def test_email_text_carries_titles_and_a_link_and_unsubscribe_links_only():
    items = [rules.DigestItem("schedule_change", "Sam Alder joined Biology — Period 3",
                              ("Ms Reed has not acknowledged yet.",))]
    subject, body = rules.email_text("Tamsin Larkspur", items, "https://caseload.example/alerts/",
                                     {"schedule_change": "https://caseload.example/alerts/unsubscribe/x"})
    assert subject == "Caseload: Sam Alder joined Biology — Period 3"
    assert body.startswith("Hello Tamsin Larkspur,")
    assert "* Sam Alder joined Biology — Period 3\n    Ms Reed has not acknowledged yet." in body
    assert "https://caseload.example/alerts/\n" in body
    assert "Schedule changes: https://caseload.example/alerts/unsubscribe/x" in body
    many = [rules.DigestItem("deadline", f"item {i}") for i in range(3)]
    assert rules.email_text("", many, "u", {})[0] == "Caseload: 3 alerts"
    burst = [rules.DigestItem("schedule_change", f"Student {i} joined Biology") for i in range(250)]
    text = rules.email_text("", burst, "u", {})[1]
    assert "Student 99 joined" in text and "Student 100 joined" not in text
    assert "… and 150 more in your Caseload inbox" in text


def test_alert_email_settings_are_checked_at_start_up():
    import pytest

    from lti_app.settings import SettingsError, load_settings

    base = {"env": "test", "database_url": "sqlite://"}
    ok = load_settings(overrides={**base, "smtp_url": "smtp+starttls://u:p@mail.example:587",
                                  "mail_from": "Caseload <c@example.test>", "reminder_windows_days": "30, 7"})
    assert ok.reminder_windows_days == [7, 30]
    for bad, words in (({"smtp_url": "http://mail.example"}, "CASELOAD_SMTP_URL"),
                       ({"smtp_url": "smtp://mail.example"}, "CASELOAD_MAIL_FROM"),
                       ({"alerts_daily_hour": "24"}, "CASELOAD_ALERTS_DAILY_HOUR"),
                       ({"reminder_windows_days": "0"}, "CASELOAD_REMINDER_WINDOWS_DAYS")):
        with pytest.raises(SettingsError, match=words):
            load_settings(overrides={**base, **bad})


def test_smtp_url_forms_and_ports():
    from integrations.smtp import SmtpTarget

    assert SmtpTarget.parse("smtp://relay.example") == SmtpTarget("smtp", "relay.example", 25, None, None)
    assert SmtpTarget.parse("smtps://a%40b:p%3Aw@mail.example").port == 465
    target = SmtpTarget.parse("smtp+starttls://a%40b:p%3Aw@mail.example")
    assert (target.port, target.username, target.password) == (587, "a@b", "p:w")

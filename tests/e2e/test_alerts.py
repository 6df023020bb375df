"""A schedule change end to end: the practice LMS enrols a plan student into a teacher's section, `caseload alerts
run` runs, the case manager's alert reaches a real SMTP server on loopback (aiosmtpd) and shows in their inbox inside
the LMS frame, with the unread count in the header."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import select

from tests.e2e.conftest import launch_in_practice, screenshot, wait_for_stable_frame
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def test_practice_enrolment_reaches_the_case_managers_email_and_inbox(page, live_server, smtp):
    from lti_app.cli import main
    from lti_app.models import Alert, Person

    app = live_server.app
    app.config["CASELOAD"] = dataclasses.replace(app.config["CASELOAD"], smtp_url=smtp.url,
                                                 mail_from="Caseload <caseload@district.example.test>")
    page.goto(live_server.practice_url + "/practice/")
    button = page.locator("#schedule-change")
    label = button.inner_text()
    match = re.match(r"Enrol (.+) \((?:\w+)\) into (.+) — teacher (.+)", label)
    assert match, label
    student, place, teacher = match.groups()
    button.click()
    page.wait_for_selector("#changed")

    result = app.test_cli_runner().invoke(main, ["alerts", "run"])
    assert result.exit_code == 0, result.output
    # One e-mail per case manager: the seeded demo's deadline reminders go out with the first run too.
    assert "schedule changes: 1 joined" in result.output and "2 e-mails sent" in result.output

    with app.app_context():
        session = app.extensions["caseload.sessionmaker"]()
        alert = session.scalars(select(Alert).where(Alert.kind == "schedule_change")).one()
        manager = session.get(Person, alert.recipient_id)
        manager_id, manager_email = manager.id, manager.email
        session.close()
    smtp.wait_for(2)
    [mail] = smtp.to(manager_email)
    assert f"* {student} joined {place}" in mail.get_content()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    frame = launch_in_practice(page, live_server, f"cm-{manager_id}")
    frame.wait_for_selector("#unread-alerts")
    wait_for_stable_frame(page)
    frame.locator("#header-alerts").click()
    frame.wait_for_selector(".alert-list")
    item = frame.locator(f'.alert-item[data-alert="{alert.id}"]')
    assert f"{student} joined {place}" in item.inner_text()
    assert "has not acknowledged yet" in item.inner_text() or "have not acknowledged yet" in item.inner_text()
    screenshot(page, "alerts-inbox")
    wait_for_stable_frame(page)
    item.locator("button", has_text="Mark read").click()
    frame = page.frame(name="tool")
    frame.wait_for_selector("text=Marked as read.")
    assert frame.locator(f'.alert-item[data-alert="{alert.id}"].unread').count() == 0

    # The section's teacher sees the student marked new on the course panel (until they acknowledge).
    course_title = place.split(" — ")[0]
    persona = page.locator("a.launch", has_text=f"Teacher: {teacher} — {course_title}")
    assert persona.count() == 1, f"no practice persona for {teacher} in {course_title}"
    frame = launch_in_practice(page, live_server, persona.get_attribute("data-persona"))
    frame.wait_for_selector("#counts")
    row = frame.locator(".student-row", has=frame.locator(".student-name", has_text=student))
    assert row.locator("[data-new]").inner_text() == "new in your class"
    screenshot(page, "alerts-teacher-new")

"""In Chromium, inside the practice LMS (issue #11): the case manager goes from the caseload to *Services owed*
(which fits a 320 px frame), shows every service, opens the first, logs a make-up session, corrects it with a reason and
removes it with a reason and a confirmation; the removed session stays on the page with its history."""

from __future__ import annotations

import re

from tests.e2e.conftest import click_to_navigate, launch_in_practice, open_details, screenshot, wait_for_stable_frame


def test_case_manager_follows_services_owed_to_a_service_and_logs_corrects_and_removes_a_make_up(page, live_server):
    frame = launch_in_practice(page, live_server, "cm-")
    frame.wait_for_selector("#caseload-counts")
    wait_for_stable_frame(page)
    with frame.expect_navigation():
        frame.click("#services-owed-link")
    frame.wait_for_selector("#owed-counts")
    assert re.search(r"\d+ min owed", frame.locator("#owed-counts").inner_text())
    page.set_viewport_size({"width": 320, "height": 800})
    wait_for_stable_frame(page)
    width = frame.evaluate("document.documentElement.scrollWidth")
    assert width <= frame.evaluate("document.documentElement.clientWidth") + 1
    screenshot(page, "services-owed-320px")
    page.set_viewport_size({"width": 1100, "height": 900})
    wait_for_stable_frame(page)

    with frame.expect_navigation():
        frame.get_by_role("link", name="Show every service").click()
    frame.wait_for_selector("#services-owed")
    with frame.expect_navigation():
        frame.locator("#services-owed tbody tr td a").first.click()
    frame.wait_for_selector("#services-h")
    service_id = re.search(r"#service-(\d+)", frame.url).group(1)
    service = frame.locator(f"#service-{service_id}")
    open_details(page, service.locator("summary", has_text="Log a session"))
    frame.fill(f"#session-{service_id}-minutes", "15")
    frame.select_option(f"#session-{service_id}-kind", "make_up")
    click_to_navigate(page, service.get_by_role("button", name="Log session"))
    frame.wait_for_selector("text=Session logged.")

    session = frame.locator(f"#service-{service_id} li[id^=session-]").first
    assert "make-up" in session.inner_text()
    session_id = session.get_attribute("id").removeprefix("session-")
    open_details(page, session.locator("summary", has_text="Correct"))
    frame.fill(f"#correct-session-{session_id}-minutes", "20")
    frame.fill(f"#correct-session-{session_id}-reason", "The make-up ran twenty minutes.")
    click_to_navigate(page, session.get_by_role("button", name="Save correction"))
    frame.wait_for_selector("text=Session corrected.")

    session = frame.locator(f"#session-{session_id}")
    assert "20 min" in session.inner_text() and "corrected" in session.inner_text()
    open_details(page, session.locator("summary", has_text="Remove this session"))
    frame.fill(f"#remove-session-{session_id}-reason", "Logged on the wrong service.")
    session.locator("input[name=confirm]").check()
    click_to_navigate(page, session.get_by_role("button", name="Remove"))
    frame.wait_for_selector("text=Session removed (kept in its history).")
    removed = frame.locator(f"#service-{service_id}").inner_text()
    assert "Removed sessions (kept for the record, not counted)" in removed
    assert "why: Logged on the wrong service." in removed
    assert frame.locator(f"#session-{session_id}").count() == 0
    screenshot(page, "services-ledger")

"""In Chromium, inside the practice LMS: the case manager opens a student's workspace from the caseload, records a
guardian contact without JavaScript-only controls, and every tab fits a 320 px wide frame."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import click_to_navigate, launch_in_practice, open_details, screenshot, wait_for_stable_frame


def test_case_manager_records_a_contact_and_the_tabs_fit_320px(page, live_server):
    frame = launch_in_practice(page, live_server, "cm-")
    frame.wait_for_selector("#caseload-counts")
    frame.locator("tbody tr td a").first.click()
    frame.wait_for_selector("nav.tabs")
    assert re.search(r"/casework/students/\d+", frame.url)
    tabs = frame.get_by_role("navigation", name="Student record")
    tabs.get_by_role("link", name="Contacts & meetings").click()
    frame.wait_for_selector("#contacts-h")
    open_details(page, frame.locator("summary", has_text="Record a contact"))  # open already without contacts
    frame.fill("#contact-summary", "Called the guardian about the reading plan; follow up after the unit test.")
    click_to_navigate(page, frame.get_by_role("button", name="Save contact"))
    frame = page.frame(name="tool")
    frame.wait_for_selector('text="Contact recorded."')  # quoted: exact, not "No guardian contact recorded."
    assert "follow up after the unit test" in frame.locator("#contacts-h").locator("xpath=..").inner_text()
    # The confirmation sits under the heading of the list it concerns and has focus (issue #13).
    assert "Contact recorded." in frame.locator("#contacts-h + .flash").inner_text()
    expect(frame.locator("#contacts-h + .flash")).to_be_focused()
    # A form with a problem comes back with its errors inside that form, focused.
    open_details(page, frame.locator("summary", has_text="Record a contact"))
    frame.fill("#contact-summary", "A second call.")
    frame.fill("#contact-follow_up_on", "2001-01-01")
    click_to_navigate(page, frame.get_by_role("button", name="Save contact"))
    frame = page.frame(name="tool")
    errors = frame.locator("form:has(#contact-summary) #form-errors")
    errors.wait_for()
    assert "before the contact" in errors.inner_text()
    expect(errors).to_be_focused()
    screenshot(page, "workspace-contacts")

    page.set_viewport_size({"width": 320, "height": 800})
    for tab in ("Overview", "Services", "Notes & timeline", "Contacts & meetings", "Who viewed this record"):
        frame.wait_for_load_state()
        wait_for_stable_frame(page)
        with frame.expect_navigation():
            frame.get_by_role("navigation", name="Student record").get_by_role("link", name=tab, exact=True).click()
        frame.wait_for_selector('nav.tabs a[aria-current="page"]')
        assert frame.locator('nav.tabs a[aria-current="page"]').inner_text() == tab
        width = frame.evaluate("document.documentElement.scrollWidth")
        viewport = frame.evaluate("document.documentElement.clientWidth")
        assert width <= viewport + 1, f"{tab}: content {width}px wider than the {viewport}px frame"
    screenshot(page, "workspace-320px")

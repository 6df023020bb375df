"""A newcomer's first minute: the practice LMS shows Caseload in an iframe after a real cross-site launch."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import launch_in_practice, screenshot


def test_teacher_launch_shows_caseload_inside_the_cross_site_iframe(page, live_server):
    frame = launch_in_practice(page, live_server, "teacher-")
    frame.wait_for_selector("#counts")
    top_host = urlsplit(page.url).hostname
    frame_host = urlsplit(frame.url).hostname
    assert top_host == "localhost" and frame_host == "127.0.0.1"
    assert "/panels/course" in frame.url
    assert frame.locator("h1").first.inner_text() == "Accommodations in Algebra I"
    assert "in your sections have a support plan" in frame.locator("#counts").inner_text()
    assert frame.locator(".student-row").count() >= 1
    screenshot(page, "practice-teacher")


def test_student_launch_shows_only_the_staff_only_page(page, live_server):
    page.goto(live_server.practice_url + "/practice/")
    page.locator('a.launch[data-persona="student"]').click()
    frame = page.frame(name="tool")
    frame.wait_for_selector("text=Caseload is for school staff")
    body = frame.locator("body").inner_text()
    assert "accommodation" not in body.lower()


def test_practice_page_opened_on_the_tool_site_moves_to_the_practice_site(page, live_server):
    page.goto(live_server.base_url + "/practice/")
    assert urlsplit(page.url).hostname == "localhost"


@pytest.mark.live_config(cookie_secure=False)
def test_launch_works_through_platform_storage_when_the_cookie_is_dropped(page, live_server):
    """With an unpartitioned (SameSite=Lax) state cookie, Chromium drops it in the cross-site frame, as a browser
    that blocks all third-party cookies would; the state is then confirmed through the LMS's postMessage storage
    (lti.put_data at login, lti.get_data at launch) and the launch still lands."""
    frame = launch_in_practice(page, live_server, "teacher-")
    frame.wait_for_selector("#counts")
    assert "/panels/course" in frame.url

"""In Chromium, inside the practice LMS: a teacher sees only their students, acknowledges, writes a note; a
teacher of another course cannot open that student; case manager and admin land on their pages."""

from __future__ import annotations

import re

from tests.e2e.conftest import launch_in_practice, screenshot, wait_for_stable_frame


def test_teacher_acknowledges_writes_note_and_other_teacher_is_refused(page, live_server):
    frame = launch_in_practice(page, live_server, "teacher-")
    frame.wait_for_selector("#counts")
    wait_for_stable_frame(page)  # each page load resizes the frame; a click during it can land beside its target
    first = frame.locator(".student-row").first
    name = first.locator(".student-name").inner_text()
    first.get_by_role("button", name=re.compile("^Acknowledge")).click()
    frame.wait_for_selector("text=Acknowledged. Thank you.")
    wait_for_stable_frame(page)
    row = frame.locator(".student-row", has_text=name).first
    assert "acknowledged" in row.inner_text()

    # Every accommodation is on the row itself (issue #13: nothing behind a disclosure), the card link too.
    assert row.locator("details").count() == 0 and row.locator("[data-accommodations] li").count() >= 1
    row.get_by_role("link", name=re.compile("Open .* card")).click()
    frame.wait_for_selector("#note-form")
    wait_for_stable_frame(page)
    url = frame.url
    student_path = re.search(r"/panels/student/\d+", url).group(0)
    frame.fill("#body", "Used the quiet room for the unit test; finished on time.")
    frame.get_by_role("button", name="Save note").click()
    frame.wait_for_selector("text=Note saved.")
    assert "Used the quiet room for the unit test" in frame.locator("#notes").inner_text()
    screenshot(page, "teacher-note")

    # A teacher of a course this student is not in launches and tries the same card by URL.
    student_id = int(student_path.rsplit("/", 1)[1])
    other_course = _course_without(live_server, student_id)
    page.goto(live_server.practice_url + "/practice/")
    page.locator(f'a.launch[data-persona="teacher-{other_course}"]').click()
    other = page.frame(name="tool")
    other.wait_for_selector("#counts")
    token = re.search(r"[?&]t=([^&#]+)", other.url).group(1)
    other.goto(f"{live_server.base_url}{student_path}?t={token}")
    other.wait_for_selector("text=no student record here that you may see")
    assert name not in other.locator("main").inner_text()


def test_case_manager_launch_shows_the_caseload(page, live_server):
    frame = launch_in_practice(page, live_server, "cm-")
    frame.wait_for_selector("#caseload-counts")
    assert "/casework/" in frame.url
    assert frame.locator("tbody tr").count() >= 5
    screenshot(page, "case-manager")


def test_admin_launch_shows_administration(page, live_server):
    frame = launch_in_practice(page, live_server, "admin-")
    frame.wait_for_selector("text=Caseload administration")
    assert "practice" in frame.locator("main").inner_text()


def _course_without(server, student_id):
    """Add a course taught by a new teacher who shares no course with the student; return its id."""
    import datetime as dt

    from lti_app.demo import practice_platform
    from lti_app.services.roster import primitives as roster
    from lti_app.services.uow import UnitOfWork

    with server.app.app_context(), UnitOfWork() as uow:
        s = uow.session
        plat = practice_platform.get_platform(s)
        course = roster.upsert_course(s, plat.id, "e2e-ceramics", title="Ceramics")
        teacher = roster.upsert_person(s, plat.id, "e2e-teacher", name="Quill Vantage", kind="staff")
        roster.apply_enrollment(s, person=teacher, course=course, section=roster.course_wide_section(s, course),
                                role="teacher", state="active", source="demo", source_time=dt.datetime.now(dt.UTC))
        uow.commit()
        return course.id

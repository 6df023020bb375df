"""In Chromium, inside the practice LMS: a teacher acknowledges a student's accommodations; the student's case
manager starts a new plan version, adds an accommodation from the catalogue and activates it; the teacher's
panel then shows the student as needing acknowledgement again, with what changed."""

from __future__ import annotations

import re

from sqlalchemy import select

from lti_app import clock
from tests.e2e.conftest import click_to_navigate, launch_in_practice, screenshot, wait_for_stable_frame


def test_case_manager_activates_a_new_version_and_the_teacher_sees_it_unacknowledged(page, live_server):
    teacher = launch_in_practice(page, live_server, "teacher-")
    teacher.wait_for_selector("#counts")
    wait_for_stable_frame(page)
    teacher_url = page.url
    persona = page.locator('a.launch[data-persona^="teacher-"]').first.get_attribute("data-persona")
    first = teacher.locator(".student-row").first
    name = first.locator(".student-name").inner_text()
    first.get_by_role("button", name=re.compile("^Acknowledge")).click()
    teacher.wait_for_selector("text=Acknowledged. Thank you.")
    assert "acknowledged" in teacher.locator(".student-row", has_text=name).first.inner_text()

    # The student's case manager opens the plan from the caseload and activates a new version. Every page load
    # in the frame resizes it (lti.frameResize); each click waits until the frame has settled, or it can land
    # beside its button (seen once in CI: "Start a new version" clicked, nothing posted).
    page.goto(teacher_url)
    page.locator(f'a.launch[data-persona="cm-{_case_manager_of(live_server, name)}"]').click()
    cm = page.frame(name="tool")

    def settled(selector: str) -> None:
        cm.wait_for_selector(selector)
        wait_for_stable_frame(page)

    settled("#caseload-counts")
    click_to_navigate(page, cm.get_by_role("link", name=f"Plan of {name}"))
    settled("text=Start a new version")
    click_to_navigate(page, cm.get_by_role("button", name="Start a new version").first)
    settled("text=Draft started from the version in force.")
    cm.select_option("#code", "S-HEADPHONES")
    click_to_navigate(page, cm.get_by_role("button", name="Add from the catalogue"))
    settled("text=Accommodation added to the draft.")
    click_to_navigate(page, cm.get_by_role("link", name="Review and activate"))
    settled("#activate-form")
    assert "May wear noise-reducing headphones" in cm.locator(".plan-diff").inner_text()
    cm.fill("#summary", "Headphones added after the team meeting.")
    click_to_navigate(page, cm.get_by_role("button", name=re.compile("^Activate version")))
    cm.wait_for_selector("text=Version activated.")
    screenshot(page, "plan-activated")

    # Back to the teacher: the student needs acknowledging again, and the row says what changed.
    page.goto(teacher_url)
    page.locator(f'a.launch[data-persona="{persona}"]').click()
    again = page.frame(name="tool")
    again.wait_for_selector("#counts")
    row = again.locator(".student-row", has_text=name).first
    text = row.inner_text()
    assert "needs your acknowledgement" in text
    assert "Added: May wear noise-reducing headphones" in text
    assert "Headphones added after the team meeting." in text
    screenshot(page, "teacher-plan-changed")


def _case_manager_of(server, name: str) -> int:
    """The person id of the case manager of the active plan of the student shown as ``name`` on the panel.

    The demo district's dates are fixed; a plan whose end date has passed cannot get a new version, so the
    arrangement moves it forward."""
    import datetime as dt

    from lti_app.models import Plan, Student
    from lti_app.services.uow import UnitOfWork

    with server.app.app_context(), UnitOfWork() as uow:
        students = uow.session.scalars(select(Student)).all()
        student = next(s for s in students if s.display_name == name)
        plan = uow.session.scalars(select(Plan).where(Plan.student_id == student.id, Plan.status == "active")).first()
        assert plan is not None and plan.case_manager_id is not None
        if plan.end_on is not None and plan.end_on < clock.today():
            plan.end_on = clock.today() + dt.timedelta(days=180)  # (kept as a guard; demo dates are relative)
        uow.commit()
        return plan.case_manager_id

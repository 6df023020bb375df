"""Issue #12's newcomer path, end to end in the practice LMS: the district administrator opens *LMS accommodations*,
previews what switching on would change (nothing is written), switches on; Caseload applies the plans' extra time
through the practice LMS's Moodle-style web service (its own server, over HTTP); the practice LMS's quiz list shows
each student's user override; a case manager's verification report has no gaps. The preview and the course ledger
pass axe in 1280 and 720 px frames."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select

from tests.e2e.conftest import click_to_navigate, launch_in_practice, wait_for_stable_frame
from tests.e2e.test_accessibility import WIDTHS, _axe, _frame_width_to


def _tool(page):
    return page.frame(name="tool")


def _axe_both(page, label: str) -> list[str]:
    problems = []
    for width in WIDTHS:
        _frame_width_to(page, width)
        problems += [f"{label} at {width}px: {v}" for v in _axe(_tool(page))]
    _frame_width_to(page, 1280)
    return problems


def _count(live_server, model) -> int:
    from lti_app.services.uow import UnitOfWork

    with live_server.app.app_context(), UnitOfWork() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _settled(page, text: str) -> None:
    _tool(page).get_by_text(text).first.wait_for()
    wait_for_stable_frame(page)


def _admin_lms_page(page, live_server) -> None:
    launch_in_practice(page, live_server, "admin-")
    wait_for_stable_frame(page)
    click_to_navigate(page, _tool(page).get_by_role("link", name="LMS accommodations").first)
    _settled(page, "Accommodations applied in the LMS")


def test_the_admin_previews_and_switches_on_and_the_lms_and_the_report_show_the_time(page, live_server):
    from lti_app.models import LmsActionLedger
    from lti_app.models.practice import PracticeQuiz, PracticeQuizOverride

    problems: list[str] = []
    _admin_lms_page(page, live_server)
    card = _tool(page).locator("section.card", has=_tool(page).get_by_role("heading", name=re.compile("^practice")))
    assert "off" in card.get_by_role("heading").inner_text()

    click_to_navigate(page, card.get_by_role("link", name="Preview what would change"))
    _settled(page, "What switching on would change in practice")
    preview = _tool(page).locator("main").inner_text()
    assert "nothing was written" in preview and "Unit 2 test" in preview
    assert _count(live_server, PracticeQuizOverride) == 1  # only the teacher's own override
    assert _count(live_server, LmsActionLedger) == 0
    problems += _axe_both(page, "lms_actions.preview")

    click_to_navigate(page, _tool(page).get_by_role("link", name=re.compile("Accommodations in the LMS")))
    _settled(page, "Accommodations applied in the LMS")
    card = _tool(page).locator("section.card", has=_tool(page).get_by_role("heading", name=re.compile("^practice")))
    click_to_navigate(page, card.get_by_role("button", name="Switch on"))
    _settled(page, "Applying accommodations is on for this LMS")

    applied = _count(live_server, PracticeQuizOverride)
    assert applied > 10

    # the course ledger of the first course the verification report lists (administrator's view)
    click_to_navigate(page, _tool(page).get_by_role("link", name="Verification report"))
    _settled(page, "Are the accommodations applied in the LMS?")
    click_to_navigate(page, _tool(page).get_by_role("link", name=re.compile("^course ledger")).first)
    _settled(page, "Changes Caseload made or declined in the LMS")
    ledger = _tool(page).locator("main").inner_text()
    assert "applied" in ledger and "timelimit" in ledger
    problems += _axe_both(page, "lms_actions.course_ledger")

    # the practice LMS itself: every timed quiz lists its user overrides, as a teacher sees them
    page.goto(live_server.practice_url + "/practice/")
    quizzes = page.locator("#quizzes")
    rows = quizzes.locator("tr[data-user]")
    assert rows.count() == applied
    untimed = quizzes.locator("section.lms-quiz", has_text="Vocabulary practice")
    assert untimed.count() == _count(live_server, PracticeQuiz) // 3
    assert all("No user overrides." in untimed.nth(i).text_content() for i in range(untimed.count()))
    first = quizzes.locator("details.lms-course").first
    first.locator("summary").click()
    test = first.locator("section.lms-quiz", has_text="Unit 2 test")
    assert test.get_by_role("table").is_visible()
    closes = [r.locator("td").nth(3).inner_text() for r in test.locator("tr[data-user]").all()]
    times = [r.locator("td").nth(1).inner_text() for r in test.locator("tr[data-user]").all()]
    assert all(t in ("1 h 7 min 30 s", "1 h 30 min") for t in times), times
    assert sum(1 for c in closes if c != "quiz's own") == 1  # the teacher's later close date is still there

    # a case manager's verification report: nothing missing
    launch_in_practice(page, live_server, "cm-")
    wait_for_stable_frame(page)
    token = parse_qs(urlsplit(_tool(page).url).query).get("t", [""])[0]
    link = _tool(page).locator('a[href*="/lms/report"]')
    if link.count():
        click_to_navigate(page, link.first)
    else:
        _tool(page).goto(f"{live_server.base_url}/lms/report?t={token}")
    _settled(page, "Are the accommodations applied in the LMS?")
    report = _tool(page).locator("main").inner_text()
    found = re.search(r"(\d+) of (\d+) student courses? have gaps", report)
    assert found and found.group(1) == "0" and int(found.group(2)) > 0, report[:400]
    assert "not applied yet" not in report and "the LMS refused" not in report

    assert not problems, "\n".join(problems)

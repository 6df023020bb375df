"""Issue #14 items 1 and 5 in Chromium: the LMS course page lives on another origin than the platform's issuer and
login URL (as Canvas's district host), Caseload learns it from the launch and is framed by it, unknown origins stay
refused, and a copied page URL opens nothing in another browser (the page token is bound to the launching browser:
a partitioned cookie, or the LMS's platform storage when the browser keeps no cookie in the frame)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.e2e.conftest import launch_in_practice, screenshot

PAGE_HOST = "http://district.localhost:{port}"


def _district(server) -> str:
    return PAGE_HOST.format(port=urlsplit(server.base_url).port)


def _stored_origins(server) -> dict[str, str]:
    from lti_app.models import PlatformFrameOrigin
    from lti_app.services.uow import UnitOfWork

    with server.app.app_context(), UnitOfWork() as uow:
        return {o.origin: o.source for o in uow.session.scalars(select(PlatformFrameOrigin))}


def _framing_refusals(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if "frame-ancestors" in m.text else None)
    return messages


@contextmanager
def _stranger_page(src: str) -> Iterator[str]:
    """A page on an origin nobody vouched for (``http://elsewhere.localhost:<port>``, served from this machine so that
    Chromium's local-network checks let it frame a loopback server) that frames ``src``; yields its URL."""
    body = f'<!doctype html><title>Elsewhere</title><iframe name="probe" src="{src}"></iframe>'.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://elsewhere.localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.live_config(practice_lms_page_url=PAGE_HOST)
def test_canvas_like_course_page_on_its_own_origin_is_learned_from_the_launch_and_frames_caseload(page, live_server,
                                                                                                 browser):
    district = _district(live_server)
    assert district not in _stored_origins(live_server)
    frame = launch_in_practice(page, live_server, "teacher-")
    frame.wait_for_selector("#counts")
    assert f"{urlsplit(page.url).scheme}://{urlsplit(page.url).netloc}" == district  # not the issuer's origin
    assert "t=" in frame.url and "_caseload_replay" not in frame.url  # bound by the partitioned cookie
    assert _stored_origins(live_server) == {district: "launch"}
    name = frame.locator(".student-name").first.inner_text()
    screenshot(page, "framing-district-origin")

    # A copied URL, opened in another browser: refused, with a page that says what to do.
    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        resp = elsewhere.goto(frame.url)
        assert resp.status == 401
        text = elsewhere.locator("main").inner_text()
        assert "Open Caseload again from your course" in text and name not in text
    finally:
        other.close()
    # The same browser outside the LMS page (history, a new tab): the cookie is partitioned to the LMS's site.
    tab = page.context.new_page()
    resp = tab.goto(frame.url)
    assert resp.status == 401 and name not in tab.locator("main").inner_text()

    # Script requests from the page carry the binding cookie too (the note draft's autosave).
    row = frame.locator(".student-row").first
    row.get_by_role("link", name=re.compile("Open .* card")).click()
    card = _landed(page, "/panels/student/")
    card.fill("#body", "Draft: quiet room before the unit test.")
    card.wait_for_selector("#draft-status:has-text('Draft saved.')")


@pytest.mark.live_config(practice_lms_page_url=PAGE_HOST)
def test_an_origin_nobody_vouched_for_cannot_frame_caseload(page, live_server):
    frame = launch_in_practice(page, live_server, "teacher-")  # teaches the district origin
    frame.wait_for_selector("#counts")
    page.evaluate("(src) => { document.getElementById('tool').src = src; }", live_server.base_url + "/lti/")
    page.frame_locator("#tool").locator("text=Caseload LTI 1.3 tool").wait_for()  # the known district page: framed

    stranger = page.context.new_page()
    refusals = _framing_refusals(stranger)
    with _stranger_page(live_server.base_url + "/lti/") as url, stranger.expect_event(
            "console", predicate=lambda m: "frame-ancestors" in m.text):
        stranger.goto(url)
    assert refusals
    deadline = time.monotonic() + 10
    while [f.url for f in stranger.frames[1:]] != ["chrome-error://chromewebdata/"]:  # Chromium's "refused to connect"
        assert time.monotonic() < deadline, [f.url for f in stranger.frames]
        stranger.wait_for_timeout(50)


@pytest.mark.live_config(practice_lms_page_url=PAGE_HOST, cookie_secure=False)
def test_without_cookies_the_token_is_bound_through_platform_storage_once_the_origin_is_known(page, live_server,
                                                                                             browser):
    """Unpartitioned (SameSite=Lax) cookies are dropped in the cross-site frame, as in a browser that keeps no
    third-party cookie at all. Before any launch taught the page's origin, the platform-storage pages cannot be framed
    by it (refused, as any unknown origin); an administrator adds it, and the launch then lands, its token bound
    through the LMS's platform storage."""
    from lti_app.cli import main

    district = _district(live_server)
    refusals = _framing_refusals(page)
    page.goto(live_server.practice_url + "/practice/")
    page.locator('a.launch[data-persona^="teacher-"]').first.click()
    page.wait_for_event("console", predicate=lambda m: "frame-ancestors" in m.text)
    assert refusals and _stored_origins(live_server) == {}

    added = live_server.app.test_cli_runner().invoke(main, ["platform", "frame-origin", "add", "--name", "practice",
                                                            district])
    assert added.exit_code == 0, added.output
    frame = launch_in_practice(page, live_server, "teacher-")
    frame.wait_for_selector("#counts")
    assert "_caseload_replay=get" in frame.url and "t=" not in frame.url  # no token, no secret in the URL
    # A link inside the tool: the page reads the secret back from the LMS's storage and opens the record.
    row = frame.locator(".student-row").first
    name = row.locator(".student-name").inner_text()
    row.get_by_role("link", name=re.compile("Open .* card")).click()
    student = _landed(page, "/panels/student/")
    student.wait_for_selector("#note-form")
    assert name in student.locator("main").inner_text()
    link = student.locator("a[href*='t=']").first.get_attribute("href")
    # A form: the POST is repeated with the secret (and its fields) by the unlock page, then lands on the result.
    student.fill("#body", "Used the quiet room; finished on time.")
    student.get_by_role("button", name="Save note").click()
    saved = _landed(page, "/panels/student/")
    saved.wait_for_selector("text=Note saved.")
    assert "Used the quiet room; finished on time." in saved.locator("#notes").inner_text()
    screenshot(page, "framing-platform-storage")

    # That link in another browser: the unlock page finds no LMS frame to ask, shows nothing and says what to do.
    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        elsewhere.goto(live_server.base_url + link)
        elsewhere.wait_for_selector("#lti-storage-failed:not([hidden])")
        text = elsewhere.locator("main").inner_text()
        assert "Please open Caseload from your course" in text and name not in text
        # The frame's own URL (a repeated GET) carries no token at all.
        resp = elsewhere.goto(student.url)
        assert resp.status == 401 and name not in elsewhere.locator("main").inner_text()
    finally:
        other.close()


def _landed(page, path: str):
    deadline = time.monotonic() + 20
    while True:
        frame = page.frame(name="tool")
        if frame is not None and urlsplit(frame.url).path.startswith(path):
            try:
                frame.wait_for_load_state("load", timeout=5000)
                fresh = page.frame(name="tool")
                if fresh is not None and fresh.url == frame.url:
                    return fresh
            except Exception:  # noqa: BLE001 - navigated again meanwhile
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the frame did not land on {path} (it is at {frame.url if frame else None!r})")
        page.wait_for_timeout(50)

"""End-to-end fixtures: Caseload served for real (werkzeug, threaded) on a fresh migrated PostgreSQL database
seeded with the demo district, and headless Debian Chromium driven by Playwright.

The practice LMS page is served on ``localhost`` and the tool on ``127.0.0.1`` (same server, two sites), so
the tool's cookies are third-party exactly as inside a real LMS; Chromium here blocks unpartitioned
third-party cookies and keeps ``Partitioned`` ones.

Reuse: ``live_server`` (``.base_url``, ``.practice_url``, ``.app``), ``page``, and
``launch_in_practice(page, live_server, persona_prefix)`` -> the tool's iframe ``Frame``, and
``wait_for_stable_frame(page)`` before clicking after a viewport change.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import IN_CI, test_settings

CHROMIUM = os.environ.get("CASELOAD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))


@dataclass
class LiveServer:
    base_url: str
    practice_url: str
    app: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(pg_database_url: str, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Extra settings for one test: ``@pytest.mark.live_config(cookie_secure=False)``; ``{port}`` in a string value is
    the server's port."""
    from werkzeug.serving import make_server

    from lti_app import create_app
    from lti_app.demo.district import seed_demo
    from lti_app.services.uow import UnitOfWork
    from tests.conftest import _empty_tables

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    marker = request.node.get_closest_marker("live_config")
    extra = dict(marker.kwargs) if marker else {}
    # A setting may name the server's port: live_config(practice_lms_page_url="http://district.localhost:{port}").
    extra = {k: v.format(port=port) if isinstance(v, str) else v for k, v in extra.items()}
    app = create_app(test_settings(pg_database_url, base_url=base, practice_lms_url=f"http://localhost:{port}", **extra))
    with app.app_context(), UnitOfWork() as uow:
        seed_demo(uow.session, app.config["CASELOAD"])
        uow.commit()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(base, f"http://localhost:{port}", app)
    server.shutdown()
    thread.join(timeout=5)
    _empty_tables(app)
    app.extensions["caseload.engine"].dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing", pytrace=False)
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def launch_in_practice(page: Any, server: LiveServer, persona_prefix: str) -> Any:
    """Open the practice LMS, click the first launch button whose persona key starts with ``persona_prefix``
    (``teacher-``, ``cm-``, ``admin-``, ``student``), and return the tool's frame once the launch has landed on a
    Caseload page (past ``/lti/login``, the practice platform's ``/practice/auth`` and ``/lti/launch``).

    The frame changes site several times during a launch (127.0.0.1 → localhost → 127.0.0.1), and Chromium moves
    it between renderer processes each time, so the ``Frame`` is looked up afresh until it has landed."""
    page.goto(server.practice_url + "/practice/")
    page.locator(f'a.launch[data-persona^="{persona_prefix}"]').first.click()
    deadline = time.monotonic() + 20
    url = ""
    while True:
        frame = page.frame(name="tool")
        url = frame.url if frame is not None else ""
        path = urlsplit(url).path
        if url and url != "about:blank" and not path.startswith(("/lti/", "/practice/")):
            try:
                frame.wait_for_load_state("load", timeout=5000)
            except PlaywrightError:
                pass  # navigated again meanwhile: look again
            else:
                fresh = page.frame(name="tool")
                if fresh is not None and fresh.url == url:
                    return fresh
        if time.monotonic() > deadline:
            raise AssertionError(f"the launch did not land on a Caseload page (the frame is at {url!r})")
        page.wait_for_timeout(50)


def wait_for_stable_frame(page: Any, frames: int = 5) -> None:
    """Wait until the tool's iframe has kept the same box for ``frames`` animation frames.

    The tool asks the LMS page to resize its frame (``lti.frameResize``) after every load and every layout
    change; a click aimed while the frame is still growing can land beside its target. Waiting for the box
    to settle makes clicks inside the frame deterministic."""
    page.wait_for_function(
        """(want) => new Promise((resolve) => {
            const f = document.getElementById('tool');
            let last = '', same = 0;
            function tick() {
                const r = f.getBoundingClientRect();
                const box = [r.x, r.y, r.width, r.height, window.scrollY].join(',');
                same = box === last ? same + 1 : 0;
                last = box;
                if (same >= want) { resolve(true); } else { requestAnimationFrame(tick); }
            }
            requestAnimationFrame(tick);
        })""", arg=frames)


def click_to_navigate(page: Any, target: Any, attempts: int = 3) -> None:
    """Click a link or submit button inside the tool's frame and wait until the frame has loaded the answer.

    A click aimed while the frame is being resized or scrolled (``lti.frameResize``, ``lti.scrollToTop``
    arrive from another process, sometimes late under load) can land beside its target. The sign of a missed
    click is that the frame sends no navigation request at all; only then is the click repeated, so a form is
    never posted twice."""
    for _ in range(attempts):
        wait_for_stable_frame(page)
        try:
            with page.expect_request(lambda r: r.is_navigation_request() and r.frame.name == "tool", timeout=3000):
                target.click()
        except PlaywrightError:
            continue
        page.frame(name="tool").wait_for_load_state("load")
        return
    raise AssertionError("the click did not make the tool's frame navigate")


def open_details(page: Any, summary: Any, attempts: int = 3) -> None:
    """Open the ``<details>`` whose ``<summary>`` is ``summary`` and wait until it is open.

    A click is aimed in page coordinates; when the frame is resized between the aim and the press (the tool
    asks for a resize after each load), the press can land beside the summary and the details stay closed.
    So: wait for a settled frame, click, and check the ``open`` attribute, a few times at most."""
    details = summary.locator("xpath=..")
    opened = summary.locator("xpath=parent::details[@open]")
    for _ in range(attempts):
        if opened.count():
            return
        wait_for_stable_frame(page)
        summary.click()
        try:
            opened.wait_for(state="attached", timeout=2000)
        except PlaywrightError:
            continue
    if details.get_attribute("open") is None:
        raise AssertionError("the <details> did not open after its summary was clicked")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

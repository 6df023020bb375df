"""End-to-end fixtures: Caseload served for real (werkzeug, threaded) on a fresh migrated PostgreSQL database
seeded with the demo district, and headless Debian Chromium driven by Playwright.

The practice LMS page is served on ``localhost`` and the tool on ``127.0.0.1`` (same server, two sites), so
the tool's cookies are third-party exactly as inside a real LMS; Chromium here blocks unpartitioned
third-party cookies and keeps ``Partitioned`` ones.

Reuse: ``live_server`` (``.base_url``, ``.practice_url``, ``.app``), ``page``, and
``launch_in_practice(page, live_server, persona_prefix)`` -> the tool's iframe ``Frame``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    """Extra settings for one test: ``@pytest.mark.live_config(cookie_secure=False)``."""
    from werkzeug.serving import make_server

    from lti_app import create_app
    from lti_app.services.demo import seed_demo
    from lti_app.services.uow import UnitOfWork
    from tests.conftest import _empty_tables

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    marker = request.node.get_closest_marker("live_config")
    extra = dict(marker.kwargs) if marker else {}
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
    (``teacher-``, ``cm-``, ``admin-``, ``student``), and return the tool's frame once it has loaded."""
    page.goto(server.practice_url + "/practice/")
    page.locator(f'a.launch[data-persona^="{persona_prefix}"]').first.click()
    frame = page.frame(name="tool")
    assert frame is not None
    frame.wait_for_load_state()
    page.wait_for_function(
        "() => { const f = document.getElementById('tool');"
        " try { const h = f.contentWindow.location.href; return h.indexOf('/lti/') === -1 && h !== 'about:blank'; }"
        " catch (e) { return true; } }")
    return page.frame(name="tool")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

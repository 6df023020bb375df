"""The Moodle companion plugin: every PHP file passes ``php -l`` (Debian's php-cli; required in CI), the events
it observes are the events Caseload parses, and it signs and names things the way the receiver expects."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lti_app.domain.roster_events import MOODLE_EVENTS, MOODLE_SCHEMA

PLUGIN = Path(__file__).resolve().parents[2] / "integrations" / "moodle" / "local_caseload"
PHP_FILES = sorted(PLUGIN.rglob("*.php"))


def test_plugin_has_the_files_moodle_needs():
    for name in ("version.php", "settings.php", "db/events.php", "lang/en/local_caseload.php",
                 "classes/observer.php", "classes/payload.php", "classes/task/deliver_event.php",
                 "classes/privacy/provider.php"):
        assert (PLUGIN / name).is_file(), name
    for path in PHP_FILES:
        text = path.read_text()
        assert "GNU General Public License" in text, f"{path.name} lacks the GPL header"


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(PLUGIN)))
def test_php_lint(path):
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("php-cli is required in CI (apt-get install php-cli)")
        pytest.skip("php-cli not installed")
    result = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_observed_events_are_exactly_the_parsed_ones():
    text = (PLUGIN / "db" / "events.php").read_text()
    observed = set(re.findall(r"'(\\core\\event\\[a-z_]+)'", text))
    assert observed == set(MOODLE_EVENTS)


def test_payload_format_and_signature_match_the_receiver():
    payload = (PLUGIN / "classes" / "payload.php").read_text()
    assert f"const SCHEMA = '{MOODLE_SCHEMA}'" in payload
    task = (PLUGIN / "classes" / "task" / "deliver_event.php").read_text()
    assert "hash_hmac('sha256', $timestamp . '.' . $body, $secret)" in task
    assert "X-Caseload-Timestamp" in task and "X-Caseload-Signature: sha256=" in task

"""The Moodle companion plugin: every PHP file passes ``php -l`` (Debian's php-cli; required in CI), the events
it observes are the events Caseload parses, and it signs and names things the way the receiver expects."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from integrations.moodle.webservice import FUNCTIONS as MOODLE_FUNCTIONS
from integrations.signed_payloads import verify_hmac
from lti_app.domain.lms_actions import MOODLE_QUIZ_EVENTS
from lti_app.domain.roster_events import MOODLE_EVENTS, MOODLE_SCHEMA
from lti_app.services.roster.webhooks import PING_SCHEMA

PLUGIN = Path(__file__).resolve().parents[2] / "integrations" / "moodle" / "local_caseload"
PHP_FILES = sorted(PLUGIN.rglob("*.php"))
HARNESS = Path(__file__).resolve().parent / "php" / "deliver_event_harness.php"


def test_plugin_has_the_files_moodle_needs():
    for name in ("version.php", "settings.php", "db/events.php", "lang/en/local_caseload.php",
                 "classes/observer.php", "classes/payload.php", "classes/task/deliver_event.php",
                 "classes/privacy/provider.php", "classes/delivery.php", "classes/status.php", "classes/client.php",
                 "classes/hook_callbacks.php", "classes/check/delivery.php", "db/hooks.php", "lib.php", "test.php"):
        assert (PLUGIN / name).is_file(), name
    for path in PHP_FILES:
        text = path.read_text()
        assert "GNU General Public License" in text, f"{path.name} lacks the GPL header"


def _php() -> str:
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("php-cli is required in CI (apt-get install php-cli)")
        pytest.skip("php-cli not installed")
    return php


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(PLUGIN)))
def test_php_lint(path):
    result = subprocess.run([_php(), "-l", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_observed_events_are_exactly_the_parsed_ones():
    """Roster events are parsed by the roster; quiz events (issue #12) are read by the LMS actions."""
    text = (PLUGIN / "db" / "events.php").read_text()
    observed = set(re.findall(r"'(\\(?:core|mod_quiz)\\event\\[a-z_]+)'", text))
    assert observed == set(MOODLE_EVENTS) | set(MOODLE_QUIZ_EVENTS)


def test_the_web_service_lists_exactly_the_functions_caseload_calls():
    text = (PLUGIN / "db" / "services.php").read_text()
    declared = set(re.findall(r"'((?:core|mod)_[a-z_]+)'", text))
    assert declared == set(MOODLE_FUNCTIONS)


def test_payload_format_and_signature_match_the_receiver():
    payload = (PLUGIN / "classes" / "payload.php").read_text()
    assert f"const SCHEMA = '{MOODLE_SCHEMA}'" in payload
    delivery = (PLUGIN / "classes" / "delivery.php").read_text()
    assert "'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret)" in delivery
    client = (PLUGIN / "classes" / "client.php").read_text()
    assert "X-Caseload-Timestamp: " in client and "X-Caseload-Signature: " in client
    assert f"const PING_SCHEMA = '{PING_SCHEMA}'" in delivery


def run_task(code: int, answer: str, configured: bool = True, fail_delay: int = 0) -> dict:
    """The plugin's deliver_event task, run by php-cli against stand-ins for Moodle's config, curl and task APIs."""
    result = subprocess.run([_php(), str(HARNESS), str(PLUGIN), str(code), answer, "1" if configured else "0",
                             str(fail_delay)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_only_a_2xx_answer_ends_a_delivery_and_clears_the_failing_state():
    for code in (200, 202):
        done = run_task(code, '{"status": "accepted"}')
        assert done["threw"] is None and "lastsuccess" in done["config"] and "failingsince" not in done["config"]


@pytest.mark.parametrize("code", [0, 400, 401, 403, 404, 409, 410, 413, 422, 500, 503])
def test_every_other_answer_keeps_the_event_queued_with_its_uid_and_shows_the_failing_state(code):
    """Issue #14: a rotated secret (401), a disabled platform (403), a wrong URL (404) must not drop the events
    made meanwhile: the task throws (Moodle retries it), never runs out of attempts, keeps its event_uid, and the
    failing state is recorded for the settings page and the admin notifications."""
    answer = json.dumps({"error": "Event refused: the signature was not accepted",
                         "reason": "the signature does not match (check the webhook secret in the Moodle plugin)"})
    done = run_task(code, answer)
    assert done["threw"], code
    assert done["attempts"] == 12  # Moodle stops retrying an ad-hoc task whose attempts reach 0
    assert done["customdata"]["event_uid"] == "uid-0001-aaaa"
    assert done["config"]["failingsince"] and done["config"]["lastfailure"] == done["threw"]
    if code == 0:
        assert "could not be reached: Connection refused" in done["threw"]
    else:
        assert done["threw"].startswith(f"HTTP {code} - Event refused: the signature was not accepted: the signature")


def test_an_unconfigured_plugin_keeps_events_queued_instead_of_dropping_them():
    done = run_task(202, "{}", configured=False)
    assert done["threw"] == "[notconfigured]" and done["sent"] == [] and done["attempts"] == 12


def test_retries_grow_but_wait_at_most_an_hour():
    # Moodle doubles the fail delay it finds after a failure (60 s the first time) and would wait up to 24 h.
    assert run_task(503, "")["faildelay"] == 0  # first failure: Moodle waits 60 s
    assert run_task(503, "", fail_delay=960)["faildelay"] == 960  # Moodle makes it 1920
    assert run_task(503, "", fail_delay=1800)["faildelay"] == 1800  # -> 3600
    assert run_task(503, "", fail_delay=3600)["faildelay"] == 1800  # stays at an hour


def test_the_plugin_signature_is_the_one_caseload_verifies():
    done = run_task(202, "{}")
    headers = dict(h.split(": ", 1) for h in done["sent"]["headers"])
    body = done["sent"]["body"].encode()
    verify_hmac("moodle-webhook-secret-for-tests-0123456789", headers["X-Caseload-Timestamp"],
                headers["X-Caseload-Signature"], body, now=time.time())


def test_the_plugin_is_wired_for_notifications_status_and_the_test_page():
    hooks = (PLUGIN / "db" / "hooks.php").read_text()
    assert "before_standard_top_of_body_html_generation::class" in hooks
    assert "function local_caseload_status_checks()" in (PLUGIN / "lib.php").read_text()
    settings = (PLUGIN / "settings.php").read_text()
    assert "admin_externalpage('local_caseload_test'" in settings and "/local/caseload/test.php" in settings
    test_page = (PLUGIN / "test.php").read_text()
    assert "confirm_sesskey()" in test_page and "admin_externalpage_setup('local_caseload_test')" in test_page
    strings = (PLUGIN / "lang" / "en" / "local_caseload.php").read_text()
    used = set(re.findall(r"get_string\('([a-z_]+)', 'local_caseload'", "".join(p.read_text() for p in PHP_FILES)))
    defined = set(re.findall(r"\$string\['([a-z_:]+)'\]", strings))
    assert used <= defined, used - defined

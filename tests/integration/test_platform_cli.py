"""`caseload platform add|list|approve-deployment|disable-deployment`."""

from __future__ import annotations

import json

from sqlalchemy import select

from lti_app.cli import main
from lti_app.models import Deployment, Platform

ARGS = ["platform", "add", "--name", "district-moodle", "--lms", "moodle", "--issuer", "https://moodle.example.test",
        "--client-id", "abc123", "--auth-login-url", "https://moodle.example.test/mod/lti/auth.php",
        "--auth-token-url", "https://moodle.example.test/mod/lti/token.php",
        "--keyset-url", "https://moodle.example.test/mod/lti/certs.php", "--deployment-id", "7"]


def test_add_list_json_and_secret_shown_once(runner, db_session):
    result = runner.invoke(main, ARGS)
    assert result.exit_code == 0, result.output
    assert "Webhook secret" in result.output
    secret = result.output.rsplit(": ", 1)[1].strip()
    listing = runner.invoke(main, ["platform", "list", "--json"])
    data = json.loads(listing.output)
    assert data[0]["name"] == "district-moodle" and data[0]["deployments"] == [{"deployment_id": "7", "status": "active"}]
    assert secret not in listing.output
    raw = db_session.scalars(select(Platform)).one().webhook_secret_encrypted
    assert secret.encode() not in bytes(raw)


def test_duplicates_and_bad_urls_are_refused_readably(runner, db_session):
    assert runner.invoke(main, ARGS).exit_code == 0
    again = runner.invoke(main, ARGS)
    assert again.exit_code != 0 and "already exists" in again.output
    other = [*ARGS]
    other[other.index("district-moodle")] = "second"
    dup = runner.invoke(main, other)
    assert dup.exit_code != 0 and "already registered" in dup.output
    bad = [*other]
    bad[bad.index("second")] = "third"
    bad[bad.index("https://moodle.example.test/mod/lti/certs.php")] = "not a url"
    res = runner.invoke(main, bad)
    assert res.exit_code != 0 and "must be a full URL" in res.output
    assert db_session.scalar(select(Platform.id).where(Platform.name == "third")) is None


def test_approve_and_disable_deployment(runner, db_session):
    runner.invoke(main, ARGS)
    assert runner.invoke(main, ["platform", "approve-deployment", "--platform", "district-moodle",
                               "--deployment-id", "9"]).exit_code == 0
    assert runner.invoke(main, ["platform", "disable-deployment", "--platform", "district-moodle",
                               "--deployment-id", "7"]).exit_code == 0
    states = {d.deployment_id: d.status for d in db_session.scalars(select(Deployment))}
    assert states == {"7": "disabled", "9": "active"}
    missing = runner.invoke(main, ["platform", "approve-deployment", "--platform", "nope", "--deployment-id", "1"])
    assert missing.exit_code != 0 and "No platform is named" in missing.output

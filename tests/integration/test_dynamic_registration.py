"""LTI Dynamic Registration 1.0 against a test platform served over HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app.cli import main
from lti_app.models import Deployment, Platform, RegistrationInvite
from lti_app.services.platforms.dynamic_registration import create_invite

TOKEN = "reg-token-123"


class _Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        srv: Any = self.server
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        issuer = srv.issuer or base
        self._send(200, {"issuer": issuer, "authorization_endpoint": base + "/mod/lti/auth.php",
                         "token_endpoint": base + "/mod/lti/token.php", "jwks_uri": base + "/mod/lti/certs.php",
                         "registration_endpoint": base + "/mod/lti/openid-registration.php",
                         "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                             "product_family_code": "moodle", "version": "4.5"}})

    def do_POST(self) -> None:  # noqa: N802
        srv: Any = self.server
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "invalid_token"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.posted.append(body)
        self._send(200, {**body, "client_id": "dyn-client-1",
                         "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                             **body["https://purl.imsglobal.org/spec/lti-tool-configuration"], "deployment_id": "42"}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def platform_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.posted = []
    srv.issuer = None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _config_url(srv):
    return f"http://127.0.0.1:{srv.server_address[1]}/mod/lti/openid-configuration.php"


@pytest.fixture
def invite(app, db_session):
    """A registration link's secret, as `caseload platform registration-url` creates it."""
    with app.app_context():
        token, _ = create_invite(db_session, hours=1, label="district Moodle")
    db_session.commit()
    return token


def _register(client, srv, invite, token=TOKEN, **extra):
    return client.get("/lti/register", query_string={"invite": invite, "openid_configuration": _config_url(srv),
                                                      "registration_token": token, **extra})


def test_registration_stores_platform_and_deployment_and_closes(client, db_session, platform_server, invite):
    resp = _register(client, platform_server, invite)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "registration.js" in resp.get_data(as_text=True)
    posted = platform_server.posted[0]
    assert posted["initiate_login_uri"].endswith("/lti/login") and posted["jwks_uri"].endswith("/lti/jwks")
    assert "contextmembership.readonly" in posted["scope"]
    platform = db_session.scalars(select(Platform)).one()
    assert (platform.lms, platform.client_id) == ("moodle", "dyn-client-1")
    assert platform.auth_token_url.endswith("/mod/lti/token.php")
    dep = db_session.scalars(select(Deployment)).one()
    assert (dep.deployment_id, dep.status) == ("42", "active")
    spent = db_session.scalars(select(RegistrationInvite)).one()
    assert spent.used_at is not None and spent.platform_id == platform.id
    assert len(spent.token_sha256) == 64 and invite not in spent.token_sha256  # only a hash is stored


def test_bad_registration_token_writes_nothing_and_keeps_the_link(client, db_session, platform_server, invite):
    resp = _register(client, platform_server, invite, token="wrong")
    assert resp.status_code == 502 and "refused the registration" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 0
    assert _register(client, platform_server, invite).status_code == 200  # a failed attempt does not spend it


def test_issuer_that_does_not_match_the_configuration_url_is_refused(client, db_session, platform_server, invite):
    platform_server.issuer = "https://evil.example.test"
    resp = _register(client, platform_server, invite)
    assert resp.status_code == 400 and "does not match" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 0


def test_unreachable_platform_and_duplicate_registration(app, client, db_session, platform_server, invite):
    resp = client.get("/lti/register", query_string={"invite": invite, "openid_configuration": "http://127.0.0.1:9/x"})
    assert resp.status_code == 502
    ok = _register(client, platform_server, invite)
    assert ok.status_code == 200
    with app.app_context():
        second, _ = create_invite(db_session, hours=1)
    db_session.commit()
    again = _register(client, platform_server, second)
    assert again.status_code == 409 and "already known" in again.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 1


class _Seen(_Handler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.fetched.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_without_a_valid_unspent_link_nothing_is_fetched_or_stored(app, client, db_session, invite):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Seen)
    srv.posted, srv.issuer, srv.fetched = [], None, []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with app.app_context():
            expired, row = create_invite(db_session, hours=1)
            row.expires_at = row.created_at - dt.timedelta(minutes=1)
        db_session.commit()
        for link, words in ((None, "needs a registration link"), ("", "needs a registration link"),
                            ("made-up", "not one Caseload issued"), (expired, "expired")):
            extra = {} if link is None else {"invite": link}
            resp = client.get("/lti/register", query_string={"openid_configuration": _config_url(srv),
                                                              "registration_token": TOKEN, **extra})
            assert resp.status_code == 403 and words in resp.get_data(as_text=True), (link, resp.status_code)
        assert srv.fetched == [] and srv.posted == []  # the URL a stranger gave was never fetched
        assert _register(client, srv, invite).status_code == 200
        used = _register(client, srv, invite)
        assert used.status_code == 403 and "already been used" in used.get_data(as_text=True)
        assert db_session.scalar(select(func.count()).select_from(Platform)) == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_registration_url_command_prints_a_one_time_link(app, runner, db_session):
    result = runner.invoke(main, ["platform", "registration-url", "--hours", "24", "--label", "district Canvas"])
    assert result.exit_code == 0, result.output
    url = result.output.splitlines()[0]
    assert url.startswith(app.config["CASELOAD"].base_url.rstrip("/") + "/lti/register?invite=")
    token = url.split("invite=", 1)[1]
    db_session.expire_all()
    row = db_session.scalars(select(RegistrationInvite)).one()
    assert row.label == "district Canvas" and row.used_at is None and token not in row.token_sha256
    assert dt.timedelta(hours=23) < row.expires_at - row.created_at <= dt.timedelta(hours=24, seconds=5)
    bad = runner.invoke(main, ["platform", "registration-url", "--hours", "0"])
    assert bad.exit_code != 0 and "30 days" in bad.output

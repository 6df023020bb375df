"""LTI Dynamic Registration 1.0 against a test platform served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app.models import Deployment, Platform

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


def test_registration_stores_platform_and_deployment_and_closes(client, db_session, platform_server):
    resp = client.get("/lti/register", query_string={"openid_configuration": _config_url(platform_server),
                                                      "registration_token": TOKEN})
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


def test_bad_registration_token_writes_nothing(client, db_session, platform_server):
    resp = client.get("/lti/register", query_string={"openid_configuration": _config_url(platform_server),
                                                      "registration_token": "wrong"})
    assert resp.status_code == 502 and "refused the registration" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 0


def test_issuer_that_does_not_match_the_configuration_url_is_refused(client, db_session, platform_server):
    platform_server.issuer = "https://evil.example.test"
    resp = client.get("/lti/register", query_string={"openid_configuration": _config_url(platform_server),
                                                      "registration_token": TOKEN})
    assert resp.status_code == 400 and "does not match" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 0


def test_unreachable_platform_and_duplicate_registration(client, db_session, platform_server):
    resp = client.get("/lti/register", query_string={"openid_configuration": "http://127.0.0.1:9/x"})
    assert resp.status_code == 502
    ok = client.get("/lti/register", query_string={"openid_configuration": _config_url(platform_server),
                                                    "registration_token": TOKEN})
    assert ok.status_code == 200
    again = client.get("/lti/register", query_string={"openid_configuration": _config_url(platform_server),
                                                       "registration_token": TOKEN})
    assert again.status_code == 409 and "already known" in again.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Platform)) == 1

"""A launch produced by ``lti1p3platform`` (an LTI 1.3 platform implementation nobody on the team wrote): its
message launch answers Caseload's real OIDC login redirect and signs the id_token; Caseload accepts it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lti_app.models import Deployment, Enrollment, Platform
from tests.support.nrps_platform import public_pem_pair

lib = pytest.importorskip("lti1p3platform")

ISS = "https://lib-platform.example.test"
CLIENT_ID = "lib-launch-client"
LAUNCH_URL = "http://127.0.0.1:5000/lti/launch"


@pytest.fixture
def app_config():
    return {"cookie_secure": False}


def _library_launch(private_pem: str, public_pem: str, preflight: dict[str, str]) -> dict[str, Any]:
    from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
    from lti1p3platform.message_launch import MessageLaunchAbstract
    from lti1p3platform.registration import Registration
    from lti1p3platform.request import Request

    class Conf(LTI1P3PlatformConfAbstract):  # type: ignore[misc]
        def init_platform_config(self, **kwargs: Any) -> None:
            pass

        def get_registration_by_params(self, **kwargs: Any) -> Registration:
            reg = Registration()
            reg.set_iss(ISS).set_client_id(CLIENT_ID).set_deployment_id("1").set_launch_url(LAUNCH_URL)
            reg.set_platform_private_key(private_pem).set_platform_public_key(public_pem)
            return reg

    class Req(Request):  # type: ignore[misc]
        def build_metadata(self, request: Any) -> dict[str, Any]:
            return request  # type: ignore[no-any-return]

    class Launch(MessageLaunchAbstract):  # type: ignore[misc]
        def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return launch_data

    launch = Launch(Req({"method": "GET", "form_data": {}, "get_data": preflight, "headers": {}}), Conf())
    launch.set_user_data("lib-teacher-7", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                         full_name="Briar Hartwell", email_address="briar@example.test")
    launch.set_resource_link_claim("rl-lib-1", title="Accommodations")
    launch.set_launch_context_claim("lib-course-1", context_title="Chemistry", context_label="CHEM")
    return launch.lti_launch()  # type: ignore[no-any-return]


def test_launch_signed_by_lti1p3platform_is_accepted(client, db_session):
    from lti1p3platform.registration import Registration

    private_pem, public_pem = public_pem_pair()
    jwks = {"keys": Registration().set_platform_public_key(public_pem).set_platform_private_key(private_pem).get_jwks()}
    kid = Registration().set_platform_private_key(private_pem).get_kid()
    for key in jwks["keys"]:
        key.setdefault("kid", kid)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(jwks).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plat = Platform(name="lib", lms="generic", issuer=ISS, client_id=CLIENT_ID, auth_login_url=ISS + "/auth",
                        auth_token_url=ISS + "/token", keyset_url=f"http://127.0.0.1:{server.server_address[1]}/jwks",
                        status="active", settings={})
        db_session.add(plat)
        db_session.flush()
        db_session.add(Deployment(platform_id=plat.id, deployment_id="1", status="active"))
        db_session.commit()
        login = client.get("/lti/login", query_string={"iss": ISS, "login_hint": "lib-teacher-7",
                                                       "target_link_uri": LAUNCH_URL, "client_id": CLIENT_ID})
        assert login.status_code == 302
        preflight = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query).items()}
        launch_data = _library_launch(private_pem, public_pem, preflight)
        assert launch_data["launch_url"] == LAUNCH_URL
        resp = client.post("/lti/launch", data={"id_token": launch_data["id_token"], "state": launch_data["state"]})
        assert resp.status_code == 303, resp.get_data(as_text=True)
        assert resp.headers["Location"].startswith("/panels/course?t=")
        enrollment = db_session.scalars(select(Enrollment)).one()
        assert (enrollment.role, enrollment.state) == ("teacher", "active")
    finally:
        server.shutdown()
        server.server_close()

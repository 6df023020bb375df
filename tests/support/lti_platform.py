"""A test LTI 1.3 platform: its own RSA keys, a JWKS served over real HTTP on 127.0.0.1, and id_tokens signed
with them. It drives Caseload's real /lti/login and /lti/launch through a Flask test client."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = {
    "teacher": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "ta": "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
    "student": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
    "observer": "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor",
    "designer": "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
    "admin": "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
}


def new_rsa_key() -> tuple[Any, str, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    kid = uuid.uuid4().hex[:12]
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return key, pem, jwk


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        server: Any = self.server
        server.fetches += 1
        body = json.dumps({"keys": server.keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class LtiTestPlatform:
    issuer: str = "https://lms.example.test"
    client_id: str = "caseload-client"
    deployment_id: str = "1"
    tool_launch_url: str = "http://127.0.0.1:5000/lti/launch"
    keys: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    server: Any = None

    def start(self) -> LtiTestPlatform:
        _, pem, jwk = new_rsa_key()
        self.keys.append((jwk["kid"], pem, jwk))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
        self.server.keys = [jwk]
        self.server.fetches = 0
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    @property
    def jwks_fetches(self) -> int:
        return int(self.server.fetches)

    def rotate_key(self) -> None:
        _, pem, jwk = new_rsa_key()
        self.keys.append((jwk["kid"], pem, jwk))
        self.server.keys = [k[2] for k in self.keys]

    def register(self, session: Any, name: str = "testlms", lms: str = "moodle", deployment_status: str = "active") -> Any:
        from lti_app.models import Deployment, Platform

        plat = Platform(name=name, lms=lms, issuer=self.issuer, client_id=self.client_id,
                        auth_login_url=self.issuer + "/auth", auth_token_url=self.issuer + "/token",
                        keyset_url=self.jwks_url, status="active", settings={})
        session.add(plat)
        session.flush()
        session.add(Deployment(platform_id=plat.id, deployment_id=self.deployment_id, status=deployment_status))
        session.commit()
        return plat

    def claims(self, login_nonce: str, role: str = "teacher", sub: str = "teacher-1", context_id: str | None = "course-1",
               **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 60, "nonce": login_nonce,
            "name": "Rowan Ellery", "given_name": "Rowan", "family_name": "Ellery", "email": "rowan@example.test",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "target_link_uri": self.tool_launch_url,
            CLAIM + "roles": [ROLE[r] for r in role.split(",")] if role else [],
            CLAIM + "resource_link": {"id": "rl-1", "title": "Accommodations"},
        }
        if context_id:
            claims[CLAIM + "context"] = {"id": context_id, "title": "Algebra I", "label": "ALG1",
                                         "type": ["CourseSection"]}
        for key, value in overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    def sign(self, claims: dict[str, Any], kid: str | None = None, alg: str = "RS256", key_pem: str | None = None,
             headers: dict[str, Any] | None = None) -> str:
        kid = kid or self.keys[-1][0]
        pem = key_pem or next(p for k, p, _ in self.keys if k == kid)
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": kid, **(headers or {})})
        if alg.startswith("HS"):
            return jwt.encode(claims, "shared-secret-" + "x" * 32, algorithm=alg, headers={"kid": kid})
        return jwt.encode(claims, _loaded_key(pem), algorithm=alg, headers={"kid": kid, **(headers or {})})

    # --- driving the tool ------------------------------------------------------------------------------------

    def start_login(self, client: Any, login_hint: str = "hint", **extra: str) -> dict[str, str]:
        params = {"iss": self.issuer, "login_hint": login_hint, "target_link_uri": self.tool_launch_url,
                  "client_id": self.client_id, "lti_deployment_id": self.deployment_id, **extra}
        resp = client.get("/lti/login", query_string=params)
        if "lti_storage_target" in extra:  # the platform-storage page continues to the LMS by script
            assert resp.status_code == 200, resp.get_data(as_text=True)
            import html
            import re

            location = html.unescape(re.search(r'data-next="([^"]+)"', resp.get_data(as_text=True)).group(1))
        else:
            assert resp.status_code == 302, resp.get_data(as_text=True)
            location = resp.headers["Location"]
        q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        q["_set_cookie"] = "; ".join(resp.headers.getlist("Set-Cookie"))
        return q

    def launch(self, client: Any, role: str = "teacher", token: str | None = None, state: str | None = None,
               **claim_overrides: Any) -> Any:
        login = self.start_login(client)
        if token is None:
            token = self.sign(self.claims(login["nonce"], role=role, **claim_overrides))
        return client.post("/lti/launch", data={"id_token": token, "state": state or login["state"]})


_KEYS: dict[str, Any] = {}


def _loaded_key(pem: str) -> Any:
    """Parsing (and validating) an RSA private key costs milliseconds: do it once per key."""
    if pem not in _KEYS:
        _KEYS[pem] = serialization.load_pem_private_key(pem.encode(), password=None)
    return _KEYS[pem]


def random_nonce() -> str:
    return secrets.token_urlsafe(16)

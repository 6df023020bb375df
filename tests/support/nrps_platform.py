"""A local LTI Advantage platform for roster tests: an OAuth2 token endpoint and a paged NRPS endpoint.

It runs a real HTTP server on 127.0.0.1 (a daemon thread), so the code under test goes through its real
HTTP wrapper, real client-assertion signing and real paging. The token endpoint verifies the tool's client
assertion the way a platform must (1EdTech Security Framework §4.1.1): RS256 signature against the tool's
JWKS, ``iss`` = ``sub`` = client_id, ``aud`` = the token URL, unexpired, ``jti`` not reused. The NRPS
endpoint (NRPS 2.0 §2) requires a bearer token with the membership scope, the membership media type in
``Accept``, pages with ``limit`` and answers ``Link: <...>; rel="next"``.

Faults can be queued (``fail_next``) to test retries: the next N requests to a path answer with the given
status (e.g. 429 with ``Retry-After``) before the endpoint behaves normally again.

Also here: ``Lti1p3PlatformServer``, the same two endpoints served by the third-party ``lti1p3platform``
package (its own access-token issuing and validation), to check Caseload against an implementation
nobody on this team wrote.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from tests.support.loopback import LoopbackServer

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"



@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"error": "injected fault"})


@dataclass
class Context:
    context_id: str
    title: str = "Test course"
    label: str = "TEST"
    members: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        return

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, path: str) -> bool:
        fault = self.server.platform.take_fault(path)
        if fault is None:
            return False
        self._send(fault.status, fault.body, fault.headers)
        return True

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        platform = self.server.platform
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        platform.record("POST", path, dict(self.headers))
        if self._fault(path):
            return
        if path != "/token":
            self._send(404, {"error": "not_found"})
            return
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        status, body = platform.issue_token(form)
        self._send(status, body, {"Cache-Control": "no-store"})

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        platform = self.server.platform
        parts = urlsplit(self.path)
        platform.record("GET", parts.path, dict(self.headers), parts.query)
        if self._fault(parts.path):
            return
        if not parts.path.startswith("/nrps/"):
            self._send(404, {"error": "not_found"})
            return
        status, body, headers = platform.memberships(parts.path.removeprefix("/nrps/"), parse_qs(parts.query),
                                                     self.headers.get("Authorization", ""),
                                                     self.headers.get("Accept", ""))
        self._send(status, body, headers, MEMBERSHIP_MEDIA_TYPE if status == 200 else "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    platform: NrpsTestPlatform


class NrpsTestPlatform(LoopbackServer):
    """``with NrpsTestPlatform(client_id, tool_jwks) as p: ...`` — ``p.token_url``, ``p.nrps_url(ctx)``."""

    def __init__(self, client_id: str, tool_jwks: dict[str, Any] | Callable[[], dict[str, Any]],
                 *, token_lifetime: int = 3600, default_page_size: int = 10, max_page_size: int = 100,
                 audience: str | None = None, include_messages_with_rlid: bool = False) -> None:
        self.client_id = client_id
        self._tool_jwks = tool_jwks
        self.token_lifetime = token_lifetime
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self._audience = audience
        self.include_messages_with_rlid = include_messages_with_rlid
        self.contexts: dict[str, Context] = {}
        self.tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self.tokens_issued = 0
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self.refused_assertions: list[str] = []
        self._used_jti: set[str] = set()
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> NrpsTestPlatform:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.platform = self
        return self._serve(server, "nrps-test-platform")

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def audience(self) -> str:
        return self._audience or self.token_url

    def nrps_url(self, context_id: str) -> str:
        return f"{self.base_url}/nrps/{context_id}"

    # -- arranging ---------------------------------------------------------------------------------------
    def set_members(self, context_id: str, members: Iterable[dict[str, Any]], title: str = "Test course") -> None:
        with self._lock:
            self.contexts[context_id] = Context(context_id=context_id, title=title, members=list(members))

    def fail_next(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def record(self, method: str, path: str, headers: dict[str, str], query: str = "") -> None:
        with self._lock:
            self.requests.append((method, path, headers, query))

    def requests_to(self, path_prefix: str) -> list[tuple[str, str, dict[str, str], str]]:
        with self._lock:
            return [r for r in self.requests if r[1].startswith(path_prefix)]

    # -- token endpoint (Security Framework §4.1) --------------------------------------------------------
    def _jwks(self) -> dict[str, Any]:
        return self._tool_jwks() if callable(self._tool_jwks) else self._tool_jwks

    def _refuse(self, reason: str, error: str = "invalid_client", status: int = 401) -> tuple[int, dict[str, Any]]:
        self.refused_assertions.append(reason)
        return status, {"error": error, "error_description": reason}

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials":
            return self._refuse("grant_type must be client_credentials", "unsupported_grant_type", 400)
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._refuse("wrong client_assertion_type", "invalid_request", 400)
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._refuse("client_assertion is not a JWT")
        if header.get("alg") != "RS256":
            return self._refuse("client_assertion must be signed with RS256")
        keys = [k for k in self._jwks().get("keys", []) if k.get("kid") == header.get("kid")]
        if not keys:
            return self._refuse("unknown kid")
        try:
            claims = jwt.decode(assertion, jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=self.audience,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            return self._refuse(f"client_assertion rejected: {type(exc).__name__}")
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            return self._refuse("iss and sub must be the client_id")
        with self._lock:
            if claims["jti"] in self._used_jti:
                return self._refuse("jti already used")
            self._used_jti.add(claims["jti"])
        scopes = frozenset(form.get("scope", "").split())
        if NRPS_SCOPE not in scopes:
            return self._refuse("scope not allowed", "invalid_scope", 400)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (time.time() + self.token_lifetime, scopes)
            self.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime,
                     "scope": " ".join(sorted(scopes))}

    def expire_all_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    # -- NRPS endpoint (NRPS 2.0 §2.3-2.4) -----------------------------------------------------------------
    def memberships(self, context_id: str, query: dict[str, list[str]], authorization: str,
                    accept: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            entry = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if entry is None or entry[0] < time.time():
            return 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if NRPS_SCOPE not in entry[1]:
            return 403, {"error": "insufficient_scope"}, {}
        if MEMBERSHIP_MEDIA_TYPE not in accept:
            return 406, {"error": "not_acceptable"}, {}
        context = self.contexts.get(context_id)
        if context is None:
            return 404, {"error": "no such context"}, {}
        limit = min(int(query.get("limit", [self.default_page_size])[0]), self.max_page_size)
        page = int(query.get("page", ["1"])[0])
        rlid = query.get("rlid", [""])[0]
        start = (page - 1) * limit
        members = context.members[start:start + limit]
        if not (rlid and self.include_messages_with_rlid):
            members = [{k: v for k, v in m.items() if k != "message"} for m in members]
        body = {"id": self.nrps_url(context_id),
                "context": {"id": context_id, "label": context.label, "title": context.title},
                "members": members}
        headers: dict[str, str] = {}
        if start + limit < len(context.members):
            params = {"limit": str(limit), "page": str(page + 1)}
            if rlid:
                params["rlid"] = rlid
            headers["Link"] = f'<{self.nrps_url(context_id)}?{urlencode(params)}>; rel="next"'
        return 200, body, headers


def make_tool_key(session: Any, kid: str | None = None) -> dict[str, Any]:
    """Store a current tool signing key (as ``ToolKey`` rows hold it: PEM encrypted with the data keys) and
    return the tool JWKS a platform would fetch from /lti/jwks. Needs an app context."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from lti_app.crypto import cipher
    from lti_app.models import ToolKey

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    kid = kid or secrets.token_hex(8)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, alg="RS256", use="sig")
    session.add(ToolKey(kid=kid, private_key_encrypted=cipher().encrypt(pem.decode()), public_jwk=jwk,
                        state="current"))
    session.flush()
    return {"keys": [jwk]}


def public_pem_pair() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM) strings, for a platform's own signing key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
            private.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def member(user_id: str, roles: Iterable[str] = ("Learner",), *, name: str = "", status: str = "Active",
           email: str | None = None, sourcedid: str = "", **extra: Any) -> dict[str, Any]:
    """An NRPS member object (NRPS 2.0 §2.2) with fictional data."""
    given, _, family = name.partition(" ")
    data: dict[str, Any] = {"status": status, "roles": list(roles), "user_id": user_id,
                            "lis_person_sourcedid": sourcedid}
    if name:
        data.update(name=name, given_name=given, family_name=family)
    if email is not None:
        data["email"] = email
    data.update(extra)
    return data


# -- lti1p3platform (third-party platform implementation) ----------------------------------------------------

def _lti1p3platform_classes() -> tuple[type, type, type]:
    """Build the lti1p3platform subclasses lazily so importing this module never needs the package."""
    from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
    from lti1p3platform.membership import Context as LibContext
    from lti1p3platform.registration import Registration
    from lti1p3platform.request import Request
    from lti1p3platform.service_connector import NamesRoleProvisioningService

    class PlatformConf(LTI1P3PlatformConfAbstract):  # type: ignore[misc]
        def init_platform_config(self, **kwargs: Any) -> None:
            self._kwargs = kwargs

        def get_registration_by_params(self, **kwargs: Any) -> Registration:
            k = self._kwargs
            reg = Registration()
            reg.set_iss(k["iss"]).set_client_id(k["client_id"]).set_deployment_id("1")
            reg.set_platform_private_key(k["private_pem"]).set_platform_public_key(k["public_pem"])
            reg.set_tool_key_set(k["tool_jwks"])
            return reg

    class StdlibRequest(Request):  # type: ignore[misc]
        def build_metadata(self, request: Any) -> dict[str, Any]:
            return request  # type: ignore[no-any-return]

    class Memberships(NamesRoleProvisioningService):  # type: ignore[misc]
        members: list[dict[str, Any]] = []
        context_id = ""

        def get_context_by_id(self) -> Any:
            return LibContext(id=self.context_id, label="LIB", title="Library course")

        def get_member_data_page(self, page: int = 1, limit: int | None = None, role: str | None = None,
                                 since: str | None = None, **_: Any) -> dict[str, Any]:
            if limit is None:
                return {"content": list(self.members), "has_next": False}
            start = (int(page) - 1) * int(limit)
            return {"content": self.members[start:start + int(limit)],
                    "has_next": start + int(limit) < len(self.members)}

    return PlatformConf, StdlibRequest, Memberships


class Lti1p3PlatformServer(LoopbackServer):
    """The token and NRPS endpoints as implemented by the ``lti1p3platform`` package.

    What the package offers (read from its source, version 0.1.x): ``LTI1P3PlatformConfAbstract.get_access_token``
    checks the grant type and the required form fields, verifies the client assertion's RS256 signature
    against the tool key set (it does not check ``aud``, ``iss``/``sub`` or ``jti``), and returns a JWT access
    token signed with the platform key; ``validate_token`` checks that token's signature, issuer, expiry and
    scopes; ``NamesRoleProvisioningService.handle_get_members`` serves a membership container. This adapter is
    the "framework" glue the package leaves to its user (it ships Django/FastAPI glue only): it turns an
    http.server request into the package's request dict and its ``Response`` into HTTP. Two things the glue
    has to fix: the package puts the next-page URL in the body (``next``) instead of the ``Link`` header NRPS
    2.0 §2.4.2 requires, so the glue moves it there (the package's own ``generate_next_link`` helper formats
    it); and it adds 1 to the ``page`` query value without converting it from a string, so the glue passes
    numeric query values as integers.
    """

    def __init__(self, client_id: str, tool_jwks: dict[str, Any], private_pem: str, public_pem: str) -> None:
        conf_cls, request_cls, service_cls = _lti1p3platform_classes()
        self.client_id = client_id
        self._conf_cls, self._request_cls, self._service_cls = conf_cls, request_cls, service_cls
        self._conf_kwargs = {"client_id": client_id, "tool_jwks": tool_jwks, "private_pem": private_pem,
                             "public_pem": public_pem, "iss": "https://lti1p3platform.example.test"}
        self.members: list[dict[str, Any]] = []
        self.context_id = "lib-ctx"
        self.tokens_issued = 0
        self.nrps_requests = 0

    def _conf(self) -> Any:
        conf = self._conf_cls(**self._conf_kwargs)
        conf.get_registration()
        return conf

    def start(self) -> Lti1p3PlatformServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                try:
                    body = outer._conf().get_access_token(form)
                except Exception as exc:  # noqa: BLE001 - the package raises several unrelated types
                    self._send(401, {"error": "invalid_client", "error_description": type(exc).__name__})
                    return
                outer.tokens_issued += 1
                self._send(200, dict(body))

            def do_GET(self) -> None:  # noqa: N802
                from lti1p3platform.response import generate_next_link

                parts = urlsplit(self.path)
                outer.nrps_requests += 1
                query = {k: (int(v[0]) if v[0].isdigit() else v[0]) for k, v in parse_qs(parts.query).items()}
                request = outer._request_cls({"method": "GET", "form_data": {}, "get_data": query,
                                              "headers": dict(self.headers), "content_type": None,
                                              "path": parts.path, "json": None})
                service = outer._service_cls(request, outer._conf(), outer.nrps_url)
                service.members = outer.members
                service.context_id = outer.context_id
                try:
                    response = service.handle_get_members()
                except Exception as exc:  # noqa: BLE001 - invalid tokens surface as library exceptions
                    status = getattr(exc, "status_code", 401)
                    self._send(status, {"error": type(exc).__name__})
                    return
                body = dict(response.result or {})
                headers = {}
                if body.get("next"):
                    headers["Link"] = generate_next_link(body.pop("next"))
                self._send(response.code, body, headers, response.media_type)

        return self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "lti1p3platform")

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def nrps_url(self) -> str:
        return f"{self.base_url}/nrps/{self.context_id}"


# -- an in-memory stand-in for the HTTP wrapper (unit tests of the clients, no sockets) -------------------------

class FakeResponse:
    def __init__(self, status: int, text: str = "{}", headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.text = text
        self.content = text.encode()
        self.headers = headers or {}

    def json(self) -> Any:
        return json.loads(self.text)


class FakeHttp:
    """Answers queued responses in order and records each call as (method, url, headers, data). Like the real
    wrapper it raises ``integrations.http.HttpError`` for 4xx/5xx answers (retries are the wrapper's business)."""

    def __init__(self, responses: Iterable[FakeResponse]) -> None:
        self._responses = deque(responses)
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def _answer(self, method: str, url: str, headers: dict[str, str] | None, data: Any) -> FakeResponse:
        self.calls.append((method, url, dict(headers or {}), data))
        response = self._responses.popleft()
        if response.status_code >= 400:
            raise http_error(response.status_code, response.content)
        return response

    def get(self, url: str, *, headers: dict[str, str] | None = None, **_: Any) -> FakeResponse:
        return self._answer("GET", url, headers, None)

    def post(self, url: str, *, data: Any = None, headers: dict[str, str] | None = None, **_: Any) -> FakeResponse:
        return self._answer("POST", url, headers, data)


def http_error(status: int, body: bytes = b"") -> Exception:
    """The wrapper's typed error for an HTTP status."""
    from integrations.http import HttpError

    return HttpError(f"HTTP {status}", status, body)

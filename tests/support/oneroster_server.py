"""A local OneRoster 1.2 rostering server for tests: OAuth 2.0 client credentials (HTTP Basic), limit/offset paging
with ``X-Total-Count``, ``filter=dateLastModified>'...'`` deltas and ``status: tobedeleted`` tombstones. Fictional
data only."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.loopback import LoopbackServer

ROOT = "/ims/oneroster/rostering/v1p2"
SCOPE = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
_FILTER = re.compile(r"^dateLastModified>'([^']+)'$")



def stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class OneRosterServer(LoopbackServer):
    def __init__(self, client_id: str = "or-client", client_secret: str = "or-secret", max_limit: int = 100) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.max_limit = max_limit
        self.data: dict[str, dict[str, dict[str, Any]]] = {"users": {}, "classes": {}, "enrollments": {}}
        self.tokens: set[str] = set()
        self.requests: list[str] = []
        self.token_requests = 0
        self._lock = threading.Lock()
        self.clock = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)

    # -- data ---------------------------------------------------------------------------------------------------
    def tick(self, minutes: int = 1) -> str:
        self.clock += dt.timedelta(minutes=minutes)
        return stamp(self.clock)

    def user(self, sourced_id: str, given: str, family: str, role: str = "student", *, identifier: str | None = None,
             status: str = "active") -> None:
        self.data["users"][sourced_id] = {
            "sourcedId": sourced_id, "status": status, "dateLastModified": self.tick(), "enabledUser": True,
            "username": f"{given}.{family}".lower(), "givenName": given, "familyName": family,
            "identifier": identifier or "", "email": f"{given}.{family}@example.test".lower(),
            "roles": [{"roleType": "primary", "role": role, "org": {"sourcedId": "school-1", "type": "org"}}],
        }

    def klass(self, sourced_id: str, title: str, status: str = "active") -> None:
        self.data["classes"][sourced_id] = {"sourcedId": sourced_id, "status": status, "title": title,
                                            "dateLastModified": self.tick()}

    def enroll(self, sourced_id: str, user: str, klass: str, role: str = "student", status: str = "active",
               **extra: Any) -> None:
        self.data["enrollments"][sourced_id] = {
            "sourcedId": sourced_id, "status": status, "dateLastModified": self.tick(), "role": role,
            "primary": role == "teacher", "user": {"href": f"{ROOT}/users/{user}", "sourcedId": user, "type": "user"},
            "class": {"href": f"{ROOT}/classes/{klass}", "sourcedId": klass, "type": "class"}, **extra,
        }

    def tombstone(self, collection: str, sourced_id: str) -> None:
        self.data[collection][sourced_id].update(status="tobedeleted", dateLastModified=self.tick())

    def remove(self, collection: str, sourced_id: str) -> None:
        """A hard delete without tombstone (only a full pull notices)."""
        del self.data[collection][sourced_id]

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def start(self) -> OneRosterServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                expected = base64.b64encode(f"{outer.client_id}:{outer.client_secret}".encode()).decode()
                outer.token_requests += 1
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._send(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
                    self._send(400, {"error": "invalid_scope"})
                    return
                token = secrets.token_urlsafe(16)
                outer.tokens.add(token)
                self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": SCOPE})

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                with outer._lock:
                    outer.requests.append(self.path)
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in outer.tokens:
                    self._send(401, {"imsx_codeMajor": "failure", "imsx_description": "unauthorised"})
                    return
                path = parts.path.removeprefix(ROOT + "/")
                if path.startswith("users/"):
                    record = outer.data["users"].get(unquote(path.removeprefix("users/")))
                    self._send(200 if record else 404, {"user": record} if record else {"imsx_codeMajor": "failure"})
                    return
                if path not in outer.data:
                    self._send(404, {"imsx_codeMajor": "failure"})
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                records = sorted(outer.data[path].values(), key=lambda r: r["sourcedId"])
                if "filter" in query:
                    match = _FILTER.match(query["filter"])
                    if not match:
                        self._send(400, {"imsx_codeMajor": "failure", "imsx_description": "bad filter"})
                        return
                    records = [r for r in records if r["dateLastModified"] > match.group(1)]
                limit = min(int(query.get("limit", 100)), outer.max_limit)
                offset = int(query.get("offset", 0))
                self._send(200, {path: records[offset:offset + limit]}, {"X-Total-Count": str(len(records))})

        return self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "oneroster-test-server")

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    def requests_to(self, collection: str) -> list[str]:
        with self._lock:
            return [r for r in self.requests if urlsplit(r).path == f"{ROOT}/{collection}"]

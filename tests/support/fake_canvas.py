"""A faithful fake of the Canvas endpoints Caseload uses to apply accommodations, on a real loopback HTTP server.

Shapes follow the Canvas REST documentation and canvas-lms source (see /work/shared/research and
``integrations/canvas/client.py``):

- ``POST /login/oauth2/token`` grant_type=refresh_token → ``{access_token, token_type, expires_in}``; a revoked
  refresh token → 400 ``{"error": "invalid_grant"}``.
- Bearer tokens expire; an expired or unknown token → 401 with ``WWW-Authenticate: Bearer realm="canvas-lms"``.
- ``GET /api/v1/courses/:cid/quizzes`` (paged, ``Link: rel="next"``), Classic quiz objects with ``time_limit``
  minutes (null = untimed), ``allowed_attempts``, ``assignment_id``, ``unlock_at``/``lock_at``.
- ``GET /api/v1/courses/:cid/quizzes/:qid/submissions`` → ``{"quiz_submissions": [...]}`` including the
  ``settings_only`` submissions extensions create (``extra_time``, ``extra_attempts``).
- ``POST /api/v1/courses/:cid/quizzes/:qid/extensions`` body ``{"quiz_extensions": [...]}``: every student is
  looked up in the course first, so one unknown student fails the whole batch (404, nothing written); values
  are *set*; ``extra_time`` over 10080 → 400.
- New Quizzes: ``GET /api/quiz/v1/courses/:cid/quizzes``; ``POST .../quizzes/:aid/accommodations`` with a JSON
  array → 200 ``{message, successful: [{user_id}], failed: [{user_id, error}]}`` (students in
  ``new_quiz_failures`` fail).
- Throttling: a leaky bucket per token (``get_cost``/``write_cost`` in, ``leak_rate`` per second out) reported in
  ``X-Rate-Limit-Remaining``; ``throttle_next`` makes the next
  requests answer 403 "Rate Limit Exceeded" (or 429).
- ``latency`` seconds are added to every request (benchmarks); ``requests`` records (method, path, token).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackServer

MAX_EXTRA_TIME = 10080



@dataclass
class FakeCourse:
    id: str
    students: set[str] = field(default_factory=set)
    quizzes: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    new_quizzes: dict[str, dict[str, Any]] = field(default_factory=dict)
    accommodations: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class FakeCanvas(LoopbackServer):
    """``with FakeCanvas() as canvas: ...`` — ``canvas.base_url``, ``canvas.add_course(...)``, ``canvas.refresh_token``."""

    def __init__(self, *, latency: float = 0.0, token_lifetime: int = 3600, page_size: int = 10,
                 bucket: float = 700.0) -> None:
        self.latency = latency
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.bucket_size = bucket
        self.client_id = "10000000000042"
        self.client_secret = secrets.token_urlsafe(16)
        self.refresh_token = secrets.token_urlsafe(24)
        self.courses: dict[str, FakeCourse] = {}
        self.access_tokens: dict[str, float] = {}
        self.buckets: dict[str, tuple[float, float]] = {}
        self.get_cost = 0.1
        self.write_cost = 0.2
        self.leak_rate = 10.0
        """Costs are CPU seconds in Canvas (typically fractions of one); the bucket holds ``bucket`` units."""
        self.new_quiz_failures: dict[str, str] = {}
        self.codes: dict[str, str] = {}
        self.assignment_overrides: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.allowed_scopes: set[str] | None = None
        self.requested_scopes: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._throttle: deque[int] = deque()
        self._faults: deque[tuple[str, int]] = deque()
        self._lock = threading.RLock()
        self._next_id = 1000

    # ------------------------------------------------------------------------------------- lifecycle
    def start(self) -> FakeCanvas:
        handler = type("Handler", (_Handler,), {"fake": self})
        return self._serve(ThreadingHTTPServer(("127.0.0.1", 0), handler), "fake-canvas")

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/login/oauth2/token"

    # ------------------------------------------------------------------------------------- arranging
    def _id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    def add_course(self, course_id: str, students: list[str] | None = None) -> FakeCourse:
        with self._lock:
            course = self.courses.setdefault(course_id, FakeCourse(course_id))
            course.students.update(students or [])
            return course

    def add_quiz(self, course_id: str, title: str, time_limit: int | None, *, allowed_attempts: int = 1,
                 quiz_type: str = "assignment", lock_at: str | None = None, unlock_at: str | None = None) -> str:
        quiz_id = self._id()
        with self._lock:
            self.courses[course_id].quizzes[quiz_id] = {
                "id": int(quiz_id), "title": title, "quiz_type": quiz_type, "time_limit": time_limit,
                "allowed_attempts": allowed_attempts, "published": True, "unlock_at": unlock_at, "lock_at": lock_at,
                "assignment_id": int(self._id()) if quiz_type in ("assignment", "graded_survey") else None}
        return quiz_id

    def set_time_limit(self, course_id: str, quiz_id: str, minutes: int | None) -> None:
        with self._lock:
            self.courses[course_id].quizzes[quiz_id]["time_limit"] = minutes

    def add_new_quiz(self, course_id: str, title: str, time_limit_seconds: int | None) -> str:
        aid = self._id()
        with self._lock:
            settings = None if time_limit_seconds is None else {
                "has_time_limit": True, "session_time_limit_in_seconds": time_limit_seconds}
            self.courses[course_id].new_quizzes[aid] = {"id": aid, "title": title, "quiz_settings": settings}
        return aid

    def teacher_extension(self, course_id: str, quiz_id: str, user_id: str, **values: Any) -> None:
        """A teacher's own extension, set in Canvas's moderate page."""
        with self._lock:
            sub = self.courses[course_id].submissions.setdefault(quiz_id, {}).setdefault(
                user_id, _submission(quiz_id, user_id))
            sub.update(values)

    def extension(self, course_id: str, quiz_id: str, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.courses[course_id].submissions.get(quiz_id, {}).get(user_id)

    def expire_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def revoke_refresh_token(self) -> None:
        self.refresh_token = secrets.token_urlsafe(24)
        self.expire_tokens()

    def throttle_next(self, count: int, status: int = 403) -> None:
        with self._lock:
            self._throttle.extend([status] * count)

    def fail_next(self, method: str, status: int) -> None:
        with self._lock:
            self._faults.append((method, status))

    def count(self, method: str | None = None, prefix: str = "/api/") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and p.startswith(prefix))

    # --------------------------------------------------------------------------------------- serving
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
               ) -> tuple[int, Any, dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.requests.append((method, path))
            if path == "/login/oauth2/token" and method == "POST":
                return self._token(body)
            if path == "/login/oauth2/auth" and method == "GET":
                return self._authorize(query)
            auth = headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
            expiry = self.access_tokens.get(token)
            if expiry is None or expiry < time.time():
                return 401, {"errors": [{"message": "Invalid access token."}]}, {
                    "WWW-Authenticate": 'Bearer realm="canvas-lms"'}
            if self._throttle:
                status = self._throttle.popleft()
                return status, ({"message": "Rate Limit Exceeded"} if status == 403 else
                                {"errors": [{"message": "Too many requests"}]}), {"X-Rate-Limit-Remaining": "0"}
            if self._faults and self._faults[0][0] == method:
                _, status = self._faults.popleft()
                return status, {"errors": [{"message": "injected fault"}]}, {}
            # leaky bucket: each request adds its cost, the bucket drains at leak_rate per second
            now = time.monotonic()
            level, since = self.buckets.get(token, (0.0, now))
            cost = self.get_cost if method == "GET" else self.write_cost
            level = max(0.0, level - (now - since) * self.leak_rate) + cost
            self.buckets[token] = (level, now)
            limit = {"X-Rate-Limit-Remaining": f"{max(0.0, self.bucket_size - level):.1f}",
                     "X-Request-Cost": f"{cost:.2f}"}
            status, payload, extra = self._route(method, path, query, body)
            return status, payload, {**limit, **extra}

    def _authorize(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        """The admin's browser: Canvas checks the key and the scopes, the admin clicks Authorize, and the browser
        is sent back to the redirect URI with a one-time code (or ``error=invalid_scope``)."""
        q = {k: v[0] for k, v in query.items()}
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect:
            return 400, {"error": "invalid_client"}, {}
        scopes = set((q.get("scope") or "").split())
        sep = "&" if "?" in redirect else "?"
        if self.allowed_scopes is not None and not scopes <= self.allowed_scopes:
            return 302, {}, {"Location": f"{redirect}{sep}error=invalid_scope&state={q.get('state', '')}"}
        code = secrets.token_urlsafe(12)
        self.codes[code] = redirect
        self.requested_scopes = scopes
        return 302, {}, {"Location": f"{redirect}{sep}code={code}&state={q.get('state', '')}"}

    def _token(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}, {}
        if form.get("grant_type") == "authorization_code":
            if self.codes.pop(form.get("code", ""), None) != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}, {}
            token = secrets.token_urlsafe(24)
            self.access_tokens[token] = time.time() + self.token_lifetime
            return 200, {"access_token": token, "token_type": "Bearer", "refresh_token": self.refresh_token,
                         "expires_in": self.token_lifetime, "user": {"id": 1, "name": "Service Account"}}, {}
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "refresh_token not found"}, {}
        token = secrets.token_urlsafe(24)
        self.access_tokens[token] = time.time() + self.token_lifetime
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}, {}

    def _page(self, path: str, items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int((query.get("per_page") or [self.page_size])[0]), 100)
        page = int((query.get("page") or ["1"])[0])
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.base_url}{path}?page={page + 1}&per_page={per_page}>; rel="next"'
        return chunk, headers

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes
               ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/api/v1/courses/([^/]+)/quizzes", path)
        if m and method == "GET":
            course = self.courses.get(m.group(1))
            if course is None:
                return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
            items, headers = self._page(path, list(course.quizzes.values()), query)
            return 200, items, headers
        m = re.fullmatch(r"/api/v1/courses/([^/]+)/quizzes/([^/]+)/submissions", path)
        if m and method == "GET":
            course = self.courses.get(m.group(1))
            if course is None or m.group(2) not in course.quizzes:
                return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
            subs = list(course.submissions.get(m.group(2), {}).values())
            items, headers = self._page(path, subs, query)
            return 200, {"quiz_submissions": items}, headers
        m = re.fullmatch(r"/api/v1/courses/([^/]+)/quizzes/([^/]+)/extensions", path)
        if m and method == "POST":
            return self._extensions(m.group(1), m.group(2), body)
        m = re.fullmatch(r"/api/v1/courses/([^/]+)/assignments/([^/]+)/overrides(?:/([^/]+))?", path)
        if m:
            return self._overrides(method, m.group(1), m.group(2), m.group(3), query, body)
        m = re.fullmatch(r"/api/quiz/v1/courses/([^/]+)/quizzes", path)
        if m and method == "GET":
            course = self.courses.get(m.group(1))
            if course is None:
                return 404, {"errors": [{"message": "not found"}]}, {}
            items, headers = self._page(path, list(course.new_quizzes.values()), query)
            return 200, items, headers
        m = re.fullmatch(r"/api/quiz/v1/courses/([^/]+)/quizzes/([^/]+)/accommodations", path)
        if m and method == "POST":
            return self._accommodations(m.group(1), m.group(2), body)
        return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}

    def _extensions(self, course_id: str, quiz_id: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        course = self.courses.get(course_id)
        if course is None or quiz_id not in course.quizzes:
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
        try:
            items = json.loads(body or b"{}").get("quiz_extensions")
        except (ValueError, AttributeError):
            items = None
        if not isinstance(items, list):
            return 400, {"errors": [{"message": "missing quiz_extensions"}]}, {}
        # every student is found before anything is written: one unknown student fails the batch
        for item in items:
            if str(item.get("user_id")) not in course.students:
                return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
            if int(item.get("extra_time") or 0) > MAX_EXTRA_TIME or int(item.get("extra_time") or 0) < 0:
                return 400, {"errors": [{"message": "extra_time must be between 0 and 10080"}]}, {}
        out = []
        for item in items:
            uid = str(item["user_id"])
            sub = course.submissions.setdefault(quiz_id, {}).setdefault(uid, _submission(quiz_id, uid))
            for key in ("extra_time", "extra_attempts"):
                if key in item:
                    sub[key] = int(item[key])
            out.append({"quiz_id": int(quiz_id), "user_id": int(uid) if uid.isdigit() else uid,
                        "extra_attempts": sub.get("extra_attempts"), "extra_time": sub.get("extra_time"),
                        "manually_unlocked": False, "end_at": None})
        return 200, {"quiz_extensions": out}, {}

    def _overrides(self, method: str, course_id: str, aid: str, oid: str | None, query: dict[str, list[str]],
                   body: bytes) -> tuple[int, Any, dict[str, str]]:
        """Ad-hoc assignment overrides. A student can belong to one override per assignment ("already belongs to
        an assignment override", canvas-lms assignment_override_student.rb). An update replaces the override's
        dates: a date not sent is no longer overridden."""
        course = self.courses.get(course_id)
        if course is None or not any(str(q.get("assignment_id")) == aid for q in course.quizzes.values()):
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
        overrides = self.assignment_overrides.setdefault((course_id, aid), {})
        if method == "GET" and oid is None:
            items, headers = self._page(f"/api/v1/courses/{course_id}/assignments/{aid}/overrides",
                                        list(overrides.values()), query)
            return 200, items, headers
        try:
            record = json.loads(body or b"{}").get("assignment_override")
        except (ValueError, AttributeError):
            record = None
        if not isinstance(record, dict):
            return 400, {"errors": {"assignment_override": "missing"}}, {}
        students = [str(i) for i in record.get("student_ids") or []]
        if not students or any(i not in course.students for i in students):
            return 400, {"errors": {"assignment_override_students": "invalid student"}}, {}
        for other_id, other in overrides.items():
            if other_id != oid and set(students) & {str(i) for i in other["student_ids"]}:
                return 400, {"errors": {"assignment_override_students": [
                    {"message": "already belongs to an assignment override"}]}}, {}
        if method == "POST" and oid is None:
            oid = self._id()
        elif method != "PUT" or oid not in overrides:
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}, {}
        overrides[oid] = {"id": int(oid), "assignment_id": int(aid), "title": record.get("title") or "",
                          "student_ids": [int(i) for i in students],
                          **{k: record.get(k) for k in ("due_at", "unlock_at", "lock_at")}}
        return 200 if method == "PUT" else 201, overrides[oid], {}

    def student_override(self, course_id: str, aid: str, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(o) for o in self.assignment_overrides.get((course_id, aid), {}).values()
                         if int(user_id) in o["student_ids"]), None)

    def _accommodations(self, course_id: str, aid: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        course = self.courses.get(course_id)
        if course is None or aid not in course.new_quizzes:
            return 404, {"errors": [{"message": "not found"}]}, {}
        try:
            items = json.loads(body or b"[]")
        except ValueError:
            items = None
        if not isinstance(items, list):
            return 400, {"errors": [{"message": "expected an array"}]}, {}
        ok, failed = [], []
        for item in items:
            uid = str(item.get("user_id"))
            if uid in self.new_quiz_failures or uid not in course.students:
                failed.append({"user_id": item.get("user_id"),
                               "error": self.new_quiz_failures.get(uid, "User is not enrolled in the course")})
                continue
            if int(item.get("extra_time") or 0) > MAX_EXTRA_TIME:
                failed.append({"user_id": item.get("user_id"), "error": "extra_time out of range"})
                continue
            course.accommodations.setdefault(aid, {})[uid] = {k: v for k, v in item.items() if k != "user_id"}
            ok.append({"user_id": item.get("user_id")})
        return 200, {"message": "Accommodations processed", "successful": ok, "failed": failed}, {}


def _submission(quiz_id: str, user_id: str) -> dict[str, Any]:
    return {"id": int(time.time_ns() % 10**9), "quiz_id": int(quiz_id), "user_id": int(user_id)
            if user_id.isdigit() else user_id, "workflow_state": "settings_only", "extra_time": None,
            "extra_attempts": None}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCanvas

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.fake.handle(method, parts.path, parse_qs(parts.query), self.headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

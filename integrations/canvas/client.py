"""Canvas REST client for applying accommodations: quizzes, Classic quiz extensions (read back through quiz
submissions), New Quizzes accommodations. No Flask, no database; every call goes through ``integrations.http``.

Canvas facts this follows (developerdocs.instructure.com; canvas-lms source):
- Access needs an OAuth2 token of an *API developer key*; access tokens last an hour and are renewed with the
  refresh token at ``/login/oauth2/token`` (grant_type=refresh_token). A 401 that carries ``WWW-Authenticate``
  means the token is invalid or expired: refresh once, then ask an admin to authorize again
  (``ReauthorizationRequired``); a 401 *without* it is a permission refusal (``CanvasError``).
- Throttling is a leaky bucket per token (``X-Rate-Limit-Remaining``, ``X-Request-Cost``); parallel requests pay a
  pre-flight penalty, so requests are serialised per client (one lock), the client slows down when the bucket
  runs low, and a 403 "Rate Limit Exceeded" or a 429 is retried with backoff.
- Lists are paged with ``Link: <...>; rel="next"``.
- ``POST /api/v1/courses/:course_id/quizzes/:quiz_id/extensions`` *sets* ``extra_time`` (minutes) and
  ``extra_attempts`` for each student listed (the whole batch fails if one student cannot be found in the course).
- New Quizzes: ``POST /api/quiz/v1/courses/:course_id/quizzes/:assignment_id/accommodations`` answers 200 with
  ``{"successful": [...], "failed": [{"user_id", "error"}]}``: a 200 is not success for every student.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from integrations.http import HttpClient, HttpError, HttpStatusError, response_json

log = logging.getLogger(__name__)

LOW_BUCKET = 100.0
"""Below this ``X-Rate-Limit-Remaining`` the client pauses before its next request (the bucket holds 700)."""
RATE_LIMIT_RETRIES = 5
PAGE_SIZE = 100

SCOPES: tuple[str, ...] = (
    "url:GET|/api/v1/courses/:course_id/quizzes",
    "url:GET|/api/v1/courses/:course_id/quizzes/:quiz_id/submissions",
    "url:POST|/api/v1/courses/:course_id/quizzes/:quiz_id/extensions",
    "url:GET|/api/quiz/v1/courses/:course_id/quizzes",
    "url:POST|/api/quiz/v1/courses/:course_id/quizzes/:assignment_id/accommodations",
    "url:GET|/api/v1/courses/:course_id/assignments/:assignment_id/overrides",
    "url:POST|/api/v1/courses/:course_id/assignments/:assignment_id/overrides",
    "url:PUT|/api/v1/courses/:course_id/assignments/:assignment_id/overrides/:id",
)
"""The only scopes Caseload asks for (scoped developer key): read quizzes and submissions, write extensions,
New Quizzes accommodations, and the student's own assignment override for the window guard."""


class CanvasError(Exception):
    """Canvas refused a request (4xx other than an expired token) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ReauthorizationRequired(CanvasError):
    """The refresh token no longer works (revoked, key disabled, scopes changed): an admin must authorize again."""


@dataclass
class CanvasTokens:
    """The developer key and tokens of one connection; ``on_refresh`` lets the caller store a new access token."""

    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    expires_at: float = 0.0
    on_refresh: Callable[[str, float], None] | None = None

    def valid(self, now: float) -> bool:
        return bool(self.access_token) and now < self.expires_at - 60


@dataclass(frozen=True)
class CanvasQuiz:
    id: str
    title: str
    quiz_type: str
    time_limit_minutes: int | None
    allowed_attempts: int | None
    assignment_id: str | None
    unlock_at: str | None
    lock_at: str | None
    published: bool


@dataclass(frozen=True)
class NewQuiz:
    assignment_id: str
    title: str
    time_limit_seconds: int | None


@dataclass(frozen=True)
class Extension:
    user_id: str
    extra_time: int | None
    extra_attempts: int | None


@dataclass(frozen=True)
class CallResult:
    request_id: str
    status: int
    body: Any


class CanvasClient:
    """One client per connection (per token): requests are serialised through ``_lock``."""

    def __init__(self, base_url: str, tokens: CanvasTokens, http: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.http = http or HttpClient()
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.calls = 0
        self.writes = 0

    # ------------------------------------------------------------------------------------------- tokens
    def _refresh(self) -> str:
        try:
            response = self.http.post(self.tokens.token_url, data={
                "grant_type": "refresh_token", "client_id": self.tokens.client_id,
                "client_secret": self.tokens.client_secret, "refresh_token": self.tokens.refresh_token})
            body = response_json(response)
        except HttpStatusError as exc:
            err = exc.body_json() if isinstance(exc.body_json(), dict) else {}
            if exc.status in (400, 401):
                raise ReauthorizationRequired(
                    f"Canvas refused the stored authorization ({err.get('error', exc.status)}); a Canvas "
                    "administrator must authorize Caseload again.", exc.status) from None
            raise CanvasError(f"Canvas token endpoint answered {exc.status}", exc.status) from None
        except (HttpError, ValueError) as exc:
            raise CanvasError(f"Canvas token endpoint could not be used: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise CanvasError("Canvas token endpoint answered without an access token")
        self.tokens.access_token = body["access_token"]
        self.tokens.expires_at = self._clock() + float(body.get("expires_in") or 3600)
        if self.tokens.on_refresh is not None:
            self.tokens.on_refresh(self.tokens.access_token, self.tokens.expires_at)
        return self.tokens.access_token

    def check_authorization(self) -> None:
        """Renew the access token now: proves the stored refresh token still works ("Test connection")."""
        self._refresh()

    def _token(self) -> str:
        if self.tokens.valid(self._clock()):
            return str(self.tokens.access_token)
        return self._refresh()

    # ------------------------------------------------------------------------------------------ requests
    def _request(self, method: str, path_or_url: str, *, write: bool = False, **kwargs: Any) -> tuple[
            requests.Response, str]:
        url = path_or_url if path_or_url.startswith("http") else f"{self.base_url}{path_or_url}"
        request_id = uuid.uuid4().hex
        refreshed = False
        limited = 0
        with self._lock:
            while True:
                headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json",
                           "X-Request-Id": request_id}
                self.calls += 1
                if write:
                    self.writes += 1
                try:
                    response = self.http.request(method, url, headers=headers, **kwargs)
                except HttpStatusError as exc:
                    body = exc.body.decode("utf-8", "replace")[:2000]
                    if exc.status == 401 and "www-authenticate" in {k.lower() for k in exc.headers}:
                        if refreshed:
                            raise ReauthorizationRequired("Canvas refused a freshly issued token; a Canvas "
                                                          "administrator must authorize Caseload again.", 401, body) from None
                        self.tokens.access_token = None
                        refreshed = True
                        continue
                    if exc.status == 403 and "rate limit exceeded" in body.lower() and limited < RATE_LIMIT_RETRIES:
                        self._sleep(min(30.0, 0.5 * 2 ** limited))
                        limited += 1
                        continue
                    raise CanvasError(f"Canvas answered {exc.status} to {method} {_path(url)}", exc.status,
                                      body) from None
                except HttpError as exc:
                    raise CanvasError(f"Canvas could not be reached ({exc})", exc.status) from None
                self._pace(response)
                return response, request_id

    def _pace(self, response: requests.Response) -> None:
        """Leave the bucket time to drain when it runs low, instead of running into 403s."""
        try:
            remaining = float(response.headers.get("X-Rate-Limit-Remaining", "inf"))
        except ValueError:
            return
        if remaining < LOW_BUCKET:
            self._sleep(min(10.0, (LOW_BUCKET - remaining) / 10.0))

    def _json(self, response: requests.Response) -> Any:
        try:
            return response_json(response)
        except ValueError:
            raise CanvasError(f"Canvas did not answer with JSON ({response.status_code})", response.status_code
                              ) from None

    def _pages(self, path: str, key: str | None = None) -> Iterator[Any]:
        url: str | None = f"{self.base_url}{path}{'&' if '?' in path else '?'}per_page={PAGE_SIZE}"
        while url:
            response, _ = self._request("GET", url)
            body = self._json(response)
            items = body.get(key, []) if key and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise CanvasError(f"Canvas answered an unexpected shape for {_path(url)}")
            yield from items
            url = response.links.get("next", {}).get("url")

    # ----------------------------------------------------------------------------------------- quizzes
    def list_quizzes(self, course_id: str) -> list[CanvasQuiz]:
        out = []
        for q in self._pages(f"/api/v1/courses/{_seg(course_id)}/quizzes"):
            if not isinstance(q, dict) or "id" not in q:
                continue
            out.append(CanvasQuiz(id=str(q["id"]), title=str(q.get("title") or ""),
                                  quiz_type=str(q.get("quiz_type") or "assignment"),
                                  time_limit_minutes=_int_or_none(q.get("time_limit")),
                                  allowed_attempts=_int_or_none(q.get("allowed_attempts")),
                                  assignment_id=None if q.get("assignment_id") is None else str(q["assignment_id"]),
                                  unlock_at=q.get("unlock_at"), lock_at=q.get("lock_at"),
                                  published=bool(q.get("published", True))))
        return out

    def quiz_extensions(self, course_id: str, quiz_id: str) -> dict[str, Extension]:
        """What each student has now, read back from their quiz submissions (the ``settings_only`` submission an
        extension creates carries ``extra_time`` and ``extra_attempts``)."""
        out: dict[str, Extension] = {}
        for s in self._pages(f"/api/v1/courses/{_seg(course_id)}/quizzes/{_seg(quiz_id)}/submissions",
                             "quiz_submissions"):
            if isinstance(s, dict) and s.get("user_id") is not None:
                out[str(s["user_id"])] = Extension(str(s["user_id"]), _int_or_none(s.get("extra_time")),
                                                   _int_or_none(s.get("extra_attempts")))
        return out

    def set_extensions(self, course_id: str, quiz_id: str, extensions: list[Extension]) -> CallResult:
        """One call for every student of the quiz. Each listed value is *set* (not added)."""
        payload = {"quiz_extensions": [
            {k: v for k, v in {"user_id": int(e.user_id) if e.user_id.isdigit() else e.user_id,
                               "extra_time": e.extra_time, "extra_attempts": e.extra_attempts}.items()
             if v is not None} for e in extensions]}
        response, request_id = self._request(
            "POST", f"/api/v1/courses/{_seg(course_id)}/quizzes/{_seg(quiz_id)}/extensions", write=True,
            json=payload)
        return CallResult(request_id, response.status_code, self._json(response))

    def list_new_quizzes(self, course_id: str) -> list[NewQuiz]:
        out = []
        for q in self._pages(f"/api/quiz/v1/courses/{_seg(course_id)}/quizzes"):
            if not isinstance(q, dict) or "id" not in q:
                continue
            settings = q.get("quiz_settings") or {}
            limit = None
            if isinstance(settings, dict) and settings.get("has_time_limit"):
                limit = _int_or_none(settings.get("session_time_limit_in_seconds"))
            out.append(NewQuiz(str(q["id"]), str(q.get("title") or ""), limit))
        return out

    def set_new_quiz_accommodations(self, course_id: str, assignment_id: str, items: list[dict[str, Any]]
                                    ) -> CallResult:
        """``items``: ``{"user_id", "extra_time", "extra_attempts", "reduce_choices_enabled"}``. The answer's
        ``failed`` list names students the 200 did not cover."""
        response, request_id = self._request(
            "POST", f"/api/quiz/v1/courses/{_seg(course_id)}/quizzes/{_seg(assignment_id)}/accommodations",
            write=True, json=items)
        return CallResult(request_id, response.status_code, self._json(response))


    # ------------------------------------------------------------------------------ assignment overrides
    def assignment_overrides(self, course_id: str, assignment_id: str) -> list[AssignmentOverride]:
        out = []
        for o in self._pages(f"/api/v1/courses/{_seg(course_id)}/assignments/{_seg(assignment_id)}/overrides"):
            if isinstance(o, dict) and o.get("id") is not None and isinstance(o.get("student_ids"), list):
                out.append(AssignmentOverride(str(o["id"]), [str(i) for i in o["student_ids"]],
                                              str(o.get("title") or ""), o.get("due_at"), o.get("unlock_at"),
                                              o.get("lock_at")))
        return out

    def save_assignment_override(self, course_id: str, assignment_id: str, override: AssignmentOverride
                                 ) -> CallResult:
        """Create (no id) or update an ad-hoc override, always as a whole record (every date it has is sent, so an
        edit never drops the teacher's due or unlock date). A student can be in one ad-hoc override per assignment
        only: the caller edits or splits the existing one, never adds a second."""
        record: dict[str, Any] = {"student_ids": [int(i) if i.isdigit() else i for i in override.student_ids],
                                  "title": override.title or "Caseload accommodation"}
        for key in ("due_at", "unlock_at", "lock_at"):
            record[key] = getattr(override, key)
        base = f"/api/v1/courses/{_seg(course_id)}/assignments/{_seg(assignment_id)}/overrides"
        if override.id:
            response, request_id = self._request("PUT", f"{base}/{_seg(override.id)}", write=True,
                                                 json={"assignment_override": record})
        else:
            response, request_id = self._request("POST", base, write=True, json={"assignment_override": record})
        return CallResult(request_id, response.status_code, self._json(response))


@dataclass(frozen=True)
class AssignmentOverride:
    id: str | None
    student_ids: list[str]
    title: str
    due_at: str | None
    unlock_at: str | None
    lock_at: str | None


def authorize_url(base_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Where a Canvas administrator authorizes Caseload's developer key (OAuth2 authorization code flow)."""
    query = urlencode({"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
                       "state": state, "scope": " ".join(SCOPES)})
    return f"{base_url.rstrip('/')}/login/oauth2/auth?{query}"


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def expires_at_datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def exchange_code(http: HttpClient, token_url: str, client_id: str, client_secret: str, redirect_uri: str,
                  code: str) -> dict[str, Any]:
    """OAuth2 authorization code → ``{access_token, refresh_token, expires_in, ...}`` (Canvas
    ``POST /login/oauth2/token`` grant_type=authorization_code)."""
    try:
        response = http.post(token_url, data={"grant_type": "authorization_code", "client_id": client_id,
                                              "client_secret": client_secret, "redirect_uri": redirect_uri,
                                              "code": code})
        body = response_json(response)
    except HttpStatusError as exc:
        err = exc.body_json() if isinstance(exc.body_json(), dict) else {}
        raise CanvasError(f"Canvas refused the authorization ({err.get('error', exc.status)}).", exc.status) from None
    except (HttpError, ValueError) as exc:
        raise CanvasError(f"Canvas token endpoint could not be used: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("refresh_token"), str) \
            or not isinstance(body.get("access_token"), str):
        raise CanvasError("Canvas answered the authorization without a refresh token.")
    return body

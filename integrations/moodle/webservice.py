"""Moodle web services (REST protocol) for applying accommodations to quizzes. No Flask, no database.

The companion plugin declares a service listing exactly the core functions Caseload needs; the admin creates one
token for it. Moodle 4.5 (``mod/quiz/db/services.php``, ``mod/quiz/classes/external/*``):

- ``mod_quiz_get_quizzes_by_courses(courseids[])`` → ``{quizzes: [{id, course, coursemodule, name, timeopen,
  timeclose, timelimit (seconds, 0 = none), attempts (0 = unlimited)}]}``
- ``mod_quiz_get_overrides(quizid)`` → ``{overrides: [{id, quiz, userid|groupid, timeopen, timeclose, timelimit,
  attempts, password}]}`` (null: the quiz's own setting)
- ``mod_quiz_save_overrides(data{quizid, overrides[{id?, userid, timeopen, timeclose, timelimit, attempts,
  password}]})`` → ``{ids}``. Every field left out is saved as null (``override_manager::clear_unused_values``):
  callers send the whole record (``domain.lms_actions.merge_moodle_override``).

The REST server answers HTTP 200 even for errors, with ``{"exception", "errorcode", "message"}``; an invalid or
expired token is ``errorcode`` ``invalidtoken``. The token travels in the POST body, never in a logged URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.http import HttpClient, HttpError, response_json

FUNCTIONS: tuple[str, ...] = (
    "core_webservice_get_site_info",
    "core_group_get_group_members",
    "mod_quiz_get_quizzes_by_courses",
    "mod_quiz_get_overrides",
    "mod_quiz_save_overrides",
    "mod_quiz_delete_overrides",
)
TOKEN_ERRORS = frozenset({"invalidtoken", "accessexception", "servicerequireslogin"})


class MoodleError(Exception):
    """Moodle refused a call (``errorcode``) or could not be reached (``errorcode`` None)."""

    def __init__(self, message: str, errorcode: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.status = status


class MoodleTokenRefused(MoodleError):
    """The token is invalid, expired or lacks the service: an admin must create or fix it."""


@dataclass(frozen=True)
class MoodleQuiz:
    id: str
    course_id: str
    name: str
    timelimit: int
    attempts: int
    timeopen: int
    timeclose: int


@dataclass(frozen=True)
class CallResult:
    request_id: str
    body: Any


def flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """PHP-style form fields: ``{"data": {"overrides": [{"userid": 5}]}}`` → ``data[overrides][0][userid]=5``."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out += flatten(value, name)
        elif isinstance(value, list | tuple):
            out += flatten({str(i): v for i, v in enumerate(value)}, name)
        elif value is None:
            continue
        elif isinstance(value, bool):
            out.append((name, "1" if value else "0"))
        else:
            out.append((name, str(value)))
    return out


class MoodleWebService:
    def __init__(self, base_url: str, token: str, http: HttpClient | None = None) -> None:
        self.endpoint = f"{base_url.rstrip('/')}/webservice/rest/server.php"
        self._token = token
        self.http = http or HttpClient()
        self.calls = 0
        self.writes = 0

    def call(self, function: str, params: Mapping[str, Any] | None = None, *, write: bool = False) -> CallResult:
        request_id = uuid.uuid4().hex
        fields = [("wstoken", self._token), ("wsfunction", function), ("moodlewsrestformat", "json"),
                  *flatten(params or {})]
        self.calls += 1
        if write:
            self.writes += 1
        try:
            response = self.http.post(self.endpoint, data=fields, headers={"X-Request-Id": request_id})
            body = response_json(response)
        except HttpError as exc:
            raise MoodleError(f"Moodle could not be used ({exc})", status=exc.status) from None
        except ValueError:
            raise MoodleError(f"Moodle did not answer {function} with JSON") from None
        if isinstance(body, dict) and "exception" in body:
            code = str(body.get("errorcode") or "")
            message = str(body.get("message") or code)[:500]
            if code in TOKEN_ERRORS:
                raise MoodleTokenRefused(f"Moodle refused the web service token: {message}", code)
            raise MoodleError(f"Moodle refused {function}: {message}", code)
        return CallResult(request_id, body)

    def site_info(self) -> dict[str, Any]:
        body = self.call("core_webservice_get_site_info").body
        return body if isinstance(body, dict) else {}

    def quizzes_by_courses(self, course_ids: list[str]) -> list[MoodleQuiz]:
        body = self.call("mod_quiz_get_quizzes_by_courses", {"courseids": list(course_ids)}).body
        out = []
        for q in (body.get("quizzes") if isinstance(body, dict) else None) or []:
            if isinstance(q, dict) and "id" in q:
                out.append(MoodleQuiz(str(q["id"]), str(q.get("course", "")), str(q.get("name") or ""),
                                      int(q.get("timelimit") or 0), int(q.get("attempts") or 0),
                                      int(q.get("timeopen") or 0), int(q.get("timeclose") or 0)))
        return out

    def get_overrides(self, quiz_id: str) -> list[dict[str, Any]]:
        body = self.call("mod_quiz_get_overrides", {"quizid": quiz_id}).body
        overrides = body.get("overrides") if isinstance(body, dict) else None
        return [o for o in overrides or [] if isinstance(o, dict)]

    def group_members(self, group_ids: list[str]) -> dict[str, set[str]]:
        """``core_group_get_group_members(groupids[])`` → ``[{groupid, userids}]``: who a group override reaches."""
        body = self.call("core_group_get_group_members", {"groupids": list(group_ids)}).body
        out: dict[str, set[str]] = {}
        for g in body if isinstance(body, list) else []:
            if isinstance(g, dict) and g.get("groupid") is not None:
                out[str(g["groupid"])] = {str(u) for u in g.get("userids") or []}
        return out

    def save_overrides(self, quiz_id: str, overrides: list[dict[str, Any]]) -> CallResult:
        return self.call("mod_quiz_save_overrides", {"data": {"quizid": quiz_id, "overrides": overrides}},
                         write=True)

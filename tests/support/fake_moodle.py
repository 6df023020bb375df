"""A faithful fake of the Moodle 4.5 web service functions Caseload uses, on a real loopback HTTP server.

``POST /webservice/rest/server.php`` with ``wstoken``, ``wsfunction``, ``moodlewsrestformat=json`` and PHP-style
form fields. As in Moodle: errors are HTTP 200 with ``{"exception", "errorcode", "message"}``; an unknown token is
``invalidtoken``; a function outside the token's service is ``accessexception``.

``mod_quiz_save_overrides`` behaves like ``override_manager::save_override`` in 4.5: one user override per user
per quiz (a second one without ``id`` is refused), userid xor groupid, and **every field left out is saved as
null** (``clear_unused_values``), as is a value equal to the quiz's own setting; an override with no setting at
all is refused (``nooverridedata``).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.loopback import LoopbackServer

SETTINGS = ("timeopen", "timeclose", "timelimit", "attempts", "password")
ALL_FUNCTIONS = frozenset({"core_webservice_get_site_info", "core_group_get_group_members",
                           "mod_quiz_get_quizzes_by_courses",
                           "mod_quiz_get_overrides", "mod_quiz_save_overrides", "mod_quiz_delete_overrides"})



@dataclass
class FakeQuiz:
    id: int
    course: int
    name: str
    timelimit: int = 0
    attempts: int = 1
    timeopen: int = 0
    timeclose: int = 0
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``data[overrides][0][userid]=5`` → nested dicts (lists stay dicts keyed by index, as PHP's arrays)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class FakeMoodle(LoopbackServer):
    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.token = "ws-" + "a1b2c3d4" * 4
        self.functions: set[str] = set(ALL_FUNCTIONS)
        self.quizzes: dict[int, FakeQuiz] = {}
        self.enrolled: dict[int, set[int]] = {}
        self.groups: dict[int, set[int]] = {}
        self.calls: list[str] = []
        self.saved: list[tuple[int, int, dict[str, Any]]] = []
        """Every user override a ``mod_quiz_save_overrides`` stored: (quiz id, user id, its settings)."""
        self.after_write: Callable[[str], None] | None = None
        """Called with the function's name after a save or delete was applied and before its answer is sent (a
        fault test kills the caller there: the LMS has the change, the caller never hears of it)."""
        self._lock = threading.RLock()
        self._next = 100

    def start(self) -> FakeMoodle:
        handler = type("Handler", (_Handler,), {"fake": self})
        return self._serve(ThreadingHTTPServer(("127.0.0.1", 0), handler), "fake-moodle")

    # ------------------------------------------------------------------------------------- arranging
    def _id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def enrol(self, course: int, *users: int) -> None:
        with self._lock:
            self.enrolled.setdefault(course, set()).update(users)

    def add_quiz(self, course: int, name: str, timelimit: int, attempts: int = 1, timeopen: int = 0,
                 timeclose: int = 0) -> int:
        quiz = FakeQuiz(self._id(), course, name, timelimit, attempts, timeopen, timeclose)
        with self._lock:
            self.quizzes[quiz.id] = quiz
        return quiz.id

    def teacher_override(self, quiz_id: int, userid: int, **values: Any) -> int:
        oid = self._id()
        with self._lock:
            record = {"id": oid, "quiz": quiz_id, "userid": userid, "groupid": None,
                      **dict.fromkeys(SETTINGS), **values}
            self.quizzes[quiz_id].overrides[oid] = record
        return oid

    def group_override(self, quiz_id: int, groupid: int, members: set[int], **values: Any) -> int:
        """A teacher's override for a group (group overrides: most lenient wins; a user override beats them)."""
        oid = self._id()
        with self._lock:
            self.groups[groupid] = set(members)
            self.quizzes[quiz_id].overrides[oid] = {"id": oid, "quiz": quiz_id, "userid": None, "groupid": groupid,
                                                    **dict.fromkeys(SETTINGS), **values}
        return oid

    def user_override(self, quiz_id: int, userid: int) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(o) for o in self.quizzes[quiz_id].overrides.values() if o["userid"] == userid), None)

    def count(self, function: str | None = None) -> int:
        with self._lock:
            return sum(1 for f in self.calls if function is None or f == function)

    # --------------------------------------------------------------------------------------- serving
    def handle(self, form: dict[str, Any]) -> Any:
        if self.latency:
            time.sleep(self.latency)
        answer = self._answer(form)
        function = str(form.get("wsfunction", ""))
        hook = self.after_write
        if hook is not None and function in ("mod_quiz_save_overrides", "mod_quiz_delete_overrides") \
                and not (isinstance(answer, dict) and "exception" in answer):
            hook(function)
        return answer

    def _answer(self, form: dict[str, Any]) -> Any:
        with self._lock:
            function = str(form.get("wsfunction", ""))
            self.calls.append(function)
            if form.get("wstoken") != self.token:
                return _exception("moodle_exception", "invalidtoken", "Invalid token - token not found")
            if function not in self.functions:
                return _exception("webservice_access_exception", "accessexception",
                                  "Access control exception (function not in the service)")
            if function == "core_webservice_get_site_info":
                return {"sitename": "Fake Moodle", "release": "4.5 (Build: 20241007)", "version": "2024100700",
                        "functions": [{"name": f, "version": "2024100700"} for f in sorted(self.functions)]}
            if function == "core_group_get_group_members":
                ids = [int(v) for v in (form.get("groupids") or {}).values()]
                return [{"groupid": g, "userids": sorted(self.groups.get(g, set()))} for g in ids]
            if function == "mod_quiz_get_quizzes_by_courses":
                ids = {int(v) for v in (form.get("courseids") or {}).values()}
                return {"quizzes": [{"id": q.id, "course": q.course, "coursemodule": q.id + 5000, "name": q.name,
                                     "timelimit": q.timelimit, "attempts": q.attempts, "timeopen": q.timeopen,
                                     "timeclose": q.timeclose} for q in self.quizzes.values()
                                    if not ids or q.course in ids], "warnings": []}
            if function == "mod_quiz_get_overrides":
                quiz = self.quizzes.get(int(form.get("quizid", 0)))
                if quiz is None:
                    return _exception("dml_missing_record_exception", "invalidrecord", "Can't find data record")
                return {"overrides": [dict(o) for o in quiz.overrides.values()]}
            if function == "mod_quiz_save_overrides":
                return self._save(form.get("data") or {})
            if function == "mod_quiz_delete_overrides":
                data = form.get("data") or {}
                quiz = self.quizzes.get(int(data.get("quizid", 0)))
                ids = [int(v) for v in (data.get("ids") or {}).values()]
                if quiz is None or any(i not in quiz.overrides for i in ids):
                    return _exception("invalid_parameter_exception", "invalidoverrideid", "Invalid override id")
                for i in ids:
                    del quiz.overrides[i]
                return {"ids": ids}
            return _exception("invalid_parameter_exception", "invalidparameter", "unknown function")

    def _save(self, data: dict[str, Any]) -> Any:
        quiz = self.quizzes.get(int(data.get("quizid", 0)))
        if quiz is None:
            return _exception("dml_missing_record_exception", "invalidrecord", "Can't find data record")
        ids = []
        for item in (data.get("overrides") or {}).values():
            rec: dict[str, Any] = {k: (None if v in (None, "") else v) for k, v in item.items()}
            userid = int(rec["userid"]) if rec.get("userid") is not None else None
            groupid = int(rec["groupid"]) if rec.get("groupid") is not None else None
            if (userid is None) == (groupid is None):
                return _exception("invalid_parameter_exception", "overrideinvalidusergroup",
                                  "Exactly one of userid or groupid")
            if userid is not None and userid not in self.enrolled.get(quiz.course, set()):
                return _exception("invalid_parameter_exception", "usernotinrole", "User is not enrolled")
            oid = int(rec["id"]) if rec.get("id") is not None else None
            existing = next((o for o in quiz.overrides.values() if userid is not None and o["userid"] == userid),
                            None)
            if oid is None and existing is not None:
                return _exception("invalid_parameter_exception", "overridemultiple",
                                  "A user override for this user already exists")
            if oid is not None and oid not in quiz.overrides:
                return _exception("invalid_parameter_exception", "overrideinvalidexistingid", "Invalid override id")
            # clear_unused_values: every setting not given, or equal to the quiz's own, is stored as null
            values: dict[str, Any] = {}
            for key in SETTINGS:
                raw = rec.get(key)
                value = raw if key == "password" else (None if raw is None else int(raw))
                if key != "password" and value is not None and value == getattr(quiz, key):
                    value = None
                values[key] = value
            if all(v is None for v in values.values()):
                return _exception("invalid_parameter_exception", "nooverridedata",
                                  "You must override at least one of the quiz settings")
            oid = oid or self._id()
            quiz.overrides[oid] = {"id": oid, "quiz": quiz.id, "userid": userid, "groupid": groupid, **values}
            if userid is not None:
                self.saved.append((quiz.id, userid, dict(values)))
            ids.append(oid)
        return {"ids": ids}


def _exception(exception: str, code: str, message: str) -> dict[str, Any]:
    return {"exception": exception, "errorcode": code, "message": message}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeMoodle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if parts.path != "/webservice/rest/server.php":
            self.send_response(404)
            self.end_headers()
            return
        form = unflatten(parse_qsl(parts.query) + parse_qsl(raw, keep_blank_values=True))
        data = json.dumps(self.fake.handle(form)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a caller killed while waiting
            self.wfile.write(data)

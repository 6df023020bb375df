"""The practice LMS's quizzes, answering the Moodle 4.5 web service functions Caseload calls (dev/demo/test only).

Caseload talks to the practice LMS exactly as to a Moodle site: ``POST /practice/moodle/webservice/rest/server.php``
with ``wstoken``, ``wsfunction``, ``moodlewsrestformat=json`` and PHP-style form fields
(``data[overrides][0][userid]=101``). As in Moodle, an error is HTTP 200 with ``{"exception", "errorcode",
"message"}``: an unknown token is ``invalidtoken``, a function outside the service ``accessexception``, a refused
parameter ``invalidparameter``, a missing record ``invalidrecord``.

``mod_quiz_save_overrides`` keeps Moodle's semantics (``mod_quiz\\local\\override_manager`` in 4.5): an override is
saved as a **whole record** (every setting left out, or equal to the quiz's own, is stored as null), one user
override per user per quiz (a second one without ``id`` is refused), userid xor groupid, the user must be enrolled in
the course, at least one setting must be overridden, and every override of a call is checked before any is saved.

The practice LMS's user ids are the practice people's ``Person.lms_user_id`` (numbers, as Moodle's), its course ids
``Course.lms_course_id``, its groups the course's sections. The quizzes and overrides are rows of
``practice_quizzes`` / ``practice_quiz_overrides`` (``lti_app.models.practice``): durable across restarts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.moodle import webservice
from lti_app.models import Course, Enrollment, Person, Platform, Section
from lti_app.models.practice import PracticeQuiz, PracticeQuizOverride

SERVICE_PATH = "/practice/moodle"
"""The practice LMS's "wwwroot" for its web services: the endpoint is ``SERVICE_PATH + ENDPOINT``."""
ENDPOINT = "/webservice/rest/server.php"
SERVICE_NAME = "Caseload accommodations"
FUNCTIONS: tuple[str, ...] = webservice.FUNCTIONS
"""The functions the practice LMS's "Caseload accommodations" service lists: exactly those Caseload's Moodle client
needs, as the companion Moodle plugin's service does."""
SETTINGS = ("timeopen", "timeclose", "timelimit", "attempts", "password")
TOKEN_KEY = "practice_ws_token_sha256"
"""Where the practice platform keeps its web service token (a SHA-256 digest; Caseload's connection holds the token,
encrypted)."""
RELEASE = "4.5 (practice LMS)"


class WsError(Exception):
    """A web service error, answered as Moodle does: HTTP 200 with ``{"exception", "errorcode", "message"}``."""

    def __init__(self, exception: str, errorcode: str, message: str) -> None:
        super().__init__(message)
        self.exception, self.errorcode, self.message = exception, errorcode, message

    def body(self) -> dict[str, str]:
        return {"exception": self.exception, "errorcode": self.errorcode, "message": self.message}


def _invalid(message: str) -> WsError:
    return WsError("invalid_parameter_exception", "invalidparameter", f"Invalid parameter value detected ({message})")


def _missing(what: str) -> WsError:
    return WsError("dml_missing_record_exception", "invalidrecord", f"Can't find data record in database table {what}.")


# ----------------------------------------------------------------------------------------------- the token
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(platform: Platform) -> str:
    """A new web service token for the practice LMS's service (the digest replaces the previous one). Caller commits."""
    token = secrets.token_urlsafe(32)
    platform.settings = {**(platform.settings or {}), TOKEN_KEY: _digest(token)}
    return token


def token_matches(platform: Platform, token: str) -> bool:
    digest = (platform.settings or {}).get(TOKEN_KEY)
    return bool(token) and isinstance(digest, str) and hmac.compare_digest(digest, _digest(token))


# ----------------------------------------------------------------------------------------------- the request
def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """PHP-style form fields into nested dicts: ``data[overrides][0][userid]=5`` → ``{"data": {"overrides": {"0":
    {"userid": "5"}}}}`` (a PHP array stays a dict keyed by its indexes)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return root


def _items(value: Any) -> list[Any]:
    """A PHP array parameter's values in index order (a scalar where an array belongs is refused)."""
    if value is None or value == "":
        return []
    if not isinstance(value, dict):
        raise _invalid("an array was expected")
    try:
        keys = sorted(value, key=int)
    except ValueError:
        raise _invalid("array keys must be numbers") from None
    return [value[k] for k in keys]


def _int(value: Any, name: str, *, optional: bool = True) -> int | None:
    if value is None or value == "":
        if optional:
            return None
        raise _invalid(f"missing {name}")
    if isinstance(value, dict) or not re.fullmatch(r"-?\d{1,12}", str(value).strip()):
        raise _invalid(f"{name} must be an integer")
    return int(str(value).strip())


# ----------------------------------------------------------------------------------------------- answers
def handle(session: Session, platform: Platform, form: dict[str, Any]) -> Any:
    """Answer one web service call (the caller commits on success, rolls back on ``WsError``)."""
    if not token_matches(platform, str(form.get("wstoken") or "")):
        raise WsError("moodle_exception", "invalidtoken", "Invalid token - token not found")
    function = str(form.get("wsfunction") or "")
    if function not in FUNCTIONS:
        raise WsError("webservice_access_exception", "accessexception",
                      "Access control exception (the function is not in the service)")
    if form.get("moodlewsrestformat", "json") != "json":
        raise _invalid("only moodlewsrestformat=json is served")
    if function == "core_webservice_get_site_info":
        return {"sitename": "Practice LMS", "username": "caseload-service", "firstname": "Caseload",
                "lastname": "Service", "userid": 2, "siteurl": "", "release": RELEASE, "version": "2024100700",
                "functions": [{"name": f, "version": "2024100700"} for f in FUNCTIONS]}
    if function == "core_group_get_group_members":
        return _group_members(session, platform, [_int(v, "groupids", optional=False)
                                                  for v in _items(form.get("groupids"))])
    if function == "mod_quiz_get_quizzes_by_courses":
        return _quizzes_by_courses(session, platform, [_int(v, "courseids", optional=False)
                                                       for v in _items(form.get("courseids"))])
    if function == "mod_quiz_get_overrides":
        quiz = _quiz(session, platform, _int(form.get("quizid"), "quizid", optional=False))
        rows = session.scalars(select(PracticeQuizOverride).where(PracticeQuizOverride.quiz_id == quiz.id)
                               .order_by(PracticeQuizOverride.id))
        return {"overrides": [override_json(o) for o in rows]}
    data = form.get("data")
    if not isinstance(data, dict):
        raise _invalid("missing data")
    quiz = _quiz(session, platform, _int(data.get("quizid"), "quizid", optional=False))
    if function == "mod_quiz_save_overrides":
        return {"ids": save_overrides(session, platform, quiz, _items(data.get("overrides")))}
    return {"ids": delete_overrides(session, quiz, [_int(v, "ids", optional=False) for v in _items(data.get("ids"))])}


def override_json(o: PracticeQuizOverride) -> dict[str, Any]:
    return {"id": o.id, "quiz": o.quiz_id, "userid": o.userid, "groupid": o.groupid, "timeopen": o.timeopen,
            "timeclose": o.timeclose, "timelimit": o.timelimit, "attempts": o.attempts, "password": o.password}


def _courses(session: Session, platform: Platform) -> dict[int, Course]:
    """The practice LMS's courses by their LMS course id."""
    out = {}
    for course in session.scalars(select(Course).where(Course.platform_id == platform.id)):
        if course.lms_course_id and str(course.lms_course_id).isdigit():
            out[int(course.lms_course_id)] = course
    return out


def _quiz(session: Session, platform: Platform, quiz_id: int | None) -> PracticeQuiz:
    quiz = session.get(PracticeQuiz, quiz_id) if quiz_id is not None else None
    if quiz is None or session.scalar(select(Course.platform_id).where(Course.id == quiz.course_id)) != platform.id:
        raise _missing("quiz")
    return quiz


def _quizzes_by_courses(session: Session, platform: Platform, course_ids: list[int | None]) -> dict[str, Any]:
    courses = _courses(session, platform)
    wanted = [c for c in course_ids if c is not None] or sorted(courses)
    warnings = [{"item": "course", "itemid": c, "warningcode": "1", "message": "No access rights in course context"}
                for c in wanted if c not in courses]
    by_id = {courses[c].id: c for c in wanted if c in courses}
    quizzes = []
    for quiz in session.scalars(select(PracticeQuiz).where(PracticeQuiz.course_id.in_(list(by_id)))
                                .order_by(PracticeQuiz.id)) if by_id else []:
        quizzes.append({"id": quiz.id, "course": by_id[quiz.course_id], "coursemodule": 5000 + quiz.id,
                        "name": quiz.name, "timeopen": quiz.timeopen, "timeclose": quiz.timeclose,
                        "timelimit": quiz.timelimit, "attempts": quiz.attempts})
    return {"quizzes": quizzes, "warnings": warnings}


def _group_members(session: Session, platform: Platform, group_ids: list[int | None]) -> list[dict[str, Any]]:
    out = []
    for group_id in group_ids:
        section = session.get(Section, group_id) if group_id is not None else None
        if section is None or not section.lms_section_id or session.scalar(
                select(Course.platform_id).where(Course.id == section.course_id)) != platform.id:
            raise _missing("groups")
        users = session.scalars(select(Person.lms_user_id).join(Enrollment, Enrollment.person_id == Person.id)
                                .where(Enrollment.section_id == section.id, Enrollment.state == "active",
                                       Enrollment.role == "student"))
        out.append({"groupid": section.id, "userids": sorted(int(u) for u in users if u and u.isdigit())})
    return out


def _enrolled_student(session: Session, platform: Platform, course_id: int, userid: int) -> bool:
    return session.scalar(
        select(Enrollment.id).join(Person, Person.id == Enrollment.person_id)
        .where(Person.platform_id == platform.id, Person.lms_user_id == str(userid), Enrollment.course_id == course_id,
               Enrollment.role == "student", Enrollment.state == "active").limit(1)) is not None


def _group_of_course(session: Session, course_id: int, groupid: int) -> bool:
    section = session.get(Section, groupid)
    return section is not None and section.course_id == course_id and bool(section.lms_section_id)


def save_overrides(session: Session, platform: Platform, quiz: PracticeQuiz, items: list[Any]) -> list[int]:
    """``mod_quiz_save_overrides``: check every override, then save them all (whole records). Returns their ids."""
    if not items:
        raise _invalid("no overrides given")
    existing = {o.id: o for o in session.scalars(select(PracticeQuizOverride)
                                                 .where(PracticeQuizOverride.quiz_id == quiz.id))}
    planned: list[tuple[PracticeQuizOverride | None, dict[str, Any]]] = []
    seen: set[tuple[str, int]] = set()
    for item in items:
        if not isinstance(item, dict):
            raise _invalid("an override must be a structure")
        oid = _int(item.get("id"), "id")
        userid, groupid = _int(item.get("userid"), "userid"), _int(item.get("groupid"), "groupid")
        if (userid is None) == (groupid is None):
            raise _invalid("an override is for exactly one of a user or a group")
        who = ("user", userid) if userid is not None else ("group", groupid)
        if who in seen:
            raise _invalid(f"two overrides for the same {who[0]}")
        seen.add(who)  # type: ignore[arg-type]
        if userid is not None and not _enrolled_student(session, platform, quiz.course_id, userid):
            raise _invalid(f"user {userid} is not enrolled in the course")
        if groupid is not None and not _group_of_course(session, quiz.course_id, groupid):
            raise _invalid(f"group {groupid} is not a group of the course")
        same = next((o for o in existing.values() if (o.userid, o.groupid) == (userid, groupid)), None)
        if oid is None and same is not None:
            raise _invalid("an override for this user or group already exists: send its id to change it")
        if oid is not None and (oid not in existing or existing[oid] is not same):
            raise _invalid(f"override {oid} is not this quiz's override of that user or group")
        values: dict[str, Any] = {}
        for key in SETTINGS:
            raw = item.get(key)
            if key == "password":
                values[key] = None if raw in (None, "") else str(raw)[:255]
                continue
            value = _int(raw, key)
            if value is not None and value < 0:
                raise _invalid(f"{key} cannot be negative")
            # clear_unused_values: a setting equal to the quiz's own is not an override
            values[key] = None if value is None or value == getattr(quiz, key) else value
        if all(v is None for v in values.values()):
            raise _invalid("you must override at least one of the quiz settings")
        opens = values["timeopen"] if values["timeopen"] is not None else quiz.timeopen
        closes = values["timeclose"] if values["timeclose"] is not None else quiz.timeclose
        if opens and closes and closes < opens:
            raise _invalid("the close date is before the open date")
        planned.append((same, {"userid": userid, "groupid": groupid, **values}))
    ids = []
    for row, values in planned:
        if row is None:
            row = PracticeQuizOverride(quiz_id=quiz.id)
            session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        session.flush()
        ids.append(row.id)
    return ids


def delete_overrides(session: Session, quiz: PracticeQuiz, ids: list[int | None]) -> list[int]:
    if not ids:
        raise _invalid("no override ids given")
    rows = {o.id: o for o in session.scalars(select(PracticeQuizOverride)
                                             .where(PracticeQuizOverride.quiz_id == quiz.id))}
    if any(i not in rows for i in ids):
        raise _invalid("an override id is not one of this quiz's")
    for i in ids:
        session.delete(rows[i])  # type: ignore[index]
    session.flush()
    return [i for i in ids if i is not None]


# ----------------------------------------------------------------------------------- what a teacher sees
@dataclass
class OverrideRow:
    name: str
    override: PracticeQuizOverride


@dataclass
class QuizView:
    quiz: PracticeQuiz
    closes: dt.datetime | None
    overrides: list[OverrideRow] = field(default_factory=list)


@dataclass
class CourseQuizzes:
    course: Course
    quizzes: list[QuizView] = field(default_factory=list)


def moment(epoch: int | None) -> dt.datetime | None:
    """A Unix time as an instant (shown with ``|localtime``); 0 or None: none."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch else None


def duration(seconds: int) -> str:
    """A time limit as a teacher reads it: "30 min", "1 h 7 min 30 s"."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{secs} s"] if secs else []
    return " ".join(parts) or "0 min"


def overview(session: Session, platform: Platform) -> list[CourseQuizzes]:
    """Every course's quizzes with their user overrides (Moodle's quiz page, "User overrides"), for the practice
    LMS page."""
    courses = {c.id: c for c in session.scalars(select(Course).where(Course.platform_id == platform.id))}
    if not courses:
        return []
    quizzes = list(session.scalars(select(PracticeQuiz).where(PracticeQuiz.course_id.in_(list(courses)))
                                   .order_by(PracticeQuiz.course_id, PracticeQuiz.id)))
    overrides = list(session.scalars(select(PracticeQuizOverride).where(
        PracticeQuizOverride.quiz_id.in_([q.id for q in quizzes]), PracticeQuizOverride.userid.is_not(None))))
    names = {p.lms_user_id: p.display_name for p in session.scalars(select(Person).where(
        Person.platform_id == platform.id, Person.lms_user_id.in_([str(o.userid) for o in overrides])))}
    views = {q.id: QuizView(q, moment(q.timeclose)) for q in quizzes}
    for o in overrides:
        views[o.quiz_id].overrides.append(OverrideRow(names.get(str(o.userid), f"user {o.userid}"), o))
    out: dict[int, CourseQuizzes] = {}
    for q in quizzes:
        out.setdefault(q.course_id, CourseQuizzes(courses[q.course_id])).quizzes.append(views[q.id])
        views[q.id].overrides.sort(key=lambda r: r.name)
    return sorted(out.values(), key=lambda c: c.course.title)

"""Accommodations applied in the LMS: what the plan requires on a quiz, and how it merges with what is set there.

Pure rules (no Flask, SQL or HTTP), shared by the reconcile, the preview and the verification report:

- ``LmsRule`` is the structured rule of a plan version (extra time as a multiplier *or* minutes, extra attempts,
  reduced answer choices, window guard). A student with several plans in force gets the most generous value of
  each field, per quiz (``required_for``).
- Extra time is only for *timed* quizzes: an untimed quiz needs nothing (Canvas ``time_limit`` null, Moodle
  ``timelimit`` 0). Canvas takes extra minutes (``extra_time`` ≤ 10080, quiz_extensions API); Moodle takes the
  student's whole time limit in seconds (``quiz_overrides.timelimit``).
- **Never clobber a teacher** (``merge_value``): Caseload only raises a value. A value above the target stays,
  unless Caseload itself wrote exactly that value (the ledger says so) and the plan has since come down: then it
  is Caseload's own setting and follows the plan. A teacher's setting is never lowered or removed.
- Moodle saves an override as a whole record (``mod_quiz_save_overrides`` nulls every field it is not given), so
  ``merge_moodle_override`` always returns the complete record with the teacher's other fields kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

CANVAS_MAX_EXTRA_MINUTES = 10080
"""quiz_extensions ``extra_time`` and New Quizzes accommodations ``extra_time`` accept at most one week."""
CANVAS_MAX_EXTRA_ATTEMPTS = 1000
MAX_MULTIPLIER = Decimal(4)
MAX_EXTRA_MINUTES = 600
MAX_EXTRA_ATTEMPTS = 20


class QuizKind(StrEnum):
    CLASSIC = "classic"
    """Canvas Classic Quizzes: per-student quiz extensions."""
    NEW = "new"
    """Canvas New Quizzes: quiz-level accommodations."""
    MOODLE = "moodle"
    """Moodle quiz: per-user override (whole record)."""


class Field(StrEnum):
    EXTRA_TIME = "extra_time"
    """Canvas: minutes added to the quiz's time limit."""
    EXTRA_ATTEMPTS = "extra_attempts"
    """Canvas: attempts added to the quiz's allowed attempts."""
    REDUCE_CHOICES = "reduce_choices"
    """New Quizzes: one wrong option removed from multiple choice questions with four or more options."""
    TIMELIMIT = "timelimit"
    """Moodle: the student's whole time limit, in seconds."""
    ATTEMPTS = "attempts"
    """Moodle: the student's whole number of attempts (0 = unlimited)."""
    TIMECLOSE = "timeclose"
    """Moodle: when the quiz closes for the student (Unix time), in their user override (window guard)."""
    LOCK_AT = "lock_at"
    """Canvas Classic: when the quiz locks for the student (Unix time), in their assignment override (window guard)."""


class Outcome(StrEnum):
    APPLIED = "applied"
    """Caseload wrote the value and the LMS accepted it."""
    KEPT = "kept"
    """Caseload declined to write: the LMS already grants at least as much (a teacher's setting)."""
    WITHDRAWN = "withdrawn"
    """Caseload lowered or removed its own earlier value because the plan no longer requires it."""
    FAILED = "failed"
    """The LMS refused the write; it is retried by the next reconcile."""


@dataclass(frozen=True)
class LmsRule:
    """The part of one plan version that Caseload applies in the LMS."""

    multiplier: Decimal | None = None
    extra_minutes: int | None = None
    extra_attempts: int | None = None
    reduce_choices: bool = False
    window_guard: bool = False

    @property
    def empty(self) -> bool:
        return not (self.multiplier and self.multiplier > 1) and not self.extra_minutes \
            and not self.extra_attempts and not self.reduce_choices

    def extra_seconds(self, time_limit_seconds: int | None) -> int:
        """Seconds this rule adds to a quiz of this time limit (0 for an untimed quiz)."""
        if not time_limit_seconds or time_limit_seconds <= 0:
            return 0
        extra = 0
        if self.multiplier is not None and self.multiplier > 1:
            extra = math.ceil(time_limit_seconds * (self.multiplier - 1))
        if self.extra_minutes:
            extra = max(extra, self.extra_minutes * 60)
        return extra

    def describe(self) -> str:
        """Plain words for the plan page and the report ("1.5x time, 1 extra attempt")."""
        parts: list[str] = []
        if self.multiplier is not None and self.multiplier > 1:
            parts.append(f"{self.multiplier.normalize()}x time")
        if self.extra_minutes:
            parts.append(f"{self.extra_minutes} extra minutes")
        if self.extra_attempts:
            parts.append(f"{self.extra_attempts} extra attempt{'s' if self.extra_attempts != 1 else ''}")
        if self.reduce_choices:
            parts.append("reduced answer choices")
        if self.window_guard:
            parts.append("window extended when it cuts the time short")
        return ", ".join(parts) or "nothing applied in the LMS"


@dataclass(frozen=True)
class RuleProblem:
    field: str
    message: str


def check_rule(time_kind: str, multiplier: str, extra_minutes: str, extra_attempts: str, reduce_choices: bool,
               window_guard: bool) -> tuple[LmsRule | None, list[RuleProblem]]:
    """Validate the plan editor's fields. ``time_kind`` is ``multiplier``, ``minutes`` or empty (no extra time)."""
    problems: list[RuleProblem] = []
    mult: Decimal | None = None
    minutes: int | None = None
    kind = (time_kind or "").strip()
    if kind == "multiplier":
        raw = (multiplier or "").strip().rstrip("xX").strip()
        try:
            mult = Decimal(raw).quantize(Decimal("0.01"))
        except ArithmeticError:
            problems.append(RuleProblem("lms_multiplier", "The time multiplier must be a number such as 1.5."))
        else:
            if not Decimal("1.05") <= mult <= MAX_MULTIPLIER:
                problems.append(RuleProblem("lms_multiplier", "The time multiplier must be between 1.05 and 4."))
    elif kind == "minutes":
        raw = (extra_minutes or "").strip()
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_EXTRA_MINUTES:
            problems.append(RuleProblem("lms_extra_minutes",
                                        f"Extra minutes must be a whole number from 1 to {MAX_EXTRA_MINUTES}."))
        else:
            minutes = int(raw)
    elif kind:
        problems.append(RuleProblem("lms_time_kind", "Choose extra time as a multiplier, as minutes, or none."))
    attempts: int | None = None
    raw_attempts = (extra_attempts or "").strip()
    if raw_attempts:
        if not (raw_attempts.isascii() and raw_attempts.isdigit()) or int(raw_attempts) > MAX_EXTRA_ATTEMPTS:
            problems.append(RuleProblem("lms_extra_attempts",
                                        f"Extra attempts must be a whole number from 0 to {MAX_EXTRA_ATTEMPTS}."))
        else:
            attempts = int(raw_attempts) or None
    if problems:
        return None, problems
    rule = LmsRule(mult, minutes, attempts, bool(reduce_choices), bool(window_guard))
    if rule.empty:
        return None, [RuleProblem("lms_time_kind", "Choose at least one thing to apply in the LMS: extra time, "
                                                   "extra attempts or reduced answer choices.")]
    if window_guard and mult is None and minutes is None:
        return None, [RuleProblem("lms_window_guard", "The window guard protects extra time; choose extra time "
                                                      "first.")]
    return rule, []


@dataclass(frozen=True)
class QuizFacts:
    """What Caseload knows of one quiz from the LMS."""

    kind: QuizKind
    time_limit_seconds: int | None
    """None or 0: untimed."""
    allowed_attempts: int | None = None
    """Moodle ``attempts`` (0 unlimited); Canvas ``allowed_attempts`` (-1 unlimited)."""
    opens_at: int | None = None
    closes_at: int | None = None
    """The availability window (Unix time); None: open-ended."""
    has_assignment: bool = True
    """Canvas Classic: only a quiz with an assignment has assignment overrides (practice quizzes have none)."""

    @property
    def timed(self) -> bool:
        return bool(self.time_limit_seconds and self.time_limit_seconds > 0)


def required_for(rules: Iterable[LmsRule], quiz: QuizFacts) -> dict[Field, int | bool]:
    """The values the plan(s) require on this quiz, in the LMS's own terms; most generous across plans.

    An untimed quiz requires nothing from extra time (the brief: untimed quizzes are skipped); attempts and
    reduced choices still apply to it."""
    rules = list(rules)
    out: dict[Field, int | bool] = {}
    extra = max((r.extra_seconds(quiz.time_limit_seconds) for r in rules), default=0)
    attempts = max((r.extra_attempts or 0 for r in rules), default=0)
    reduce = any(r.reduce_choices for r in rules)
    guard = extra and any(r.window_guard for r in rules) and window_cuts_time(
        quiz.opens_at, quiz.closes_at, int(quiz.time_limit_seconds or 0) + extra).cut_short
    if quiz.kind is QuizKind.MOODLE:
        if quiz.timed and extra:
            out[Field.TIMELIMIT] = int(quiz.time_limit_seconds or 0) + extra
            if guard:
                out[Field.TIMECLOSE] = int(quiz.closes_at or 0) + extra
        if attempts and quiz.allowed_attempts:  # 0 = unlimited: nothing to add
            out[Field.ATTEMPTS] = int(quiz.allowed_attempts) + attempts
        return out
    if quiz.timed and extra:
        out[Field.EXTRA_TIME] = min(math.ceil(extra / 60), CANVAS_MAX_EXTRA_MINUTES)
        if guard and quiz.kind is QuizKind.CLASSIC and quiz.has_assignment:
            out[Field.LOCK_AT] = int(quiz.closes_at or 0) + extra
    if attempts and (quiz.allowed_attempts is None or quiz.allowed_attempts > 0):
        out[Field.EXTRA_ATTEMPTS] = min(attempts, CANVAS_MAX_EXTRA_ATTEMPTS)
    if reduce and quiz.kind is QuizKind.NEW:
        out[Field.REDUCE_CHOICES] = True
    return out


@dataclass(frozen=True)
class Decision:
    """What to do with one field for one student on one quiz."""

    field: Field
    before: int | bool | None
    target: int | bool | None
    write: bool
    value: int | bool | None
    """The value to write when ``write``; otherwise what stays."""
    outcome: Outcome | None
    """None: nothing to do and nothing worth recording (already as required)."""


def merge_value(field: Field, current: int | bool | None, target: int | bool | None,
                own_last: int | bool | None, baseline: int | bool | None = None) -> Decision:
    """Only raise; follow the plan down only where the current value is Caseload's own.

    ``current`` is what the LMS has for the student now (None: nothing set), ``target`` what the plan requires
    (None: nothing), ``own_last`` the last value Caseload applied there (from the ledger), ``baseline`` the value
    that means "nothing extra" (0 for Canvas extras, the quiz's own limit for Moodle)."""
    cur = _num(current)
    tgt = _num(target)
    if tgt is not None and (cur is None or cur < tgt):
        return Decision(field, current, target, True, target, Outcome.APPLIED)
    if tgt is not None and cur == tgt:
        return Decision(field, current, target, False, current, None)
    # current is above the target, or the plan no longer requires anything
    if cur is None:
        return Decision(field, current, target, False, current, None)
    own = own_last is not None and _num(own_last) == cur
    if own:
        new = target if target is not None else baseline
        if _num(new) == cur:
            return Decision(field, current, target, False, current, None)
        return Decision(field, current, target, True, new, Outcome.WITHDRAWN)
    if tgt is None:
        return Decision(field, current, target, False, current, None)  # a teacher's value, not ours to touch
    return Decision(field, current, target, False, current, Outcome.KEPT)


def _num(value: int | bool | None) -> int | None:
    return None if value is None else int(value)


# --------------------------------------------------------------------------------------------------- Moodle
OVERRIDE_FIELDS = ("timeopen", "timeclose", "timelimit", "attempts", "password")


@dataclass(frozen=True)
class MoodleOverride:
    """One user override as ``mod_quiz_get_overrides`` returns it (None: the quiz's own setting)."""

    id: int | None
    userid: int
    timeopen: int | None = None
    timeclose: int | None = None
    timelimit: int | None = None
    attempts: int | None = None
    password: str | None = None

    def as_params(self) -> dict[str, int | str]:
        """The whole record for ``mod_quiz_save_overrides``: every field that is set, so nothing is erased."""
        out: dict[str, int | str] = {"userid": self.userid}
        if self.id is not None:
            out["id"] = self.id
        for name in OVERRIDE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


UNLIMITED = 10**9
"""Stands for Moodle's 0 (no time limit, unlimited attempts) when comparing generosity."""


def moodle_effective(quiz: QuizFacts, override: MoodleOverride | None,
                     groups: list[MoodleOverride] | None = None) -> dict[Field, int | None]:
    """What the student has now, field by field as Moodle decides it (``quiz_update_effective_access``): the user
    override's value where set, else the most lenient of their groups' overrides, else the quiz's. A group's 0
    (no limit, unlimited attempts) is the most lenient of all."""
    def pick(user: int | None, group_values: list[int], quiz_value: int | None) -> int | None:
        if user is not None:
            return user
        if group_values:
            return max(UNLIMITED if v == 0 else v for v in group_values)
        return quiz_value

    groups = groups or []
    user = override or MoodleOverride(id=None, userid=0)
    return {
        Field.TIMELIMIT: pick(user.timelimit, [g.timelimit for g in groups if g.timelimit is not None],
                              quiz.time_limit_seconds),
        Field.ATTEMPTS: pick(user.attempts, [g.attempts for g in groups if g.attempts is not None],
                             quiz.allowed_attempts),
        Field.TIMECLOSE: pick(user.timeclose, [g.timeclose for g in groups if g.timeclose is not None],
                              quiz.closes_at),
    }


def merge_moodle_override(quiz: QuizFacts, existing: MoodleOverride | None, userid: int,
                          decisions: Iterable[Decision]) -> MoodleOverride | None:
    """The complete override to save after the decisions, or None when nothing is to be written. The teacher's
    other fields (dates, password, attempts) are carried over; a value equal to the quiz's own setting is sent
    as unset, as Moodle itself would store it."""
    writes = {d.field: d.value for d in decisions if d.write}
    if not writes:
        return None
    base = existing or MoodleOverride(id=None, userid=userid)
    merged = base
    if Field.TIMELIMIT in writes:
        value = writes[Field.TIMELIMIT]
        merged = replace(merged, timelimit=None if value == quiz.time_limit_seconds else _num(value))
    if Field.ATTEMPTS in writes:
        value = writes[Field.ATTEMPTS]
        merged = replace(merged, attempts=None if value == quiz.allowed_attempts else _num(value))
    if Field.TIMECLOSE in writes:
        value = writes[Field.TIMECLOSE]
        merged = replace(merged, timeclose=None if value == quiz.closes_at else _num(value))
    return merged


def override_is_empty(override: MoodleOverride) -> bool:
    return all(getattr(override, name) is None for name in OVERRIDE_FIELDS)


# -------------------------------------------------------------------------------------------- window guard
@dataclass(frozen=True)
class WindowCheck:
    cut_short: bool


def window_cuts_time(open_at: int | None, close_at: int | None, limit_seconds: int | None) -> WindowCheck:
    """A window shorter than the student's whole time limit cuts the extra time short, whenever they start
    (research brief: quiz-extensions issue #30; the LMS force-submits at the close). When the plan asks for the
    guard, the student's own close moves later by their extra time, so they keep the same slack as the class."""
    if not close_at or not open_at or not limit_seconds:
        return WindowCheck(False)
    return WindowCheck(close_at - open_at < limit_seconds)


# ------------------------------------------------------------------------------------------- quiz events
CANVAS_QUIZ_EVENTS = frozenset({"assignment_created", "assignment_updated"})
"""Canvas Live Events about a quiz's assignment (``submission_types`` ``online_quiz`` for Classic Quizzes,
``external_tool`` for New Quizzes). Classic practice quizzes and surveys have no assignment: the sweep finds them."""
CANVAS_QUIZ_SUBMISSION_TYPES = frozenset({"online_quiz", "external_tool"})
MOODLE_QUIZ_EVENTS = {
    "\\core\\event\\course_module_created": "course_module_created",
    "\\core\\event\\course_module_updated": "course_module_updated",
    "\\core\\event\\course_restored": "course_restored",
    "\\mod_quiz\\event\\user_override_created": "user_override_created",
    "\\mod_quiz\\event\\user_override_updated": "user_override_updated",
    "\\mod_quiz\\event\\user_override_deleted": "user_override_deleted",
}
"""What the companion plugin forwards so that a new quiz, a changed time limit, a restored course or a teacher's
edit of a student's override is seen in seconds (Moodle 4.5 event names; ``course_module_*`` only for quizzes)."""
CANVAS_SHARD = 10**13


def quiz_event_course(source: str, event_type: str, payload: object) -> str | None:
    """The LMS course id a stored webhook event says has changed quizzes, or None (not a quiz event)."""
    if not isinstance(payload, dict):
        return None
    if source == "canvas" and event_type in CANVAS_QUIZ_EVENTS:
        body = payload.get("body")
        if not isinstance(body, dict) or str(body.get("context_type") or "Course") != "Course":
            return None
        kinds = {k.strip() for k in str(body.get("submission_types") or "").split(",")}
        if not kinds & CANVAS_QUIZ_SUBMISSION_TYPES:
            return None
        raw = str(body.get("context_id") or "")
        if not raw.isdigit():
            return None
        return str(int(raw) % CANVAS_SHARD)  # global ids (shard × 10^13 + id) name the same course
    if source == "moodle" and event_type in MOODLE_QUIZ_EVENTS.values():
        course = payload.get("course")
        raw = str(course.get("id") or "") if isinstance(course, dict) else ""
        return raw if raw.isdigit() else None
    return None

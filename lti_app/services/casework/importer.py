"""CSV import of students, plans and accommodations from an SIS or IEP-system export.

One row per accommodation (a plan without accommodations is one row with the accommodation columns empty); the
columns are listed in ``COLUMNS`` (the template ``config/import-template.csv`` and the README are checked against
it). The whole file is parsed and validated before anything is written, and errors carry the file's line
numbers. Writing is all-or-nothing in one transaction, unless the administrator chooses to skip bad rows: then
every plan that has a bad row is left out whole (never a plan with an accommodation missing), and every student
whose identity is in doubt is left out with all their plans.

Re-importing is idempotent: students are keyed by SIS id, plans by student + plan type, accommodations by their
catalogue code (or their text when there is no code). The same file twice changes nothing; a plan whose
accommodations changed gets a new active version (the old one is superseded, which re-opens teachers'
acknowledgements, IDEA 34 CFR 300.323(d)). An empty optional cell leaves the stored value unchanged.

The first half of the module is pure (no database) so the row rules are unit-tested on their own.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.db import utcnow
from lti_app.domain import plan_rules
from lti_app.domain.deadlines import latest_annual_review
from lti_app.domain.vocab import (
    AccommodationCategory,
    AdminAction,
    AppliesTo,
    GrantRole,
    PersonKind,
    PlanStatus,
    PlanType,
    VersionStatus,
)
from lti_app.models import Accommodation, Person, Plan, PlanVersion, RoleGrant, Student
from lti_app.services.access.audit_log import record_admin

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------- the columns
@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    description: str
    example: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("student_sis_id", True, "The student's id in the SIS; the key that links the record to the student's LMS "
           "accounts (the LMS's SIS id / lis_person_sourcedid).", "S-100234"),
    Column("given_name", True, "Legal given name.", "Avery"),
    Column("family_name", True, "Family name.", "Quinlan"),
    Column("preferred_name", False, "The name the student goes by, shown to teachers.", "Ave"),
    Column("date_of_birth", False, "YYYY-MM-DD. Used to catch the same student under two SIS ids.", "2010-04-17"),
    Column("grade", False, "Grade level, as the school writes it (up to 20 characters).", "10"),
    Column("school", False, "School name.", "Juniper Ridge High School"),
    Column("departed_on", False, "YYYY-MM-DD, the day the student left the district (drives retention). Not in the "
           "future.", ""),
    Column("plan_type", True, "IEP, 504, ELL, health, behaviour (or behavior) or MTSS.", "IEP"),
    Column("plan_status", False, "active (default) or ended. An ended plan needs end_on.", "active"),
    Column("effective_on", True, "YYYY-MM-DD, the day the plan (this version of it) took effect.", "2026-09-01"),
    Column("end_on", False, "YYYY-MM-DD, not before effective_on.", "2027-08-31"),
    Column("annual_review_due", False, "YYYY-MM-DD, after effective_on; for an IEP within 12 months of it "
           "(IDEA 34 CFR 300.324(b)(1)(i)).", "2027-08-31"),
    Column("reevaluation_due", False, "YYYY-MM-DD (IEP three-year reevaluation, 34 CFR 300.303(b)(2)).", "2028-05-15"),
    Column("case_manager_email", False, "Email of the case manager as the LMS knows it. Unknown emails are reported "
           "as warnings and the plan keeps its current case manager (none for a new plan).", "t.larkspur@example.org"),
    Column("accommodation_category", False, "presentation, response, setting or timing (also: scheduling). Required "
           "when the row has an accommodation.", "timing"),
    Column("accommodation_text", False, "The accommodation in operational words a teacher can act on (up to 2,000 "
           "characters). Empty on a row that only carries a plan.", "Tests and quizzes: 1.5x time"),
    Column("accommodation_code", False, "The accommodation's code in the IEP system's catalogue (up to 50 "
           "characters). When present it is the accommodation's key; otherwise its text is.", "T-EXT-150"),
    Column("applies_to", False, "classroom, tests or all (default all).", "tests"),
    Column("subjects", False, "Subjects the accommodation is limited to, separated by ';' (empty: every subject).",
           "Mathematics;Science"),
    Column("time_multiplier", False, "Extra time as a multiplier between 1 and 4 (1.5 = time and a half), for the "
           "LMS's quiz settings.", "1.5"),
    Column("extra_attempts", False, "Extra quiz attempts, a whole number from 0 to 20.", ""),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
REQUIRED = frozenset(c.name for c in COLUMNS if c.required)
STUDENT_FIELDS = ("given_name", "family_name", "preferred_name", "date_of_birth", "grade", "school", "departed_on")
PLAN_FIELDS = ("plan_status", "effective_on", "end_on", "annual_review_due", "reevaluation_due", "case_manager_email")
ACCOMMODATION_COLUMNS = ("accommodation_category", "accommodation_text", "accommodation_code", "applies_to",
                         "subjects", "time_multiplier", "extra_attempts")
_PLAN_TYPES = {t.value.lower(): t.value for t in PlanType} | {"behavior": PlanType.BEHAVIOUR.value,
                                                               "section 504": PlanType.P504.value}
_CATEGORIES = {c.value: c.value for c in AccommodationCategory} | {"scheduling": AccommodationCategory.TIMING.value}
_LIMITS = {"student_sis_id": 255, "given_name": 255, "family_name": 255, "preferred_name": 255, "grade": 20,
           "school": 255, "case_manager_email": 320, "accommodation_text": 2000, "accommodation_code": 50}


# ------------------------------------------------------------------------------------------------- pure parsing
@dataclass(frozen=True)
class Issue:
    """An error or warning about one line of the file (line 1 is the header)."""

    line: int
    column: str
    message: str
    scope: str = "row"
    """What an error invalidates when bad rows are skipped: file | student | plan | row."""
    student_key: str | None = None
    plan_key: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class StudentFields:
    sis_id: str
    given_name: str
    family_name: str
    preferred_name: str | None
    date_of_birth: dt.date | None
    grade: str | None
    school: str | None
    departed_on: dt.date | None


@dataclass(frozen=True)
class PlanFields:
    plan_type: str
    status: str
    effective_on: dt.date
    end_on: dt.date | None
    annual_review_due: dt.date | None
    reevaluation_due: dt.date | None
    case_manager_email: str | None


@dataclass(frozen=True)
class AccommodationFields:
    category: str
    text: str
    code: str | None
    applies_to: str
    subjects: tuple[str, ...]
    time_multiplier: Decimal | None
    extra_attempts: int | None

    @property
    def key(self) -> str:
        """Identity within a plan: the catalogue code, or else the text (case and spacing ignored)."""
        return f"code:{self.code.lower()}" if self.code else "text:" + " ".join(self.text.lower().split())

    @property
    def signature(self) -> tuple[object, ...]:
        """Everything that, if changed, makes a new plan version."""
        return (self.key, self.category, self.text, self.applies_to, tuple(sorted(self.subjects)),
                self.time_multiplier, self.extra_attempts)


@dataclass(frozen=True)
class Row:
    line: int
    student: StudentFields
    plan: PlanFields
    accommodation: AccommodationFields | None


@dataclass(frozen=True)
class Parsed:
    rows: tuple[Row, ...]
    errors: tuple[Issue, ...]
    warnings: tuple[Issue, ...]
    data_rows: int
    """Non-blank data rows in the file (valid or not)."""
    refused: bool = False
    """The file holds characters no database column may hold (``control_character_issues``): refused whole."""


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _date(raw: str, column: str, line: int, errors: list[Issue], scope: str, keys: dict[str, str | None]) -> dt.date | None:
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        errors.append(Issue(line, column, f"{raw[:40]!r} is not a date written YYYY-MM-DD.", scope, **keys))
        return None
    if not 1900 <= day.year <= 2100:
        errors.append(Issue(line, column, f"{raw} is not a plausible date.", scope, **keys))
        return None
    return day


def parse_row(line: int, raw: dict[str, str], today: dt.date) -> tuple[Row | None, list[Issue], list[Issue]]:
    """Validate one data row. Returns the row (None when it has errors), its errors and its warnings."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    v = {name: _clean(raw.get(name)) for name in COLUMN_NAMES}
    v["accommodation_text"] = (raw.get("accommodation_text") or "").strip()
    sis = v["student_sis_id"]
    plan_type = _PLAN_TYPES.get(v["plan_type"].lower())
    keys: dict[str, str | None] = {"student_key": sis or None, "plan_key": plan_type}

    def err(column: str, message: str, scope: str) -> None:
        errors.append(Issue(line, column, message, scope, **keys))

    for name, limit in _LIMITS.items():
        if len(v[name]) > limit:
            err(name, f"is {len(v[name]):,} characters long; the limit is {limit:,}.",
                "student" if name in STUDENT_FIELDS or name == "student_sis_id" else "plan")
    for name in sorted(REQUIRED):
        if not v[name]:
            err(name, "is required and empty.", "student" if name in STUDENT_FIELDS or name == "student_sis_id"
                else "plan")
    if v["plan_type"] and plan_type is None:
        # The row cannot be attributed to a plan: leave the student's other plans out too when skipping.
        err("plan_type", f"{v['plan_type'][:30]!r} is not a plan type (IEP, 504, ELL, health, behaviour, MTSS).",
            "student")

    # Student fields.
    dob = _date(v["date_of_birth"], "date_of_birth", line, errors, "student", keys)
    departed = _date(v["departed_on"], "departed_on", line, errors, "student", keys)
    if dob and dob >= today:
        err("date_of_birth", f"{dob} is not in the past.", "student")
    if departed and departed > today:
        err("departed_on", f"{departed} is in the future; set it once the student has left.", "student")
    if dob and departed and departed <= dob:
        err("departed_on", f"{departed} is not after the date of birth {dob}.", "student")

    # Plan fields.
    status = (v["plan_status"] or PlanStatus.ACTIVE.value).lower()
    if status not in (PlanStatus.ACTIVE.value, PlanStatus.ENDED.value):
        err("plan_status", f"{v['plan_status'][:30]!r} must be active or ended.", "plan")
    effective = _date(v["effective_on"], "effective_on", line, errors, "plan", keys)
    end = _date(v["end_on"], "end_on", line, errors, "plan", keys)
    review = _date(v["annual_review_due"], "annual_review_due", line, errors, "plan", keys)
    reeval = _date(v["reevaluation_due"], "reevaluation_due", line, errors, "plan", keys)
    if effective:
        if dob and effective <= dob:
            err("effective_on", f"{effective} is not after the date of birth {dob}.", "plan")
        if end and end < effective:
            err("end_on", f"{end} is before effective_on {effective}.", "plan")
        if review and review <= effective:
            err("annual_review_due", f"{review} is not after effective_on {effective}.", "plan")
        latest_review = latest_annual_review(effective)
        if review and plan_type == PlanType.IEP.value and latest_review and review > latest_review:
            err("annual_review_due", f"{review} is more than one year after effective_on {effective} (the latest "
                                     f"is {latest_review}); an IEP is reviewed at least annually "
                                     "(34 CFR 300.324(b)(1)(i)).", "plan")
        if reeval and reeval <= effective - dt.timedelta(days=3 * 366):
            err("reevaluation_due", f"{reeval} is more than three years before effective_on {effective}.", "plan")
    if status == PlanStatus.ENDED.value and not v["end_on"]:
        err("end_on", "is required for an ended plan.", "plan")
    if status == PlanStatus.ACTIVE.value and end and end < today:
        warnings.append(Issue(line, "end_on", f"the plan is marked active but ended on {end}.", "plan", **keys))
    email = v["case_manager_email"].lower() or None
    if email and ("@" not in email or email.startswith("@") or email.endswith("@") or " " in email):
        err("case_manager_email", f"{email[:60]!r} is not an email address.", "plan")

    # Accommodation fields (all empty: the row only carries the plan).
    accommodation: AccommodationFields | None = None
    if any(v[c] for c in ACCOMMODATION_COLUMNS):
        category = _CATEGORIES.get(v["accommodation_category"].lower())
        if not v["accommodation_category"]:
            err("accommodation_category", "is required when the row has an accommodation.", "plan")
        elif category is None:
            err("accommodation_category", f"{v['accommodation_category'][:30]!r} must be presentation, response, "
                                          "setting or timing.", "plan")
        if not v["accommodation_text"]:
            err("accommodation_text", "is required when the row has an accommodation.", "plan")
        applies = (v["applies_to"] or AppliesTo.ALL.value).lower()
        if applies not in {a.value for a in AppliesTo}:
            err("applies_to", f"{v['applies_to'][:30]!r} must be classroom, tests or all.", "plan")
        multiplier: Decimal | None = None
        if v["time_multiplier"]:
            try:
                multiplier = Decimal(v["time_multiplier"].rstrip("xX")).quantize(Decimal("0.01"), ROUND_HALF_UP)
            except InvalidOperation:
                err("time_multiplier", f"{v['time_multiplier'][:20]!r} is not a number such as 1.5.", "plan")
            else:
                if not Decimal(1) <= multiplier <= Decimal(4):
                    err("time_multiplier", f"{multiplier} must be between 1 and 4.", "plan")
        attempts: int | None = None
        if v["extra_attempts"]:
            if not (v["extra_attempts"].isascii() and v["extra_attempts"].isdigit()) or int(v["extra_attempts"]) > 20:
                err("extra_attempts", f"{v['extra_attempts'][:20]!r} must be a whole number from 0 to 20.", "plan")
            else:
                attempts = int(v["extra_attempts"])
        subjects = tuple(dict.fromkeys(s for s in (_clean(p) for p in v["subjects"].split(";")) if s))
        if not errors and category is not None:
            accommodation = AccommodationFields(category, " ".join(v["accommodation_text"].split()),
                                                v["accommodation_code"] or None, applies, subjects, multiplier, attempts)
    if errors:
        return None, errors, warnings
    assert plan_type is not None and effective is not None
    student = StudentFields(sis, v["given_name"], v["family_name"], v["preferred_name"] or None, dob,
                            v["grade"] or None, v["school"] or None, departed)
    plan = PlanFields(plan_type, status, effective, end, review, reeval, email)
    return Row(line, student, plan, accommodation), errors, warnings


def _header(fields: Sequence[str] | None) -> tuple[list[str], list[Issue], list[Issue]]:
    if not fields:
        return [], [Issue(1, "", "The file is empty: it needs a header row and at least one data row.", "file")], []
    names = [f.strip().lstrip("\ufeff").lower().replace(" ", "_") for f in fields]
    errors: list[Issue] = []
    warnings: list[Issue] = []
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            errors.append(Issue(1, name, "appears twice in the header.", "file"))
        seen.add(name)
    missing = [c for c in COLUMN_NAMES if c in REQUIRED and c not in seen]
    if missing:
        errors.append(Issue(1, "", "The header lacks required column(s): " + ", ".join(missing)
                            + ". Start from config/import-template.csv.", "file"))
    unknown = [n for n in names if n and n not in COLUMN_NAMES]
    if unknown:
        warnings.append(Issue(1, "", "Column(s) not used by Caseload, ignored: " + ", ".join(unknown[:10]) + ".", "file"))
    return names, errors, warnings


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). In Excel, save it as "
                         "'CSV UTF-8 (Comma delimited)'.") from None


CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "backspace", 11: "vertical tab", 12: "form feed", 27: "ESC", 127: "DEL"}


def control_character_issues(text: str, limit: int = 20) -> list[Issue]:
    """Refuse control characters, naming the line (the header is line 1) and the position in it.

    PostgreSQL cannot store NUL (U+0000) in a text column at all (it raised mid-import, a 500), while SQLite stores
    it, so the same file behaved differently on the two databases. The other C0 controls (except tab, line feed and
    carriage return, which CSV uses), DEL and the C1 controls (U+0080 to U+009F, the trace of a file decoded with
    the wrong code page) are invisible on every page and in every export; no SIS or IEP system writes them in a name,
    a date or an accommodation. The whole file is refused before anything is read from the database."""
    issues: list[Issue] = []
    for number, line in enumerate(text.split("\n"), start=1):
        for position, char in enumerate(line, start=1):
            code = ord(char)
            if (code < 32 and char not in "\t\r") or 127 <= code < 160:
                name = CONTROL_NAMES.get(code, "control character")
                issues.append(Issue(number, "", f"character {position} is a control character ({name}, U+{code:04X}) "
                                                "that cannot be stored. Remove it (re-export the file from the source "
                                                "system as CSV UTF-8) and import again.", "file"))
                break
        if len(issues) >= limit:
            break
    return issues


def check_rows(rows: Sequence[Row]) -> tuple[list[Issue], list[Issue]]:
    """Rules across rows: one student's identity and one plan's fields agree on every line, an accommodation is
    not listed twice in a plan, and the same person does not appear under two SIS ids."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    first_student: dict[str, Row] = {}
    first_plan: dict[tuple[str, str], Row] = {}
    first_accommodation: dict[tuple[str, str, str], Row] = {}
    identities: dict[tuple[str, str, dt.date], Row] = {}
    per_plan: dict[tuple[str, str], list[plan_rules.AccommodationFacts]] = {}
    for row in rows:
        s, p, a = row.student, row.plan, row.accommodation
        keys = {"student_key": s.sis_id, "plan_key": p.plan_type}
        seen = first_student.setdefault(s.sis_id, row)
        if seen is not row:
            for name in STUDENT_FIELDS:
                mine, theirs = getattr(s, name), getattr(seen.student, name)
                if mine != theirs:
                    errors.append(Issue(row.line, name, f"{mine or '(empty)'!s} differs from line {seen.line} "
                                                        f"({theirs or '(empty)'!s}) for the same student_sis_id.",
                                        "student", **keys))
        elif s.date_of_birth is not None:
            ident = (s.given_name.lower(), s.family_name.lower(), s.date_of_birth)
            other = identities.setdefault(ident, row)
            if other is not row:
                errors.append(Issue(row.line, "student_sis_id", f"looks like the same student as student_sis_id "
                                    f"{other.student.sis_id} on line {other.line} (same name and date of birth). "
                                    "Check which SIS id is right.", "student", **keys))
        pseen = first_plan.setdefault((s.sis_id, p.plan_type), row)
        if pseen is not row:
            for name in PLAN_FIELDS:
                attr = "status" if name == "plan_status" else name
                mine, theirs = getattr(p, attr), getattr(pseen.plan, attr)
                if mine != theirs:
                    errors.append(Issue(row.line, name, f"{mine or '(empty)'!s} differs from line {pseen.line} "
                                                        f"({theirs or '(empty)'!s}) for the same student's "
                                                        f"{p.plan_type} plan.", "plan", **keys))
        if a is not None:
            aseen = first_accommodation.setdefault((s.sis_id, p.plan_type, a.key), row)
            if aseen is not row:
                assert aseen.accommodation is not None
                if aseen.accommodation.signature == a.signature:
                    warnings.append(Issue(row.line, "accommodation_text", f"repeats line {aseen.line} exactly; "
                                                                          "listed once.", "row", **keys))
                else:
                    errors.append(Issue(row.line, "accommodation_code" if a.code else "accommodation_text",
                                        f"the same accommodation is on line {aseen.line} with different details.",
                                        "plan", **keys))
            if aseen is row:
                per_plan.setdefault((s.sis_id, p.plan_type), []).append(plan_rules.AccommodationFacts(
                    a.text, a.applies_to, a.subjects, a.time_multiplier, a.extra_attempts, row.line))
    # Accommodations that contradict (two time multipliers for the same tests...) cannot both be in force.
    for (sis_id, plan_type), items in per_plan.items():
        for clash in plan_rules.contradictions(items):
            line = int(clash.second.ref or 0)
            errors.append(Issue(line, plan_rules.SINGLE_VALUED_COLUMN[clash.parameter],
                                f"contradicts line {clash.first.ref}: {clash.message}", "plan",
                                student_key=sis_id, plan_key=plan_type))
    return errors, warnings


def parse(data: bytes, today: dt.date | None = None) -> Parsed:
    """Read and validate a whole file. Never raises for bad content: everything becomes an Issue."""
    today = today or clock.today()
    try:
        text = _decode(data)
    except ValueError as exc:
        return Parsed((), (Issue(1, "", str(exc), "file"),), (), 0)
    refused = control_character_issues(text)
    if refused:
        return Parsed((), tuple(refused), (), 0, refused=True)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)  # Excel in some locales writes ';'
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    errors: list[Issue] = []
    warnings: list[Issue] = []
    rows: list[Row] = []
    data_rows = 0
    try:
        header = next(reader, None)
        names, herrors, hwarnings = _header(header)
        errors += herrors
        warnings += hwarnings
        if herrors:
            return Parsed((), tuple(errors), tuple(warnings), 0)
        width = len(names)
        previous_end = reader.line_num
        for record in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            data_rows += 1
            if len(record) != width:
                sis_at = names.index("student_sis_id")
                errors.append(Issue(line, "", f"has {len(record)} fields; the header has {width}. Check for a "
                                              "stray delimiter or a missing quote.", "student",
                                    student_key=_clean(record[sis_at]) or None if sis_at < len(record) else None))
                continue
            row, rerrors, rwarnings = parse_row(line, dict(zip(names, record, strict=True)), today)
            errors += rerrors
            warnings += rwarnings
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        errors.append(Issue(reader.line_num, "", f"cannot be read as CSV ({exc}); nothing after it was checked.",
                            "file"))
    if data_rows == 0 and not errors:
        errors.append(Issue(1, "", "The file has a header but no data rows.", "file"))
    cerrors, cwarnings = check_rows(rows)
    return Parsed(tuple(rows), tuple(errors + cerrors), tuple(warnings + cwarnings), data_rows)


def rows_to_keep(rows: Iterable[Row], errors: Iterable[Issue]) -> tuple[list[Row], set[str], set[tuple[str, str]]]:
    """When skipping bad rows: the rows that survive, and the students / plans left out."""
    bad_students: set[str] = set()
    bad_plans: set[tuple[str, str]] = set()
    for issue in errors:
        if issue.student_key is None:
            continue
        if issue.scope == "student" or issue.plan_key is None:
            bad_students.add(issue.student_key)
        else:
            bad_plans.add((issue.student_key, issue.plan_key))
    kept = [r for r in rows
            if r.student.sis_id not in bad_students and (r.student.sis_id, r.plan.plan_type) not in bad_plans]
    return kept, bad_students, bad_plans


# ---------------------------------------------------------------------------------------------- applying a file
@dataclass
class ImportReport:
    """What an import found and did (or, for a dry run, would do)."""

    filename: str
    sha256: str
    dry_run: bool
    skip_bad_rows: bool
    data_rows: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    applied: bool = False
    refused: bool = False
    """The file holds characters the database cannot hold: refused whole (the upload answers 400)."""
    students_created: int = 0
    students_updated: int = 0
    students_unchanged: int = 0
    plans_created: int = 0
    plans_updated: int = 0
    plans_unchanged: int = 0
    versions_created: int = 0
    accommodations_written: int = 0

    @property
    def blocked(self) -> bool:
        """Errors stop the whole file unless bad rows are skipped (and a file-level error always does)."""
        return bool(self.errors) and (not self.skip_bad_rows or any(e.scope == "file" for e in self.errors))

    @property
    def changes(self) -> int:
        return (self.students_created + self.students_updated + self.plans_created + self.plans_updated
                + self.versions_created)

    def counts(self) -> dict[str, int]:
        return {"data_rows": self.data_rows, "errors": len(self.errors), "warnings": len(self.warnings),
                "skipped_rows": len(self.skipped_lines), "students_created": self.students_created,
                "students_updated": self.students_updated, "students_unchanged": self.students_unchanged,
                "plans_created": self.plans_created, "plans_updated": self.plans_updated,
                "plans_unchanged": self.plans_unchanged, "versions_created": self.versions_created,
                "accommodations_written": self.accommodations_written}


def _chunks(items: Sequence[str], size: int = 1000) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _db_identity_checks(session: Session, students: dict[str, Row], existing: dict[str, Student]
                        ) -> tuple[list[Issue], list[Issue]]:
    """Duplicates against the stored records: another record (another SIS id, or none) with the same name and
    date of birth is an error; a changed date of birth on the same SIS id is a warning."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    dobs = sorted({r.student.date_of_birth for r in students.values() if r.student.date_of_birth})
    by_identity: dict[tuple[str, str, dt.date], list[Student]] = defaultdict(list)
    for i in range(0, len(dobs), 1000):
        for st in session.scalars(select(Student).where(Student.date_of_birth.in_(dobs[i:i + 1000]))):
            assert st.date_of_birth is not None
            by_identity[(st.given_name.lower(), st.family_name.lower(), st.date_of_birth)].append(st)
    for sis, row in students.items():
        s = row.student
        keys = {"student_key": sis, "plan_key": row.plan.plan_type}
        if s.date_of_birth is not None:
            for other in by_identity.get((s.given_name.lower(), s.family_name.lower(), s.date_of_birth), []):
                if other.sis_id != sis:
                    known = f"SIS id {other.sis_id}" if other.sis_id else "no SIS id"
                    errors.append(Issue(row.line, "student_sis_id", f"a stored record (#{other.id}, {known}) has the "
                                        "same name and date of birth: this looks like a duplicate student. Check "
                                        "which SIS id is right.", "student", **keys))
        stored = existing.get(sis)
        if stored is not None and stored.purged_at is not None:
            errors.append(Issue(row.line, "student_sis_id", f"this student's record was purged under the retention "
                                f"policy on {clock.local_date(stored.purged_at)}; it is not imported again.", "student",
                                **keys))
        if stored is not None and stored.date_of_birth and s.date_of_birth and stored.date_of_birth != s.date_of_birth:
            warnings.append(Issue(row.line, "date_of_birth", f"changes the stored date of birth "
                                  f"{stored.date_of_birth} to {s.date_of_birth}.", "student", **keys))
    return errors, warnings


def _case_managers(session: Session, emails: set[str]) -> dict[str, int]:
    """Staff persons by lower-case email; when several platforms know the same email, the one with a case
    manager grant, else the oldest."""
    if not emails:
        return {}
    found: dict[str, tuple[bool, int]] = {}
    stmt = (select(func.lower(Person.email), Person.id, RoleGrant.id)
            .outerjoin(RoleGrant, (RoleGrant.person_id == Person.id) & (RoleGrant.role == GrantRole.CASE_MANAGER.value)
                       & RoleGrant.revoked_at.is_(None))
            .where(Person.kind == PersonKind.STAFF.value, func.lower(Person.email).in_(sorted(emails))))
    for email, person_id, grant_id in session.execute(stmt):
        rank = (grant_id is not None, -person_id)
        if email not in found or rank > (found[email][0], -found[email][1]):
            found[email] = (grant_id is not None, person_id)
    return {email: pid for email, (_g, pid) in found.items()}


@dataclass
class _PlanWork:
    rows: list[Row]
    plan: Plan | None = None
    new_version: bool = False
    changed_fields: dict[str, object] = field(default_factory=dict)


def _current_plan(plans: list[Plan], fields_: PlanFields) -> Plan | None:
    """The stored plan a file row means: the student's current (not ended) plan of that type; else an ended one
    with the same effective date (re-importing history); else none (a new plan)."""
    same_type = [p for p in plans if p.plan_type == fields_.plan_type]
    current = [p for p in same_type if p.status != PlanStatus.ENDED.value]
    if current:
        return max(current, key=lambda p: p.id)
    ended = [p for p in same_type if p.effective_on == fields_.effective_on]
    return max(ended, key=lambda p: p.id) if ended else None


def _stored_signatures(version: PlanVersion | None) -> set[tuple[object, ...]]:
    if version is None:
        return set()
    out = set()
    for a in version.accommodations:
        fields_ = AccommodationFields(a.category, a.text, a.catalogue_code or None, a.applies_to,
                                      tuple(a.subjects or ()),
                                      Decimal(a.time_multiplier).quantize(Decimal("0.01"))
                                      if a.time_multiplier is not None else None, a.extra_attempts)
        out.add(fields_.signature)
    return out


def run_import(session: Session, data: bytes, *, filename: str = "import.csv", dry_run: bool = True,
               skip_bad_rows: bool = False, actor_id: int | None = None, via: str = "web",
               today: dt.date | None = None) -> ImportReport:
    """Validate ``data`` completely, then (unless ``dry_run`` or blocked by errors) write it in one transaction and
    commit, with an ``AdminEvent``. A dry run reads the database to say what would change and writes nothing."""
    today = today or clock.today()
    report = ImportReport(filename=filename[:200], sha256=hashlib.sha256(data).hexdigest(), dry_run=dry_run,
                          skip_bad_rows=skip_bad_rows)
    parsed = parse(data, today)
    report.data_rows = parsed.data_rows
    report.refused = parsed.refused
    errors, warnings = list(parsed.errors), list(parsed.warnings)
    if any(e.scope == "file" for e in errors):
        report.errors, report.warnings = sorted(errors, key=lambda i: i.line), warnings
        return report

    first_row: dict[str, Row] = {}
    for row in parsed.rows:
        first_row.setdefault(row.student.sis_id, row)
    sis_ids = sorted(first_row)
    existing: dict[str, Student] = {}
    for chunk in _chunks(sis_ids):
        existing.update({st.sis_id: st for st in session.scalars(select(Student).where(Student.sis_id.in_(chunk)))
                         if st.sis_id})
    derrors, dwarnings = _db_identity_checks(session, first_row, existing)
    errors += derrors
    warnings += dwarnings

    emails = {r.plan.case_manager_email for r in parsed.rows if r.plan.case_manager_email}
    managers = _case_managers(session, emails)
    warned: set[str] = set()
    for row in parsed.rows:
        email = row.plan.case_manager_email
        if email and email not in managers and email not in warned:
            warned.add(email)
            warnings.append(Issue(row.line, "case_manager_email", f"{email} is not a staff member Caseload knows yet "
                                  "(they appear after their first launch or roster sync); the plan keeps its current "
                                  "case manager (none for a new plan).", "row", row.student.sis_id, row.plan.plan_type))

    kept, _bad_students, _bad_plans = rows_to_keep(parsed.rows, errors)
    kept_lines = {r.line for r in kept}
    error_lines = {e.line for e in errors}
    all_lines = {r.line for r in parsed.rows} | error_lines
    report.errors = sorted(errors, key=lambda i: (i.line, i.column))
    report.warnings = sorted(warnings, key=lambda i: (i.line, i.column))
    report.skipped_lines = sorted(all_lines - kept_lines) if errors else []

    # What would change, from the rows that survive.
    by_student: dict[str, dict[str, _PlanWork]] = defaultdict(dict)
    for row in kept:
        by_student[row.student.sis_id].setdefault(row.plan.plan_type, _PlanWork([])).rows.append(row)
    stored_plans: dict[int, list[Plan]] = defaultdict(list)
    student_ids = [st.id for st in existing.values()]
    for i in range(0, len(student_ids), 1000):
        for plan in session.scalars(select(Plan).where(Plan.student_id.in_(student_ids[i:i + 1000]))):
            stored_plans[plan.student_id].append(plan)
    active_versions: dict[int, PlanVersion] = {}
    plan_ids = [p.id for plans in stored_plans.values() for p in plans]
    for i in range(0, len(plan_ids), 1000):
        for version in session.scalars(select(PlanVersion).where(PlanVersion.plan_id.in_(plan_ids[i:i + 1000]),
                                                                 PlanVersion.status == VersionStatus.ACTIVE.value)):
            current = active_versions.get(version.plan_id)
            if current is None or version.version_no > current.version_no:
                active_versions[version.plan_id] = version
    if active_versions:
        # Load every compared accommodation in one query instead of one per version.
        ids = [v.id for v in active_versions.values()]
        for i in range(0, len(ids), 1000):
            list(session.scalars(select(Accommodation).where(Accommodation.plan_version_id.in_(ids[i:i + 1000]))))

    student_updates: dict[str, dict[str, object]] = {}
    for sis, plans in by_student.items():
        s = plans[next(iter(plans))].rows[0].student
        stored = existing.get(sis)
        if stored is None:
            report.students_created += 1
        else:
            changed = {name: getattr(s, name) for name in STUDENT_FIELDS
                       if getattr(s, name) is not None and getattr(stored, name) != getattr(s, name)}
            if changed:
                student_updates[sis] = changed
                report.students_updated += 1
            else:
                report.students_unchanged += 1
        for work in plans.values():
            p = work.rows[0].plan
            signatures = {r.accommodation.signature for r in work.rows if r.accommodation is not None}
            work.plan = _current_plan(stored_plans.get(stored.id, []) if stored else [], p)
            if work.plan is None:
                report.plans_created += 1
                report.versions_created += 1
                work.new_version = True
                report.accommodations_written += len(signatures)
                continue
            wanted: dict[str, object] = {"status": p.status, "effective_on": p.effective_on, "end_on": p.end_on,
                                         "annual_review_due": p.annual_review_due,
                                         "reevaluation_due": p.reevaluation_due}
            if p.case_manager_email in managers:
                wanted["case_manager_id"] = managers[p.case_manager_email]
            work.changed_fields = {k: val for k, val in wanted.items()
                                   if val is not None and getattr(work.plan, k) != val}
            stored_version = active_versions.get(work.plan.id)
            if signatures and signatures != _stored_signatures(stored_version):
                work.new_version = True
                report.versions_created += 1
                report.accommodations_written += len(signatures)
            elif stored_version is None:
                work.new_version = True  # a plan with no active version gets one, even without accommodations
                report.versions_created += 1
                report.accommodations_written += len(signatures)
            if work.changed_fields or work.new_version:
                report.plans_updated += 1
            else:
                report.plans_unchanged += 1

    if dry_run or report.blocked:
        session.rollback()
        return report
    _write(session, report, by_student, existing, student_updates, managers, active_versions, actor_id)
    record_admin(session, actor_id, via, AdminAction.IMPORT_APPLY.value, target_type="file",
                 summary=f"Imported {report.filename}: {report.students_created} students created, "
                         f"{report.students_updated} updated; {report.plans_created} plans created, "
                         f"{report.plans_updated} updated; {report.versions_created} new versions",
                 details={"filename": report.filename, "sha256": report.sha256, "skip_bad_rows": skip_bad_rows,
                          **report.counts()})
    session.commit()
    report.applied = True
    log.info("import applied sha256=%s rows=%d students+%d ~%d plans+%d ~%d versions+%d skipped=%d",
             report.sha256[:12], report.data_rows, report.students_created, report.students_updated,
             report.plans_created, report.plans_updated, report.versions_created, len(report.skipped_lines))
    return report


def _write(session: Session, report: ImportReport, by_student: dict[str, dict[str, _PlanWork]],
           existing: dict[str, Student], student_updates: dict[str, dict[str, object]], managers: dict[str, int],
           active_versions: dict[int, PlanVersion], actor_id: int | None) -> None:
    """Bulk writes (a handful of statements for the whole file). Plans are activated here directly: an imported
    plan is already in force in the SIS, so its version is created active and the previous one superseded."""
    now = utcnow()
    new_students = []
    for sis, plans in by_student.items():
        if sis in existing:
            for name, value in student_updates.get(sis, {}).items():
                setattr(existing[sis], name, value)
            continue
        s = plans[next(iter(plans))].rows[0].student
        new_students.append({"sis_id": sis, "given_name": s.given_name, "family_name": s.family_name,
                             "preferred_name": s.preferred_name, "date_of_birth": s.date_of_birth, "grade": s.grade,
                             "school": s.school, "departed_on": s.departed_on, "created_at": now})
    student_id: dict[str, int] = {sis: st.id for sis, st in existing.items()}
    if new_students:
        result = session.execute(insert(Student).returning(Student.id, Student.sis_id, sort_by_parameter_order=True),
                                 new_students)
        for created in result:
            student_id[str(created.sis_id)] = created.id

    new_plans: list[tuple[str, _PlanWork]] = []
    for sis, plans in by_student.items():
        for work in plans.values():
            if work.plan is None:
                new_plans.append((sis, work))
            else:
                for name, value in work.changed_fields.items():
                    setattr(work.plan, name, value)
    plan_id: dict[int, int] = {}
    if new_plans:
        values = []
        for sis, work in new_plans:
            p = work.rows[0].plan
            values.append({"student_id": student_id[sis], "plan_type": p.plan_type, "status": p.status,
                           "case_manager_id": managers.get(p.case_manager_email or ""), "effective_on": p.effective_on,
                           "end_on": p.end_on, "annual_review_due": p.annual_review_due,
                           "reevaluation_due": p.reevaluation_due, "created_at": now})
        result = session.execute(insert(Plan).returning(Plan.id, sort_by_parameter_order=True), values)
        for (_sis, work), created_plan in zip(new_plans, result, strict=True):
            plan_id[id(work)] = created_plan[0]
    session.flush()

    versioned = [w for plans in by_student.values() for w in plans.values() if w.new_version]
    if not versioned:
        return
    stored_ids = [w.plan.id for w in versioned if w.plan is not None]
    next_no: dict[int, int] = {}
    for i in range(0, len(stored_ids), 1000):
        next_no.update({pid: (n or 0) + 1 for pid, n in session.execute(
            select(PlanVersion.plan_id, func.max(PlanVersion.version_no))
            .where(PlanVersion.plan_id.in_(stored_ids[i:i + 1000])).group_by(PlanVersion.plan_id))})
    superseded = [active_versions[w.plan.id].id for w in versioned if w.plan is not None and w.plan.id in active_versions]
    for i in range(0, len(superseded), 1000):
        session.execute(update(PlanVersion).where(PlanVersion.id.in_(superseded[i:i + 1000]))
                        .values(status=VersionStatus.SUPERSEDED.value), execution_options={"synchronize_session": False})
    summary = f"Imported from {report.filename} on {clock.local_date(now)}"
    version_rows = []
    for w in versioned:
        pid = w.plan.id if w.plan is not None else plan_id[id(w)]
        version_rows.append({"plan_id": pid, "version_no": next_no.get(pid, 1), "status": VersionStatus.ACTIVE.value,
                             "summary": summary, "created_by_id": actor_id, "created_at": now, "activated_at": now,
                             "activated_by_id": actor_id})
    result = session.execute(insert(PlanVersion).returning(PlanVersion.id, sort_by_parameter_order=True), version_rows)
    accommodations = []
    for w, created_version in zip(versioned, result, strict=True):
        vid = created_version[0]
        seen: set[str] = set()
        position = 0
        for r in w.rows:
            a = r.accommodation
            if a is None or a.key in seen:
                continue
            seen.add(a.key)
            accommodations.append({"plan_version_id": vid, "category": a.category, "text": a.text,
                                   "applies_to": a.applies_to, "subjects": list(a.subjects),
                                   "time_multiplier": a.time_multiplier, "extra_attempts": a.extra_attempts,
                                   "catalogue_code": a.code, "position": position})
            position += 1
    if accommodations:
        session.execute(insert(Accommodation), accommodations)
    session.flush()

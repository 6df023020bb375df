"""Export of one student's whole record, for a parent's (or eligible student's) request to inspect and review
the education records (FERPA 34 CFR 99.10; IDEA 34 CFR 300.613), as a printable page or a JSON file.

Every export goes through the access policy with action ``export`` (the student's case manager and
administrators may export) and is written to the access log. Notes are included by the exporter's tiers; restricted
notes only when the exporter holds the can-see-restricted grant AND ticks the box, which is logged as its own
access. When the copy leaves the school, a ``Disclosure`` row is written: the record of disclosures FERPA 34 CFR
99.32 requires (recipient, purpose / legitimate interest, legal basis), itself part of what a parent may inspect.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, LargeBinary, inspect, select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.crypto import DataKeyError, cipher
from lti_app.db import Base
from lti_app.domain.access import Action, Decision
from lti_app.models import (
    AccessEvent,
    Accommodation,
    Acknowledgement,
    CaseNote,
    CaseNoteRevision,
    Course,
    Disclosure,
    Person,
    Plan,
    PlanVersion,
    Platform,
    Question,
    Section,
    Student,
    StudentLink,
)
from lti_app.services.access import policy as access
from lti_app.services.casework import deadlines as deadline_service
from lti_app.services.casework import service_minutes

log = logging.getLogger(__name__)

FORMAT = "caseload.student-record/1"
LEGAL_BASES = {
    "parent_inspection": "Parent or eligible student inspecting the records (FERPA 34 CFR 99.10)",
    "consent": "Signed, dated written consent of the parent or eligible student (34 CFR 99.30)",
    "transfer": "Another school where the student seeks or intends to enroll (34 CFR 99.31(a)(2), 99.34)",
    "court_order": "Judicial order or lawfully issued subpoena (34 CFR 99.31(a)(9))",
    "emergency": "Health or safety emergency (34 CFR 99.31(a)(10), 99.36)",
    "other": "Another exception of 34 CFR 99.31 (name it in the purpose)",
}
FORMATS = ("html", "json")


class ExportInvalid(ValueError):
    """The export form is incomplete; the message says what to fill in."""


@dataclass(frozen=True)
class ExportRequest:
    fmt: str = "html"
    leaves_school: bool = False
    recipient: str = ""
    purpose: str = ""
    legal_basis: str = ""
    include_restricted: bool = False

    def validate(self) -> ExportRequest:
        if self.fmt not in FORMATS:
            raise ExportInvalid("Choose a printable page or a JSON file.")
        if not self.leaves_school:
            return ExportRequest(self.fmt, False, "", "", "", self.include_restricted)
        recipient, purpose = " ".join(self.recipient.split()), " ".join(self.purpose.split())
        if not recipient:
            raise ExportInvalid("Name who receives the copy (a parent, another school, an agency...): the record of "
                                "disclosures needs it (FERPA 34 CFR 99.32).")
        if not purpose:
            raise ExportInvalid("Say why the copy is given (the purpose or legitimate interest of the recipient).")
        if self.legal_basis not in LEGAL_BASES:
            raise ExportInvalid("Choose the legal basis of the disclosure.")
        if len(recipient) > 500 or len(purpose) > 500:
            raise ExportInvalid("Recipient and purpose are limited to 500 characters each.")
        return ExportRequest(self.fmt, True, recipient, purpose, self.legal_basis, self.include_restricted)


@dataclass(frozen=True)
class ExportResult:
    record: dict[str, Any]
    disclosure_id: int | None


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decrypt(token: bytes | None) -> str | None:
    if token is None:
        return None
    try:
        return cipher().decrypt(token)
    except DataKeyError:
        log.error("export: a ciphertext could not be decrypted with the configured data keys")
        return "[unreadable with the current data keys]"


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}
    return {p.id: p.display_name for p in session.scalars(select(Person).where(Person.id.in_(wanted)))}


def _casework(session: Session, student_id: int, tiers: set[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Casework rows (goals, progress, services, contacts, meetings, referrals...) when those tables exist: every
    mapped class of ``lti_app.models.casework`` with a ``student_id``, and the rows that hang from those by a
    foreign key (progress points under a goal, sessions under a service). Encrypted columns are decrypted.

    A class naming a ``restricted_tier`` column (crisis entries: ``visibility``) contributes only the rows whose tier
    is among ``tiers`` (the exporter's note tiers, restricted only when asked for), as notes do."""
    try:
        import lti_app.models.casework  # noqa: F401
    except ImportError:
        return {}
    casework_modules = ("lti_app.models.casework", "lti_app.models.goals")  # goals, progress points and reports too
    classes = [m.class_ for m in Base.registry.mappers if m.class_.__module__ in casework_modules]
    out: dict[str, list[dict[str, Any]]] = {}
    owned_ids: dict[str, list[int]] = {}
    person_names: dict[int, str | None] = {}

    def person_name(pid: int | None) -> str | None:
        if pid is None:
            return None
        if pid not in person_names:
            person = session.get(Person, pid)
            person_names[pid] = person.display_name if person else None
        return person_names[pid]

    def rows_of(cls: Any, where: Any) -> list[dict[str, Any]]:
        columns = inspect(cls).columns
        json_columns = set(getattr(cls, "json_columns", ()))  # evidence revisions: the state as an object
        tier_column = getattr(cls, "restricted_tier", None)
        if isinstance(tier_column, str):
            where = where & getattr(cls, tier_column).in_(sorted(tiers or ()))
        result = []
        for obj in session.scalars(select(cls).where(where).order_by(*inspect(cls).primary_key)):
            item: dict[str, Any] = {}
            for col in columns:
                value = getattr(obj, col.key)
                if isinstance(col.type, LargeBinary):
                    name = col.key.removesuffix("_encrypted")
                    item[name] = _decrypt(value)
                    if name in json_columns and item[name]:
                        with contextlib.suppress(ValueError):  # not JSON: kept as the decrypted text
                            item[name] = json.loads(item[name])
                else:
                    item[col.key] = _iso(value)
                    if col.key.endswith("_id") and any(fk.column.table.name == "persons" for fk in col.foreign_keys):
                        item[col.key.removesuffix("_id")] = person_name(value)  # readable: who, not only an id
            result.append(item)
        return result

    for cls in classes:
        if "student_id" in inspect(cls).columns:
            rows = rows_of(cls, cls.student_id == student_id)
            out[cls.__tablename__] = rows
            owned_ids[cls.__tablename__] = [r["id"] for r in rows if "id" in r]
    for cls in classes:
        if cls.__tablename__ in out:
            continue
        for col in inspect(cls).columns:
            parents = {fk.column.table.name for fk in col.foreign_keys} & set(owned_ids)
            if parents:
                ids = owned_ids[parents.pop()]
                out[cls.__tablename__] = rows_of(cls, col.in_(ids or [-1]))
                break
    return out


def _plain(value: Any) -> Any:
    """A dataclass value as JSON: enums by value, dates as ISO strings, nested dataclasses as objects."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _iso(value)


def _plan_dates(plan: Plan) -> dict[str, Any]:
    """Every date recorded on the plan (consent, evaluations, meetings, waiver, 504 reviews, eligibility, due dates),
    read from the mapped columns so a date added to the plan later is exported too."""
    return {col.key: _iso(getattr(plan, col.key)) for col in inspect(Plan).columns if isinstance(col.type, Date)}


def _deadlines(session: Session, student: Student, plans: list[Plan], today: dt.date) -> list[dict[str, Any]]:
    """Each plan's compliance deadlines with their status (and their timeliness fields, whatever the deadlines
    domain records: done on time, done late and why), as the deadlines pages show them."""
    if not plans:
        return []
    return [_plain(d) for d in deadline_service.for_rows(session, [(p, student) for p in plans], today)]


def _timeliness(session: Session, plans: list[Plan]) -> list[dict[str, Any]]:
    """How each deadline was met, kept per occurrence (``deadline_completions``): due on, done on, days late and why
    (34 CFR 300.301(d) exceptions), oldest first."""
    out = []
    for plan_id, items in deadline_service.completions_of(session, [p.id for p in plans]).items():
        for item in reversed(items):
            out.append({"plan_id": plan_id, **_plain(item)})
    return out


def _services(session: Session, student_id: int, today: dt.date) -> list[dict[str, Any]]:
    """Each service with its running ledger from its first day (IDEA 34 CFR 300.320(a)(4), (a)(7); minutes owed as
    compensatory services, 300.151(b)(1)): totals and every week or month."""
    out = []
    for s in service_minutes.services_for(session, student_id, today, periods=0, recent_sessions=0):
        led = s.ledger
        out.append({
            "id": s.id, "service": s.label, "minutes": s.minutes, "per": s.period, "provider": s.provider,
            "setting": s.setting, "plan_type": s.plan_type, "starts_on": _iso(s.starts_on), "ends_on": _iso(s.ends_on),
            "ledger": {
                "required": led.required, "delivered": led.delivered, "missed_by_student": led.missed_by_student,
                "missed_by_provider": led.missed_by_provider, "made_up": led.made_up, "still_owed": led.still_owed,
                "closed_school_days": led.closed_days,
                "periods": [{"start": _iso(r.period.start), "end": _iso(r.period.end), "complete": r.period.complete,
                             "required": r.period.required, "delivered": r.period.delivered,
                             "student_absent": r.period.student_absent, "provider_absent": r.period.provider_absent,
                             "closed_days": r.period.closed_days, "owed": r.owed, "made_up": r.made_up,
                             "balance": r.balance} for r in led.rows],
            },
            "removed_sessions": len(s.removed),
        })
    return out


def build_record(session: Session, viewer: Viewer, student: Student, decision: Decision,
                 include_restricted: bool) -> dict[str, Any]:
    """The whole record as plain data (dates as ISO strings). Notes follow the exporter's tiers."""
    tiers = set(decision.note_tiers) - ({"restricted"} if not include_restricted else set())
    plans = list(session.scalars(select(Plan).where(Plan.student_id == student.id).order_by(Plan.effective_on, Plan.id)))
    versions = list(session.scalars(select(PlanVersion).where(PlanVersion.plan_id.in_([p.id for p in plans] or [-1]))
                                    .order_by(PlanVersion.plan_id, PlanVersion.version_no)))
    accommodations: dict[int, list[Accommodation]] = {}
    for a in session.scalars(select(Accommodation).where(Accommodation.plan_version_id.in_([v.id for v in versions] or [-1]))
                             .order_by(Accommodation.position, Accommodation.id)):
        accommodations.setdefault(a.plan_version_id, []).append(a)
    notes = list(session.scalars(select(CaseNote).where(CaseNote.student_id == student.id)
                                 .order_by(CaseNote.recorded_on, CaseNote.id)))
    shown = [n for n in notes if n.visibility in tiers]
    revisions: dict[int, list[CaseNoteRevision]] = {}
    for r in session.scalars(select(CaseNoteRevision).where(CaseNoteRevision.note_id.in_([n.id for n in shown] or [-1]))
                             .order_by(CaseNoteRevision.revision_no)):
        revisions.setdefault(r.note_id, []).append(r)
    acks = session.execute(select(Acknowledgement, PlanVersion.version_no, Plan.plan_type, Course.title, Section.name)
                           .join(PlanVersion, PlanVersion.id == Acknowledgement.plan_version_id)
                           .join(Plan, Plan.id == PlanVersion.plan_id)
                           .join(Section, Section.id == Acknowledgement.section_id)
                           .join(Course, Course.id == Section.course_id)
                           .where(Acknowledgement.student_id == student.id)
                           .order_by(Acknowledgement.acknowledged_at)).all()
    questions = list(session.scalars(select(Question).where(Question.student_id == student.id).order_by(Question.id)))
    events = list(session.scalars(select(AccessEvent).where(AccessEvent.student_id == student.id)
                                  .order_by(AccessEvent.at, AccessEvent.id)))
    disclosures = list(session.scalars(select(Disclosure).where(Disclosure.student_id == student.id)
                                       .order_by(Disclosure.at, Disclosure.id)))
    accounts = session.execute(select(Person, Platform.name).join(StudentLink, StudentLink.person_id == Person.id)
                               .join(Platform, Platform.id == Person.platform_id)
                               .where(StudentLink.student_id == student.id).order_by(Person.id)).all()
    names = _names(session, {p.case_manager_id for p in plans} | {v.created_by_id for v in versions}
                   | {v.activated_by_id for v in versions} | {n.author_id for n in shown}
                   | {r.edited_by_id for rs in revisions.values() for r in rs}
                   | {a.staff_person_id for a, *_ in acks} | {q.asked_by_id for q in questions}
                   | {q.answered_by_id for q in questions} | {e.actor_id for e in events}
                   | {d.disclosed_by_id for d in disclosures} | {viewer.person_id})
    course_titles = dict(session.execute(select(Course.id, Course.title).where(
        Course.id.in_({n.course_id for n in shown if n.course_id} | {q.course_id for q in questions if q.course_id}
                      or {-1}))).all())

    def who(pid: int | None) -> str | None:
        return names.get(pid) if pid else None

    omitted: dict[str, int] = {}
    for n in notes:
        if n.visibility not in tiers:
            omitted[n.visibility] = omitted.get(n.visibility, 0) + 1
    return {
        "format": FORMAT,
        "exported_at": _iso(dt.datetime.now(dt.UTC).replace(microsecond=0)),
        "exported_by": {"id": viewer.person_id, "name": who(viewer.person_id)},
        "exporter_basis": decision.basis,
        "note_tiers_included": sorted(tiers),
        "notes_not_included": omitted,
        "student": {
            "id": student.id, "sis_id": student.sis_id, "given_name": student.given_name,
            "family_name": student.family_name, "preferred_name": student.preferred_name,
            "date_of_birth": _iso(student.date_of_birth), "grade": student.grade, "school": student.school,
            "departed_on": _iso(student.departed_on), "record_created_at": _iso(student.created_at),
            "purged_at": _iso(student.purged_at),
        },
        "lms_accounts": [{"platform": plat, "name": p.display_name, "email": p.email, "sis_id": p.sis_id,
                          "lms_user_id": p.lms_user_id} for p, plat in accounts],
        "plans": [{
            "id": p.id, "plan_type": p.plan_type, "status": p.status, "case_manager": who(p.case_manager_id),
            "effective_on": _iso(p.effective_on), "end_on": _iso(p.end_on),
            "annual_review_due": _iso(p.annual_review_due), "reevaluation_due": _iso(p.reevaluation_due),
            "dates": _plan_dates(p),
            "versions": [{
                "version_no": v.version_no, "status": v.status, "summary": v.summary, "created_at": _iso(v.created_at),
                "created_by": who(v.created_by_id), "activated_at": _iso(v.activated_at),
                "activated_by": who(v.activated_by_id),
                "accommodations": [{
                    "category": a.category, "text": a.text, "applies_to": a.applies_to, "subjects": list(a.subjects or []),
                    "time_multiplier": _iso(a.time_multiplier), "extra_attempts": a.extra_attempts,
                    "catalogue_code": a.catalogue_code} for a in accommodations.get(v.id, [])],
                "applied_in_lms": v.lms_rule.rule.describe() if v.lms_rule is not None else None,  # type: ignore[attr-defined]
            } for v in versions if v.plan_id == p.id],
        } for p in plans],
        "acknowledgements": [{"teacher": who(a.staff_person_id), "plan_type": ptype, "plan_version": vno,
                              "course": title, "section": sname, "acknowledged_at": _iso(a.acknowledged_at)}
                             for a, vno, ptype, title, sname in acks],
        "notes": [{
            "id": n.id, "type": n.note_type, "recorded_on": _iso(n.recorded_on), "visibility": n.visibility,
            "author": who(n.author_id), "course": course_titles.get(n.course_id or -1),
            "text": _decrypt(n.body_encrypted), "retracted_at": _iso(n.retracted_at),
            "revisions": [{"revision_no": r.revision_no, "edited_at": _iso(r.edited_at), "edited_by": who(r.edited_by_id),
                           "type": r.note_type, "visibility": r.visibility, "recorded_on": _iso(r.recorded_on),
                           "text": _decrypt(r.body_encrypted)} for r in revisions.get(n.id, [])],
        } for n in shown],
        "questions": [{"asked_by": who(q.asked_by_id), "asked_at": _iso(q.created_at),
                       "course": course_titles.get(q.course_id or -1), "question": _decrypt(q.body_encrypted),
                       "status": q.status, "answer": _decrypt(q.answer_encrypted), "answered_by": who(q.answered_by_id),
                       "answered_at": _iso(q.answered_at)} for q in questions],
        "deadlines": _deadlines(session, student, plans, clock.today()),
        "deadline_timeliness": _timeliness(session, plans),
        "services": _services(session, student.id, clock.today()),
        "casework": _casework(session, student.id, tiers),
        "access_log": [{"at": _iso(e.at), "who": who(e.actor_id), "action": e.action, "allowed": e.allowed,
                        "basis": e.basis, "context": e.context} for e in events],
        "disclosures": [{"at": _iso(d.at), "by": who(d.disclosed_by_id), "recipient": d.recipient,
                         "purpose": d.purpose, "legal_basis": d.legal_basis, "records": d.records} for d in disclosures],
        "lms_ledger": _lms_ledger(session, student.id),
    }


def _lms_ledger(session: Session, student_id: int) -> list[dict[str, Any]]:
    """Every change Caseload made, declined or could not make in an LMS for the student (issue #12), oldest first."""
    from lti_app.models import LmsActionLedger

    rows = session.scalars(select(LmsActionLedger).where(LmsActionLedger.student_id == student_id)
                           .order_by(LmsActionLedger.id))
    return [{"at": _iso(r.at), "lms_course_id": r.lms_course_id, "quiz": r.quiz_title, "lms_quiz_id": r.lms_quiz_id,
             "lms_user_id": r.lms_user_id, "field": r.field, "before": (r.before or {}).get("value"),
             "after": (r.after or {}).get("value"), "outcome": r.outcome, "reason": r.reason,
             "plan_version_id": r.plan_version_id, "event": r.event, "lms_status": r.lms_status,
             "lms_answer": r.lms_answer} for r in rows]


def describe(record: dict[str, Any]) -> str:
    """What a copy contained, in one line, for the record of disclosures."""
    versions = sum(len(p["versions"]) for p in record["plans"])
    accommodations = sum(len(v["accommodations"]) for p in record["plans"] for v in p["versions"])
    parts = [f"support record; {len(record['plans'])} plan(s), {versions} version(s), {accommodations} accommodation(s)",
             f"{len(record['acknowledgements'])} acknowledgement(s)",
             f"{len(record['notes'])} note(s) ({', '.join(record['note_tiers_included']) or 'none'})",
             f"{len(record['questions'])} question(s)",
             f"{len(record.get('deadlines', []))} deadline(s)",
             f"{len(record.get('services', []))} service(s) with their minutes ledger"]
    if record["casework"]:
        parts.append("casework: " + ", ".join(f"{len(rows)} {name}" for name, rows in sorted(record["casework"].items())))
    parts.append(f"access log ({len(record['access_log'])} entries) and record of disclosures")
    return "; ".join(parts)


def export_form_decision(session: Session, viewer: Viewer, student_id: int) -> tuple[Student, Decision, bool]:
    """For the export form: a logged view of the record, and whether this viewer may export it."""
    decision = access.authorize(session, viewer, student_id, Action.VIEW_RECORD, "export form")
    may_export = access.decide(access.actor_facts(session, viewer), access.student_facts(session, student_id),
                               Action.EXPORT)
    student = session.get(Student, student_id)
    assert student is not None
    return student, decision, may_export.allowed


def export_student(session: Session, viewer: Viewer, student_id: int, request: ExportRequest) -> ExportResult:
    """Validate the request, authorize and log the export (and restricted notes separately), build the record,
    write the disclosure when the copy leaves the school, and commit."""
    request = request.validate()
    where = f"export ({request.fmt})" + (", copy leaves the school" if request.leaves_school else "")
    decision = access.authorize(session, viewer, student_id, Action.EXPORT, where)
    if request.include_restricted:
        restricted = access.check(session, viewer, student_id, Action.VIEW_RESTRICTED, "export: restricted notes")
        if not restricted.allowed:
            session.commit()
            raise ExportInvalid("Restricted notes can only be exported by staff allowed to see restricted notes.")
    student = session.get(Student, student_id)
    assert student is not None
    record = build_record(session, viewer, student, decision, request.include_restricted)
    disclosure_id = None
    if request.leaves_school:
        disclosure = Disclosure(student_id=student_id, disclosed_by_id=viewer.person_id, recipient=request.recipient,
                                purpose=request.purpose, legal_basis=LEGAL_BASES[request.legal_basis],
                                records=describe(record))
        session.add(disclosure)
        session.flush()
        disclosure_id = disclosure.id
        record["disclosure"] = {"id": disclosure.id, "recipient": disclosure.recipient, "purpose": disclosure.purpose,
                                "legal_basis": disclosure.legal_basis}
    session.commit()
    log.info("record exported student=%s actor=%s format=%s disclosure=%s", student_id, viewer.person_id, request.fmt,
             disclosure_id)
    return ExportResult(record, disclosure_id)


@dataclass(frozen=True)
class DisclosureRow:
    id: int
    at: dt.datetime
    student_id: int | None
    student: str | None
    by: str | None
    recipient: str
    purpose: str
    legal_basis: str
    records: str


def list_disclosures(session: Session, limit: int = 200, offset: int = 0) -> tuple[list[DisclosureRow], int]:
    """The district's record of disclosures (FERPA 34 CFR 99.32), newest first, with the total."""
    from sqlalchemy import func

    total = session.scalar(select(func.count(Disclosure.id))) or 0
    rows = session.execute(select(Disclosure, Student, Person.name).outerjoin(Student, Student.id == Disclosure.student_id)
                           .outerjoin(Person, Person.id == Disclosure.disclosed_by_id)
                           .order_by(Disclosure.at.desc(), Disclosure.id.desc()).limit(limit).offset(offset)).all()
    return [DisclosureRow(d.id, d.at, d.student_id, s.display_name if s else None, by, d.recipient, d.purpose,
                          d.legal_basis, d.records) for d, s, by in rows], int(total)

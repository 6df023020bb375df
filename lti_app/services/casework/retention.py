"""Retention: purge the detail of a departed student's record once it is no longer needed, keep the permanent
subset.

IDEA 34 CFR 300.624 has the district tell parents when records are no longer needed and destroy them at their
request, while "a permanent record of a student's name, address, and phone number, his or her grades, attendance
record, classes attended, grade level completed, and year completed may be maintained without time limitation";
state schedules typically keep special-education records a number of years after the student leaves. Caseload
uses ``Student.departed_on`` plus ``CASELOAD_RETENTION_YEARS`` (default 5) as the cutoff.

Kept (the permanent subset, and the accountability trail):
- the student's identity (name, SIS id, date of birth, grade, school, departure date) and LMS links;
- each plan's type, status and dates, its case manager, and its versions' numbers and activation dates;
- the access log and the record of disclosures (FERPA 34 CFR 99.32 keeps the latter as long as the records).
Purged (deleted): case notes and all their revisions, note drafts, questions and answers, accommodations,
acknowledgements, version summaries (blanked), and every casework row (goals, progress, services and sessions,
contacts, meetings, referrals: any other table holding a ``student_id``, with what hangs from it by cascade).
Active plans of a purged student are ended on their departure date. ``Student.purged_at`` marks the record, an
``AdminEvent`` logs the purge with its counts, and a purged student is not purged (or imported) again.

Records must not be destroyed while a parent's request to inspect them is outstanding (FERPA 34 CFR 99.10(e)):
check the disclosure ledger and pending requests before applying.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.db import Base, utcnow
from lti_app.domain.vocab import AdminAction, PlanStatus
from lti_app.models import Accommodation, Plan, PlanVersion, Student
from lti_app.services.access.audit_log import record_admin

log = logging.getLogger(__name__)

LABELS = {"case_notes": "notes", "case_note_revisions": "note revisions", "note_drafts": "note drafts",
          "questions": "questions", "acknowledgements": "acknowledgements", "accommodations": "accommodations"}
"""Words for the counts on the retention page; other (casework) tables show their table name."""
KEPT_TABLES = frozenset({"students", "student_links", "plans", "access_events", "disclosures"})
"""Tables with a ``student_id`` that retention keeps; every other such table is purged."""


def cutoff(today: dt.date, years: int) -> dt.date:
    """Students who departed before this day are due (``years`` after departure, 29 Feb -> 28 Feb)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def purged_tables() -> list[Table]:
    """Every table holding a student's detail, found from the schema so new tables (casework) are covered."""
    return [t for t in Base.metadata.sorted_tables
            if "student_id" in t.c and t.name not in KEPT_TABLES
            and any(fk.column.table.name == "students" for fk in t.c.student_id.foreign_keys)]


def dependent_tables() -> list[tuple[Table, list[tuple[Column[Any], Column[Any]]]]]:
    """Tables whose rows hang from a purged table by a foreign key (note revisions under notes; progress points
    under goals): (table, [(its column, the referenced column)]). They are deleted explicitly, child first, so the
    purge does not depend on each migration having declared ON DELETE CASCADE."""
    targets = {t.name for t in purged_tables()}
    out: list[tuple[Table, list[tuple[Column[Any], Column[Any]]]]] = []
    for table in Base.metadata.sorted_tables:  # parents before children
        if table.name in targets or table.name in KEPT_TABLES:
            continue
        links = [(fk.parent, fk.column) for fk in table.foreign_keys if fk.column.table.name in targets]
        if links:
            out.append((table, links))
            targets.add(table.name)
    return out


def _belonging(student_ids: Sequence[int]) -> list[tuple[Table, ColumnElement[bool]]]:
    """(table, condition selecting the rows of these students) for every purged table, parents first."""
    conditions: dict[str, ColumnElement[bool]] = {}
    out = []
    for table in purged_tables():
        conditions[table.name] = table.c.student_id.in_(list(student_ids))
        out.append((table, conditions[table.name]))
    for table, links in dependent_tables():
        conditions[table.name] = or_(*(col.in_(select(ref).where(conditions[ref.table.name])) for col, ref in links))
        out.append((table, conditions[table.name]))
    return out


@dataclass
class Candidate:
    student_id: int
    name: str
    sis_id: str | None
    departed_on: dt.date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class PurgeResult:
    before: dt.date
    dry_run: bool
    candidates: list[Candidate]
    totals: dict[str, int]
    applied: bool = False


def _chunks(ids: list[int], size: int = 1000) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def due_count(session: Session, before: dt.date) -> int:
    """How many records are due (for the admin overview), without counting their contents."""
    return session.scalar(select(func.count(Student.id)).where(
        Student.departed_on.is_not(None), Student.departed_on < before, Student.purged_at.is_(None))) or 0


def candidates(session: Session, before: dt.date) -> list[Candidate]:
    """Departed before ``before`` and not purged yet, with what would be removed from each record."""
    found = [Candidate(s.id, s.display_name, s.sis_id, s.departed_on) for s in session.scalars(
        select(Student).where(Student.departed_on.is_not(None), Student.departed_on < before,
                              Student.purged_at.is_(None)).order_by(Student.departed_on, Student.id))
        if s.departed_on is not None]
    by_id = {c.student_id: c for c in found}
    for chunk in _chunks(list(by_id)):
        for table in purged_tables():
            for sid, n in session.execute(select(table.c.student_id, func.count()).where(table.c.student_id.in_(chunk))
                                          .group_by(table.c.student_id)):
                by_id[sid].counts[table.name] = int(n)
        for sid in chunk:
            for table, belongs in _belonging([sid])[len(purged_tables()):]:
                n = session.scalar(select(func.count()).select_from(table).where(belongs)) or 0
                by_id[sid].counts[table.name] = int(n)
        for sid, n in session.execute(
                select(Plan.student_id, func.count(Accommodation.id)).join(PlanVersion, PlanVersion.plan_id == Plan.id)
                .join(Accommodation, Accommodation.plan_version_id == PlanVersion.id)
                .where(Plan.student_id.in_(chunk)).group_by(Plan.student_id)):
            by_id[sid].counts["accommodations"] = int(n)
    for c in found:
        c.counts = {k: v for k, v in sorted(c.counts.items()) if v}
    return found


def run(session: Session, before: dt.date, *, dry_run: bool = True, actor_id: int | None = None,
        via: str = "cli") -> PurgeResult:
    """List (dry run) or purge every record due before ``before``, in one transaction, committed and logged."""
    if before > clock.today() + dt.timedelta(days=1):
        raise ValueError("The cutoff date is in the future: only students who have already left can be purged.")
    found = candidates(session, before)
    totals: dict[str, int] = {}
    for c in found:
        for k, v in c.counts.items():
            totals[k] = totals.get(k, 0) + v
    result = PurgeResult(before, dry_run, found, dict(sorted(totals.items())))
    if dry_run or not found:
        session.rollback()
        return result
    now = utcnow()
    for chunk in _chunks([c.student_id for c in found]):
        version_ids = select(PlanVersion.id).join(Plan, Plan.id == PlanVersion.plan_id).where(Plan.student_id.in_(chunk))
        session.execute(delete(Accommodation).where(Accommodation.plan_version_id.in_(version_ids)),
                        execution_options={"synchronize_session": False})
        session.execute(update(PlanVersion).where(PlanVersion.id.in_(version_ids)).values(summary=""),
                        execution_options={"synchronize_session": False})
        for table, belongs in reversed(_belonging(chunk)):
            session.execute(delete(table).where(belongs))
        for c in found:
            if c.student_id in chunk:
                session.execute(update(Plan).where(Plan.student_id == c.student_id,
                                                   Plan.status != PlanStatus.ENDED.value)
                                .values(status=PlanStatus.ENDED.value, end_on=func.coalesce(Plan.end_on, c.departed_on)),
                                execution_options={"synchronize_session": False})
        session.execute(update(Student).where(Student.id.in_(chunk)).values(purged_at=now),
                        execution_options={"synchronize_session": False})
    record_admin(session, actor_id, via, AdminAction.RETENTION_PURGE.value, target_type="students",
                 summary=f"Retention purge of {len(found)} departed student record(s) (departed before {before})",
                 details={"before": before.isoformat(), "student_ids": [c.student_id for c in found], **result.totals})
    session.commit()
    result.applied = True
    log.info("retention purge before=%s students=%d rows=%s", before, len(found), result.totals)
    return result

"""Daily deadline reminders: once per district day (from ``CASELOAD_ALERTS_DAILY_HOUR``), each case manager gets
one alert listing what is overdue and what is due within each of ``CASELOAD_REMINDER_WINDOWS_DAYS``, computed by
the same rules as the deadlines page (``domain/deadlines``: IDEA 34 CFR 300.301(c), 300.320(a)(3), 300.324(b),
300.303; Section 504 review), in district time."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.domain import alerts as rules
from lti_app.domain.deadlines import KIND_LABELS
from lti_app.models import Plan, Student
from lti_app.services.alerts.detect import NewAlert
from lti_app.services.casework import deadlines


def deadline_reminders(session: Session, today: dt.date, windows: list[int]) -> list[NewAlert]:
    """One reminder per case manager with something overdue or due within the largest window."""
    rows = session.execute(
        select(Plan, Student).join(Student, Student.id == Plan.student_id)
        .where(Plan.case_manager_id.is_not(None), Plan.status.in_(deadlines.OPEN_PLAN_STATUSES),
               Student.purged_at.is_(None))).all()
    manager_of = {p.id: int(p.case_manager_id) for p, _ in rows if p.case_manager_id is not None}
    items: dict[int, list[rules.DueItem]] = defaultdict(list)
    for d in deadlines.for_rows(session, [(p, s) for p, s in rows], today):
        if not d.is_open:
            continue
        label = f"{KIND_LABELS.get(d.kind, d.kind)} ({d.plan_type})"
        items[manager_of[d.plan_id]].append(rules.DueItem(d.student_id, d.student_name, label, d.due_on))
    out: list[NewAlert] = []
    for manager_id, due in sorted(items.items()):
        summary = rules.summarize(due, today, windows)
        if summary.empty:
            continue
        out.append(NewAlert(manager_id, rules.AlertKind.DEADLINE.value, f"deadline:{today.isoformat()}",
                            summary.title()[:500], [[text, sid] for text, sid in summary.lines()]))
    return out

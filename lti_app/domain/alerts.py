"""Pure rules for alerts: which roster differences are schedule changes, what a deadline reminder says, when a
daily digest is due, and what an alert e-mail may contain. No Flask, no SQL: the alerts job loads the facts.

Why a snapshot diff: districts lose accommodations exactly at schedule changes (a student moved into a section
whose teacher was never told). Every roster source — Canvas Live Events, the Moodle plugin, NRPS, OneRoster,
a launch — ends as rows in ``enrollments``; comparing each plan student's placements with the placements the
job saw last time finds a change whichever source made it, and a change reported by two sources is still one
difference. A rerun finds no difference, so it alerts nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from lti_app.domain.dates import shown_day


class AlertKind(StrEnum):
    SCHEDULE_CHANGE = "schedule_change"
    DEADLINE = "deadline"
    QUESTION_ANSWERED = "question_answered"
    LMS_GAP = "lms_gap"


KIND_LABELS = {AlertKind.SCHEDULE_CHANGE: "Schedule changes", AlertKind.DEADLINE: "Deadline reminders",
               AlertKind.QUESTION_ANSWERED: "Answers to my questions", AlertKind.LMS_GAP: "LMS gaps"}
CHOOSABLE_KINDS = (AlertKind.SCHEDULE_CHANGE, AlertKind.DEADLINE, AlertKind.QUESTION_ANSWERED)
"""The kinds a person sets a channel for (``lms_gap`` is DESIGN's next kind and has no producer yet)."""


class Channel(StrEnum):
    EMAIL = "email"
    """In the inbox, and by e-mail when the district has SMTP and the person has an address."""
    INBOX = "inbox"
    OFF = "off"


class EmailMode(StrEnum):
    IMMEDIATE = "immediate"
    """One message per run of the job that found something for the person (a burst is still one message)."""
    DAILY = "daily"


# --- schedule changes ------------------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Placement:
    """A student's place in a section: ``course_wide`` when the LMS did not say which section (Moodle, NRPS)."""

    course_id: int
    section_id: int
    course_wide: bool = False


def effective(placements: Iterable[Placement]) -> dict[int, frozenset[Placement]]:
    """Per course, the sections that say where the student is: the specific ones if there are any, else the
    course-wide one. NRPS adding a course-wide row beside a Canvas section row is not a second class."""
    by_course: dict[int, set[Placement]] = {}
    for p in placements:
        by_course.setdefault(p.course_id, set()).add(p)
    out: dict[int, frozenset[Placement]] = {}
    for course_id, items in by_course.items():
        specific = {p for p in items if not p.course_wide}
        out[course_id] = frozenset(specific or items)
    return out


@dataclass(frozen=True)
class PlacementDiff:
    joined: list[Placement] = field(default_factory=list)
    left: list[Placement] = field(default_factory=list)
    refined_in: list[Placement] = field(default_factory=list)
    """Recorded silently: the same class, now with its section known (or only course-wide again)."""
    refined_out: list[Placement] = field(default_factory=list)


def diff(old: Mapping[int, frozenset[Placement]], new: Mapping[int, frozenset[Placement]]) -> PlacementDiff:
    """What changed between two effective placement maps. Joining or leaving a course is a change; moving between
    specific sections of a course is a change (a new teacher); learning the section of a course the student was
    already in, or losing it while still in the course, is not (every teacher of the course already saw them)."""
    result = PlacementDiff()
    for course_id in sorted(set(old) | set(new)):
        before, after = old.get(course_id, frozenset()), new.get(course_id, frozenset())
        if before == after:
            continue
        added, removed = sorted(after - before), sorted(before - after)
        if not before:
            result.joined.extend(added)
        elif not after:
            result.left.extend(removed)
        elif all(p.course_wide for p in before) or all(p.course_wide for p in after):
            result.refined_in.extend(added)
            result.refined_out.extend(removed)
        else:
            result.joined.extend(added)
            result.left.extend(removed)
    return result


def place_name(course_title: str, section_name: str, course_wide: bool) -> str:
    """"Biology — Period 3"; a section already named after its course is not repeated; course-wide: the course."""
    if course_wide or not section_name:
        return course_title
    if section_name.startswith(course_title):
        return section_name
    return f"{course_title} — {section_name}"


def acknowledgement_line(pending: Sequence[str], done: Sequence[str]) -> str:
    """Who still has to acknowledge the student's accommodations in the new section (IDEA 34 CFR 300.323(d))."""
    if not pending and not done:
        return "No teacher is enrolled in this section yet."
    if not pending:
        return f"Acknowledged by {_join(done)}."
    verb = "has" if len(pending) == 1 else "have"
    return f"{_join(pending)} {verb} not acknowledged yet."


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- deadline reminders ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DueItem:
    student_id: int
    student_name: str
    label: str
    """"annual review (IEP)": the deadline's name, nothing from the plan's content."""
    due_on: dt.date


@dataclass(frozen=True)
class ReminderSummary:
    overdue: list[DueItem]
    within: dict[int, list[DueItem]]
    """window (days) -> items due within it and not within a smaller window."""

    @property
    def empty(self) -> bool:
        return not self.overdue and not any(self.within.values())

    def title(self) -> str:
        parts = [f"{len(self.overdue)} overdue"] if self.overdue else []
        previous = 0
        for window, items in self.within.items():
            if items:
                parts.append(f"{len(items)} due within {window} days" if not previous
                             else f"{len(items)} more within {window} days")
            previous = window
        return "Deadlines: " + " · ".join(parts)

    def lines(self) -> list[tuple[str, int]]:
        out = [(f"Overdue: {i.student_name} — {i.label}, due {fmt_day(i.due_on)}", i.student_id) for i in self.overdue]
        for window, items in self.within.items():
            out += [(f"Within {window} days: {i.student_name} — {i.label}, due {fmt_day(i.due_on)}", i.student_id)
                    for i in items]
        return out


def summarize(items: Iterable[DueItem], today: dt.date, windows: Sequence[int]) -> ReminderSummary:
    """Overdue items, and the rest in the smallest window (days from today) that holds them."""
    ordered = sorted(windows)
    overdue: list[DueItem] = []
    within: dict[int, list[DueItem]] = {w: [] for w in ordered}
    for item in sorted(items, key=lambda i: (i.due_on, i.student_name)):
        days = (item.due_on - today).days
        if days < 0:
            overdue.append(item)
            continue
        window = next((w for w in ordered if days <= w), None)
        if window is not None:
            within[window].append(item)
    return ReminderSummary(overdue, within)


def fmt_day(day: dt.date) -> str:
    """A date in an alert, worded as the pages show it."""
    return shown_day(day)


# --- delivery --------------------------------------------------------------------------------------------------

def daily_digest_due(local_now: dt.datetime, hour: int, last_digest_on: dt.date | None) -> bool:
    """A daily digest goes once per district day, from ``hour`` on (a job that ran late still sends today's)."""
    return local_now.hour >= hour and last_digest_on != local_now.date()


def reminders_due(local_now: dt.datetime, hour: int, made_on: dt.date | None) -> bool:
    return local_now.hour >= hour and made_on != local_now.date()


@dataclass(frozen=True)
class DigestItem:
    kind: str
    title: str
    lines: tuple[str, ...] = ()


MAX_EMAIL_ITEMS = 100
"""A term start can bring hundreds of changes for one case manager: the e-mail lists the first 100, the inbox all."""


def email_text(person_name: str, items: Sequence[DigestItem], inbox_url: str,
               unsubscribe_urls: Mapping[str, str]) -> tuple[str, str]:
    """Subject and plain-text body of one alert e-mail. Only the names of the changes and a link: no note text
    and no accommodation detail ever leave Caseload by e-mail (e-mail is neither encrypted at rest nor logged
    in the access log); the person reads the detail inside the LMS."""
    count = len(items)
    subject = f"Caseload: {items[0].title}" if count == 1 else f"Caseload: {count} alerts"
    if len(subject) > 150:
        subject = subject[:149] + "…"
    body = [f"Hello {person_name}," if person_name else "Hello,", ""]
    body.append("Caseload has something for you:" if count == 1 else f"Caseload has {count} alerts for you:")
    body.append("")
    for item in items[:MAX_EMAIL_ITEMS]:
        body.append(f"* {item.title}")
        body.extend(f"    {line}" for line in item.lines)
    if count > MAX_EMAIL_ITEMS:
        body.append(f"* … and {count - MAX_EMAIL_ITEMS} more in your Caseload inbox")
    body += ["", "Open Caseload from your LMS to see the detail (it is in your Caseload inbox):", inbox_url, ""]
    if unsubscribe_urls:
        body.append("Stop these e-mails (you will still see them in the inbox):")
        for kind, url in unsubscribe_urls.items():
            body.append(f"  {KIND_LABELS.get(AlertKind(kind), kind)}: {url}")
    return subject, "\n".join(body) + "\n"

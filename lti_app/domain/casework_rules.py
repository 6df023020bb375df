"""Validation of casework forms, as pure functions: every problem of a form is collected and reported at once, in
words a case manager understands, before anything is written (the service writes only a fully valid form).

Each ``*_input`` function takes the submitted fields (strings) and returns a frozen dataclass of typed values, or
raises ``CaseworkInvalid`` with the list of ``(field, message)`` problems."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lti_app.domain.dates import shown_day
from lti_app.domain.service_minutes import SESSION_KINDS
from lti_app.domain.vocab import (
    Attendance,
    ContactDirection,
    ContactMethod,
    MeetingStatus,
    MeetingType,
    ReferralStatus,
    ReferralType,
    ServicePeriod,
    ServiceType,
)

MAX_TEXT = 10_000
MAX_SESSION_MINUTES = 480
"""A single session longer than a school day is a typing error."""
MAX_MINUTES = {"week": 1_800, "month": 7_200}
"""30 hours a week, 120 hours a month: above that the figure is not a related-service requirement."""
REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "declined", "done"}),
    "accepted": frozenset({"done", "declined"}),
    "declined": frozenset(),
    "done": frozenset(),
}
"""Declined and done are final: a new need is a new referral (the history stays readable)."""


class CaseworkInvalid(ValueError):
    """The form has problems; ``problems`` lists (field, message) in form order."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems

    @property
    def messages(self) -> list[str]:
        return [m for _, m in self.problems]


def has_control_characters(value: str) -> bool:
    """C0 control characters other than tab, line feed and carriage return, DEL and C1 controls: PostgreSQL cannot
    store NUL in text at all, and the others are invisible on a page (never typed, only pasted or forged)."""
    return _CONTROL.search(value) is not None


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""What ``has_control_characters`` looks for, as one compiled class (a launch's id_token is read on every request,
so a character-by-character loop cost about a fifth of a complete launch)."""


class _Form:
    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.problems: list[tuple[str, str]] = []

    def raw(self, name: str) -> str:
        return (self.data.get(name) or "").strip()

    def fail(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    def date(self, name: str, label: str, *, required: bool = True, not_after: dt.date | None = None) -> dt.date | None:
        value = self.raw(name)
        if not value:
            if required:
                self.fail(name, f"Enter the {label}.")
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            self.fail(name, f"Enter the {label} as YYYY-MM-DD.")
            return None
        if day.year < 2000:
            self.fail(name, f"The {label} ({shown_day(day)}) is too far in the past.")
            return None
        if not_after is not None and day > not_after:
            self.fail(name, f"The {label} cannot be in the future.")
            return None
        return day

    def choice(self, name: str, label: str, choices: Iterable[str], default: str = "") -> str:
        value = self.raw(name) or default
        if value not in set(choices):
            self.fail(name, f"Choose the {label}.")
        return value

    def text(self, name: str, label: str, *, required: bool, limit: int = MAX_TEXT) -> str:
        value = (self.data.get(name) or "").strip()
        if required and not value:
            self.fail(name, f"Write the {label}.")
        elif has_control_characters(value):
            self.fail(name, f"The {label} contains a control character (such as NUL) that cannot be stored; "
                            "retype it rather than pasting it.")
        elif len(value) > limit:
            self.fail(name, f"The {label} is limited to {limit:,} characters; this one has {len(value):,}.")
        return value

    def integer(self, name: str, label: str, lo: int, hi: int) -> int:
        value = self.raw(name)
        try:
            number = int(value)
        except ValueError:
            self.fail(name, f"Enter the {label} as a whole number of minutes.")
            return 0
        if number < lo:
            self.fail(name, f"The {label} must be at least {lo}.")
        elif number > hi:
            self.fail(name, f"The {label} ({number:,}) is more than {hi:,}: check the figure.")
        return number

    def done(self) -> None:
        if self.problems:
            raise CaseworkInvalid(self.problems)


@dataclass(frozen=True)
class RequirementInput:
    service_type: str
    minutes: int
    period: str
    provider_id: int | None
    provider_name: str
    setting: str
    starts_on: dt.date
    ends_on: dt.date | None
    plan_id: int | None


def _optional_id(form: _Form, name: str, label: str) -> int | None:
    value = form.raw(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        form.fail(name, f"Choose the {label} from the list.")
        return None


def requirement_input(data: Mapping[str, str]) -> RequirementInput:
    form = _Form(data)
    service_type = form.choice("service_type", "service", [t.value for t in ServiceType])
    period = form.choice("period", "period (per week or per month)", [p.value for p in ServicePeriod])
    minutes = form.integer("minutes", "minutes required", 1, MAX_MINUTES.get(period, MAX_MINUTES["month"]))
    provider_id = _optional_id(form, "provider_id", "provider")
    provider_name = form.text("provider_name", "provider's name", required=False, limit=255)
    if provider_id is None and not provider_name:
        form.fail("provider_id", "Choose the provider, or write the name of a provider outside Caseload.")
    setting = form.text("setting", "setting", required=False, limit=100)
    starts_on = form.date("starts_on", "start date")
    ends_on = form.date("ends_on", "end date", required=False)
    if starts_on and ends_on and ends_on < starts_on:
        form.fail("ends_on", f"The end date ({shown_day(ends_on)}) is before the start date ({shown_day(starts_on)}).")
    plan_id = _optional_id(form, "plan_id", "plan")
    form.done()
    assert starts_on is not None
    return RequirementInput(service_type, minutes, period, provider_id, provider_name, setting, starts_on, ends_on,
                            plan_id)


@dataclass(frozen=True)
class SessionInput:
    held_on: dt.date
    minutes: int
    attendance: str
    note: str
    kind: str = "session"
    """session | make_up (a make-up pays down minutes owed; ``domain/service_minutes``)."""


def session_input(data: Mapping[str, str], today: dt.date, starts_on: dt.date, ends_on: dt.date | None) -> SessionInput:
    form = _Form(data)
    held_on = form.date("held_on", "session date", not_after=today)
    if held_on and held_on < starts_on:
        form.fail("held_on", f"The session ({shown_day(held_on)}) is before the service starts "
                             f"({shown_day(starts_on)}).")
    if held_on and ends_on and held_on > ends_on:
        form.fail("held_on", f"The session ({shown_day(held_on)}) is after the service ended ({shown_day(ends_on)}).")
    minutes = form.integer("minutes", "session length", 1, MAX_SESSION_MINUTES)
    attendance = form.choice("attendance", "attendance (delivered, student absent or provider absent)",
                             [a.value for a in Attendance])
    note = form.text("note", "session note", required=False, limit=2_000)
    kind = form.choice("kind", "kind of session (regular or make-up)", SESSION_KINDS, default="session")
    form.done()
    assert held_on is not None
    return SessionInput(held_on, minutes, attendance, note, kind)


MAX_REASON = 500


def change_reason(data: Mapping[str, str], *, removal: bool) -> str:
    """Why a recorded entry (evidence: a data point, a session, a contact, a meeting) is corrected or removed.
    Evidence is never changed or removed without a trace: the reason is required, and a removal must also be
    confirmed (the ``confirm`` box), since the entry then leaves the minutes, the charts and the lists."""
    form = _Form(data)
    reason = form.text("reason", "reason for the " + ("removal" if removal else "correction"), required=True,
                       limit=MAX_REASON)
    if removal and form.raw("confirm") not in ("on", "yes", "1"):
        form.fail("confirm", "Tick the box that confirms the removal (the entry is kept in the history).")
    form.done()
    return reason


@dataclass(frozen=True)
class ContactInput:
    contacted_on: dt.date
    method: str
    direction: str
    contact_with: str
    summary: str
    follow_up_on: dt.date | None


def contact_input(data: Mapping[str, str], today: dt.date) -> ContactInput:
    form = _Form(data)
    contacted_on = form.date("contacted_on", "date of the contact", not_after=today)
    method = form.choice("method", "method (phone, email, in person...)", [m.value for m in ContactMethod])
    direction = form.choice("direction", "direction (the guardian or the school reached out)",
                            [d.value for d in ContactDirection])
    contact_with = form.text("contact_with", "person contacted", required=False, limit=255)
    summary = form.text("summary", "summary", required=True)
    follow_up_on = form.date("follow_up_on", "follow-up date", required=False)
    if contacted_on and follow_up_on and follow_up_on < contacted_on:
        form.fail("follow_up_on", f"The follow-up date ({shown_day(follow_up_on)}) is before the contact "
                                  f"({shown_day(contacted_on)}).")
    form.done()
    assert contacted_on is not None
    return ContactInput(contacted_on, method, direction, contact_with, summary, follow_up_on)


@dataclass(frozen=True)
class MeetingInput:
    meeting_type: str
    meets_on: dt.date
    participants: str
    notice_sent_on: dt.date | None
    status: str
    outcome: str


def meeting_input(data: Mapping[str, str], today: dt.date) -> MeetingInput:
    form = _Form(data)
    meeting_type = form.choice("meeting_type", "type of meeting", [t.value for t in MeetingType])
    meets_on = form.date("meets_on", "meeting date")
    participants = form.text("participants", "participants", required=True, limit=2_000)
    notice_sent_on = form.date("notice_sent_on", "date the notice was sent", required=False, not_after=today)
    status = form.choice("status", "status", [s.value for s in MeetingStatus], default="scheduled")
    outcome = form.text("outcome", "outcome", required=False)
    if meets_on and notice_sent_on and notice_sent_on > meets_on:
        form.fail("notice_sent_on", f"The notice ({shown_day(notice_sent_on)}) was sent after the meeting "
                                    f"({shown_day(meets_on)}): the notice comes first.")
    if meets_on and status == "held" and meets_on > today:
        form.fail("status", "A meeting in the future cannot be held yet: keep it scheduled.")
    if outcome and status == "scheduled":
        form.fail("outcome", "The outcome is recorded once the meeting is held (or cancelled).")
    form.done()
    assert meets_on is not None
    return MeetingInput(meeting_type, meets_on, participants, notice_sent_on, status, outcome)


@dataclass(frozen=True)
class ReferralInput:
    referral_type: str
    referred_to: str
    reason: str
    referred_on: dt.date


def referral_input(data: Mapping[str, str], today: dt.date) -> ReferralInput:
    form = _Form(data)
    referral_type = form.choice("referral_type", "kind of referral", [t.value for t in ReferralType])
    referred_to = form.text("referred_to", "name of who the student is referred to", required=True, limit=255)
    reason = form.text("reason", "reason", required=True)
    referred_on = form.date("referred_on", "referral date", not_after=today)
    form.done()
    assert referred_on is not None
    return ReferralInput(referral_type, referred_to, reason, referred_on)


def referral_change(current: str, data: Mapping[str, str]) -> tuple[str, str]:
    """(new status, note) for a status change, refusing changes the referral's states do not allow."""
    form = _Form(data)
    status = form.choice("status", "new status", [s.value for s in ReferralStatus])
    note = form.text("note", "note", required=False, limit=2_000)
    if not form.problems and status not in REFERRAL_TRANSITIONS.get(current, frozenset()):
        if status == current:
            form.fail("status", f"The referral is already {current}.")
        else:
            form.fail("status", f"A referral that is {current} cannot become {status}"
                                + (" (it is closed; make a new referral)." if current in ("declined", "done") else "."))
    form.done()
    return status, note


@dataclass(frozen=True)
class CrisisInput:
    occurred_on: dt.date
    visibility: str
    description: str
    actions: str


def crisis_input(data: Mapping[str, str], today: dt.date, may_restrict: bool) -> CrisisInput:
    form = _Form(data)
    occurred_on = form.date("occurred_on", "date of the event", not_after=today)
    visibility = form.choice("visibility", "who may read it", ["restricted", "case_team"], default="restricted")
    if visibility == "restricted" and not may_restrict:
        form.fail("visibility", "Only staff allowed to see restricted entries can record one as restricted. Choose "
                                "case team, or ask a colleague with restricted access to record it.")
    description = form.text("description", "description of what happened", required=True)
    actions = form.text("actions", "actions taken", required=False)
    form.done()
    assert occurred_on is not None
    return CrisisInput(occurred_on, visibility, description, actions)

"""E-mail delivery of alerts, and each person's choices.

Every alert is in the person's inbox (unless they turned its kind off). E-mail goes only when the district set
``CASELOAD_SMTP_URL``, the person has an address and wants that kind by e-mail; it goes as one message per person
per run (``immediate``) or once a day (``daily``), so a term start with thousands of changes is one message each.
Each alert is claimed (``sending``, committed) before the SMTP conversation and marked ``sent`` after it: a rerun,
or a second worker, never sends it again; a crash in between loses that message rather than repeating it.

Bodies carry the names of the changes and a link only (``domain/alerts.email_text``). Every message has an RFC 8058
one-click unsubscribe (``List-Unsubscribe`` + ``List-Unsubscribe-Post``) for the kinds it contains, and the body a
link per kind; the links are signed with ``CASELOAD_SECRET_KEY``, so nobody can unsubscribe someone else.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from integrations.smtp import MailError, OutgoingMail, send_all
from lti_app import clock
from lti_app.domain import alerts as rules
from lti_app.models import Alert, AlertPreference, Person
from lti_app.settings import Settings

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "caseload.alerts.unsubscribe"
STALE_AFTER = dt.timedelta(days=7)
"""Alerts older than this are not e-mailed any more (e.g. SMTP was configured later): the inbox has them."""

Sender = Callable[[str, str, list[OutgoingMail]], list[tuple[OutgoingMail, str | None]]]


@dataclass(frozen=True)
class Prefs:
    email_mode: str = rules.EmailMode.IMMEDIATE.value
    channels: dict[str, str] = field(default_factory=lambda: {k.value: rules.Channel.EMAIL.value
                                                              for k in rules.CHOOSABLE_KINDS})
    last_digest_on: dt.date | None = None

    def channel(self, kind: str) -> str:
        return self.channels.get(kind, rules.Channel.INBOX.value)


def preferences(session: Session, person_ids: list[int]) -> dict[int, Prefs]:
    out = {pid: Prefs() for pid in person_ids}
    if person_ids:
        for p in session.scalars(select(AlertPreference).where(AlertPreference.person_id.in_(person_ids))):
            out[p.person_id] = _prefs(p)
    return out


def _prefs(p: AlertPreference) -> Prefs:
    return Prefs(p.email_mode, {k.value: getattr(p, k.value) for k in rules.CHOOSABLE_KINDS}, p.last_digest_on)


def preference_row(session: Session, person_id: int) -> AlertPreference:
    row = session.get(AlertPreference, person_id)
    if row is None:
        row = AlertPreference(person_id=person_id, email_mode=rules.EmailMode.IMMEDIATE.value,
                              **{k.value: rules.Channel.EMAIL.value for k in rules.CHOOSABLE_KINDS})
        session.add(row)
    return row


# --- one-click unsubscribe (RFC 8058) ---------------------------------------------------------------------------

def _serializer(settings: Settings | None = None) -> URLSafeSerializer:
    return URLSafeSerializer((settings or current_app.config["CASELOAD"]).secret_key, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(person_id: int, kinds: list[str], settings: Settings | None = None) -> str:
    return str(_serializer(settings).dumps([person_id, sorted(kinds)]))


class UnsubscribeInvalid(ValueError):
    pass


def read_unsubscribe_token(token: str) -> tuple[int, list[str]]:
    try:
        person_id, kinds = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise UnsubscribeInvalid("This unsubscribe link is not valid (it may have been cut short by the mail program). "
                                 "Change what you get by e-mail in Caseload: Alerts → Settings.") from None
    valid = [k for k in kinds if k in {c.value for c in rules.CHOOSABLE_KINDS}]
    if not isinstance(person_id, int) or not valid:
        raise UnsubscribeInvalid("This unsubscribe link is not valid.")
    return person_id, valid


def unsubscribe(session: Session, token: str) -> tuple[int, list[str]]:
    """Stop e-mail of the token's kinds for its person (they stay in the inbox). Idempotent. Caller commits."""
    person_id, kinds = read_unsubscribe_token(token)
    if session.get(Person, person_id) is None:
        raise UnsubscribeInvalid("This unsubscribe link is for a person Caseload no longer knows.")
    row = preference_row(session, person_id)
    for kind in kinds:
        if getattr(row, kind) == rules.Channel.EMAIL.value:
            setattr(row, kind, rules.Channel.INBOX.value)
    log.info("alerts: person %s unsubscribed from e-mail of %s", person_id, ",".join(kinds))
    return person_id, kinds


# --- sending ----------------------------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    sent_messages: int = 0
    sent_alerts: int = 0
    skipped: int = 0
    waiting: int = 0
    error: str | None = None


def default_sender(url: str, sender: str, mails: list[OutgoingMail]) -> list[tuple[OutgoingMail, str | None]]:
    return send_all(url, sender, mails)


def deliver(session: Session, settings: Settings, now: dt.datetime, send: Sender = default_sender) -> DeliveryReport:
    """E-mail what is due. Commits: the claim before sending, the result after."""
    report = DeliveryReport()
    pending = list(session.scalars(select(Alert).where(Alert.email_status == "pending").order_by(Alert.id)))
    if not pending:
        return report
    if not settings.smtp_url:
        _mark(session, [a.id for a in pending], "skipped")
        session.commit()
        report.skipped = len(pending)
        return report
    local_now = clock.local(now)
    by_person: dict[int, list[Alert]] = defaultdict(list)
    for a in pending:
        by_person[a.recipient_id].append(a)
    prefs = preferences(session, sorted(by_person))
    emails = dict(session.execute(select(Person.id, Person.email).where(Person.id.in_(sorted(by_person)))).all())
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(sorted(by_person)))).all())
    skip: list[int] = []
    batches: dict[int, list[Alert]] = {}
    for person_id, alerts in by_person.items():
        pref = prefs[person_id]
        address = (emails.get(person_id) or "").strip()
        wanted = [a for a in alerts if pref.channel(a.kind) == rules.Channel.EMAIL.value
                  and a.created_at >= now - STALE_AFTER and "@" in address]
        skip += [a.id for a in alerts if a not in wanted]
        if not wanted:
            continue
        if pref.email_mode == rules.EmailMode.DAILY.value and not rules.daily_digest_due(
                local_now, settings.alerts_daily_hour, pref.last_digest_on):
            report.waiting += len(wanted)
            continue
        batches[person_id] = wanted
    _mark(session, skip, "skipped")
    report.skipped = len(skip)
    claimed = _claim(session, [a.id for alerts in batches.values() for a in alerts])
    session.commit()  # the claim: from here on no other run will pick these alerts
    batches = {pid: kept for pid, alerts in batches.items() if (kept := [a for a in alerts if a.id in claimed])}
    if not batches:
        return report
    mails: list[OutgoingMail] = []
    owner: dict[int, int] = {}
    for person_id, alerts in batches.items():
        mail = _mail(settings, person_id, (emails[person_id] or "").strip(), names.get(person_id) or "", alerts)
        owner[id(mail)] = person_id
        mails.append(mail)
    try:
        results = send(settings.smtp_url, settings.mail_from, mails)
    except MailError as exc:
        _mark(session, sorted(claimed), "pending")  # nothing was sent: try again next run
        session.commit()
        report.error = str(exc)
        log.warning("alerts: e-mail not sent: %s", exc)
        return report
    done_people = {owner[id(m)]: reason for m, reason in results}
    sent_ids, refused_ids, retry_ids = [], [], []
    for person_id, alerts in batches.items():
        ids = [a.id for a in alerts]
        if person_id not in done_people:
            retry_ids += ids
        elif done_people[person_id] is None:
            sent_ids += ids
            report.sent_messages += 1
        else:
            refused_ids += ids
            log.warning("alerts: e-mail to person %s refused: %s", person_id, done_people[person_id])
    if sent_ids:
        for i in range(0, len(sent_ids), 5000):
            session.execute(update(Alert).where(Alert.id.in_(sent_ids[i:i + 5000])).values(email_status="sent", sent_at=now)
                            .execution_options(synchronize_session=False))
    _mark(session, refused_ids, "skipped")
    _mark(session, retry_ids, "pending")
    today = local_now.date()
    for person_id in batches:
        if done_people.get(person_id, "x") is None and prefs[person_id].email_mode == rules.EmailMode.DAILY.value:
            preference_row(session, person_id).last_digest_on = today
    session.commit()
    report.sent_alerts = len(sent_ids)
    report.skipped += len(refused_ids)
    log.info("alerts: %d e-mails sent (%d alerts)", report.sent_messages, report.sent_alerts)
    return report


def _claim(session: Session, ids: list[int]) -> set[int]:
    """Move pending alerts to ``sending``; only the ids this statement moved are ours (another worker may have
    claimed some between our read and this write)."""
    claimed: set[int] = set()
    for i in range(0, len(ids), 5000):
        claimed |= set(session.scalars(update(Alert).where(Alert.id.in_(ids[i:i + 5000]), Alert.email_status == "pending")
                                       .values(email_status="sending").returning(Alert.id)
                                       .execution_options(synchronize_session=False)))
    return claimed


def _mark(session: Session, ids: list[int], status: str) -> None:
    for i in range(0, len(ids), 5000):
        session.execute(update(Alert).where(Alert.id.in_(ids[i:i + 5000])).values(email_status=status)
                        .execution_options(synchronize_session=False))  # no per-object bookkeeping: 20,000 rows


def _mail(settings: Settings, person_id: int, address: str, name: str, alerts: list[Alert]) -> OutgoingMail:
    kinds = sorted({a.kind for a in alerts if a.kind in {k.value for k in rules.CHOOSABLE_KINDS}})
    base = settings.base_url
    unsub = {k: f"{base}/alerts/unsubscribe/{unsubscribe_token(person_id, [k], settings)}" for k in kinds}
    items = [rules.DigestItem(a.kind, a.title, tuple(str(line[0]) for line in (a.lines or []) if _line_ok(a, line)))
             for a in alerts]
    subject, body = rules.email_text(name, items, f"{base}/alerts/", unsub)
    headers: tuple[tuple[str, str], ...] = ()
    if kinds:
        all_kinds = f"{base}/alerts/unsubscribe/{unsubscribe_token(person_id, kinds, settings)}"
        headers = (("List-Unsubscribe", f"<{all_kinds}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return OutgoingMail(address, subject, body, headers)


def _line_ok(alert: Alert, line: Any) -> bool:
    """Lines are short names (who has not acknowledged, which deadline); anything else stays out of e-mail."""
    return isinstance(line, list | tuple) and bool(line) and isinstance(line[0], str) and len(line[0]) <= 300

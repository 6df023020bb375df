"""Receiving pushed roster events: verify, parse, store durably, acknowledge.

The order is the contract with the LMS: nothing is acknowledged before it is committed, and nothing is applied
before it is acknowledged. ``receive`` checks the platform and the signature, parses the event (a malformed
event is refused with a reason and nothing is stored), stores it in the inbox under its dedupe key (a redelivery
inserts nothing: ``INSERT ... ON CONFLICT DO NOTHING``) and commits. The web handler then answers 202 and asks
the inbox to apply what is due (``services/inbox.py``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.signed_payloads import KeysetVerifier, SignatureInvalid, verify_hmac
from lti_app.crypto import DataKeyError, cipher
from lti_app.db import dialect_insert_for, utcnow
from lti_app.domain.roster_events import EventInvalid, ParsedEvent, parse_canvas, parse_moodle
from lti_app.domain.vocab import InboundStatus, LmsFamily, PlatformStatus
from lti_app.models import InboundEvent, Platform

log = logging.getLogger(__name__)

HMAC_WINDOW_SECONDS = 300


class WebhookRefused(Exception):
    """The request is refused; ``status`` and ``reason`` go back to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Receipt:
    event_id: int | None
    duplicate: bool
    event_type: str
    ignored: str | None = None

    @property
    def status(self) -> str:
        if self.duplicate:
            return "duplicate"
        return "ignored" if self.ignored else "accepted"


def keyset_verifier() -> KeysetVerifier:
    """One verifier (and so one key-set cache) per app and process."""
    verifier = current_app.extensions.get("caseload.keyset_verifier")
    if verifier is None:
        seconds = float(current_app.config["CASELOAD"].jwks_cache_seconds)
        verifier = current_app.extensions.setdefault("caseload.keyset_verifier", KeysetVerifier(cache_seconds=seconds))
    return verifier  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _PlatformInfo:
    id: int
    name: str
    lms: str
    status: str
    live_events_keyset_url: str | None
    webhook_secret_encrypted: bytes | None


PLATFORM_CACHE_SECONDS = 10.0
"""A platform's webhook settings are read from the database at most this often per process (a burst of events is
not a burst of identical queries); a disabled platform or a new secret takes effect within this time."""


def _lookup(session: Session, name: str) -> _PlatformInfo | None:
    cache: dict[str, tuple[float, _PlatformInfo | None]] = current_app.extensions.setdefault(
        "caseload.webhook_platforms", {})
    hit = cache.get(name)
    now = time.monotonic()
    if hit is not None and now - hit[0] < PLATFORM_CACHE_SECONDS:
        return hit[1]
    row = session.scalars(select(Platform).where(Platform.name == name)).one_or_none()
    info = None if row is None else _PlatformInfo(row.id, row.name, row.lms, row.status, row.live_events_keyset_url,
                                                  row.webhook_secret_encrypted)
    if info is not None:
        cache[name] = (now, info)
    return info


def _platform(session: Session, name: str, lms: str) -> _PlatformInfo:
    platform = _lookup(session, name)
    if platform is None:
        raise WebhookRefused(404, f"No platform named '{name[:100]}' is registered in Caseload.")
    if platform.lms != lms:
        raise WebhookRefused(404, f"Platform '{platform.name}' is not registered as a {lms.title()} platform.")
    if platform.status != PlatformStatus.ACTIVE.value:
        raise WebhookRefused(403, f"Platform '{platform.name}' is disabled in Caseload.")
    return platform


def receive_canvas(session: Session, platform_name: str, body: bytes) -> Receipt:
    platform = _platform(session, platform_name, LmsFamily.CANVAS.value)
    if not platform.live_events_keyset_url:
        raise WebhookRefused(409, f"Platform '{platform.name}' has no Live Events key set configured "
                                  "(caseload platform add ... --live-events-keyset-url).")
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise WebhookRefused(400, "The body is not a signed JWT.") from None
    if text.startswith(("{", "[")) or not text:
        raise WebhookRefused(401, "Unsigned Live Events are refused: turn on 'Sign Payload' for this "
                                  "Live Events subscription in Canvas Data Services.")
    try:
        claims = keyset_verifier().verify(text, platform.live_events_keyset_url)
    except SignatureInvalid as exc:
        raise WebhookRefused(exc.status, f"Live Event refused: {exc.reason}.") from None
    try:
        parsed = parse_canvas(claims, utcnow())
    except EventInvalid as exc:
        raise WebhookRefused(400, f"Live Event refused: {exc}.") from None
    return _store(session, platform, parsed, claims)


def receive_moodle(session: Session, platform_name: str, body: bytes, timestamp: str | None,
                   signature: str | None) -> Receipt:
    platform = _platform(session, platform_name, LmsFamily.MOODLE.value)
    if platform.webhook_secret_encrypted is None:
        raise WebhookRefused(409, f"Platform '{platform.name}' has no webhook secret in Caseload.")
    try:
        secret = cipher().decrypt(platform.webhook_secret_encrypted)
    except DataKeyError:
        log.error("the webhook secret of platform %s cannot be decrypted with the configured data keys", platform.id)
        raise WebhookRefused(503, "Caseload cannot read this platform's webhook secret right now.") from None
    try:
        verify_hmac(secret, timestamp, signature, body, now=time.time(), window_seconds=HMAC_WINDOW_SECONDS)
    except SignatureInvalid as exc:
        raise WebhookRefused(exc.status, f"Event refused: {exc.reason}.") from None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(400, "The body is not valid JSON.") from None
    try:
        parsed = parse_moodle(payload, utcnow())
    except EventInvalid as exc:
        raise WebhookRefused(400, f"Event refused: {exc}.") from None
    return _store(session, platform, parsed, payload)


_INSERT_STATEMENTS: dict[str, Any] = {}


def _insert_statement(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``, built once per dialect (its compiled form is
    then cached by SQLAlchemy: a burst of events costs no statement building)."""
    stmt = _INSERT_STATEMENTS.get(dialect)
    if stmt is None:
        table: Any = InboundEvent.__table__
        stmt = (dialect_insert_for(dialect, table).on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(table.c.id))
        _INSERT_STATEMENTS[dialect] = stmt
    return stmt


def _store(session: Session, platform: _PlatformInfo, parsed: ParsedEvent, payload: dict[str, Any]) -> Receipt:
    """One statement on an autocommit connection: the row is durable when the statement returns (PostgreSQL commits
    it, and waits for the WAL flush, before answering), so the 202 that follows never acknowledges less."""
    now = utcnow()
    status = InboundStatus.IGNORED.value if parsed.ignored else InboundStatus.PENDING.value
    params = {"platform_id": platform.id, "source": parsed.lms, "event_type": parsed.event_type,
              "dedupe_key": parsed.dedupe_key, "received_at": now, "event_time": parsed.event_time,
              "payload": payload, "status": status, "attempts": 0,
              "next_attempt_at": None if parsed.ignored else now, "last_error": parsed.ignored}
    bind = session.get_bind()
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        event_id = conn.execute(_insert_statement(bind.dialect.name), params).scalar_one_or_none()
    if event_id is None:
        log.info("duplicate %s event %s from platform %s", parsed.lms, parsed.event_type, platform.id)
    return Receipt(event_id=event_id, duplicate=event_id is None, event_type=parsed.event_type,
                   ignored=parsed.ignored)

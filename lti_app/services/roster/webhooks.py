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
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.engine import Engine

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
    pong: Pong | None = None
    """Set for the plugin's signed test: nothing was stored."""

    @property
    def status(self) -> str:
        if self.pong is not None:
            return "ok"
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
    canvas_root_account_uuid: str | None = None


PLATFORM_CACHE_SECONDS = 10.0
"""A platform's webhook settings are read from the database at most this often per process (a burst of events is
not a burst of identical queries); a disabled platform or a new secret takes effect within this time."""


def _lookup(engine: Engine, name: str) -> _PlatformInfo | None:
    cache: dict[str, tuple[float, _PlatformInfo | None]] = current_app.extensions.setdefault(
        "caseload.webhook_platforms", {})
    hit = cache.get(name)
    now = time.monotonic()
    if hit is not None and now - hit[0] < PLATFORM_CACHE_SECONDS:
        return hit[1]
    with engine.connect() as conn:
        row = conn.execute(select(Platform.id, Platform.name, Platform.lms, Platform.status,
                                  Platform.live_events_keyset_url, Platform.webhook_secret_encrypted,
                                  Platform.canvas_root_account_uuid)
                           .where(Platform.name == name)).one_or_none()
    info = None if row is None else _PlatformInfo(*row)
    if info is not None:
        cache[name] = (now, info)
    return info


def _platform(engine: Engine, name: str, lms: str) -> _PlatformInfo:
    platform = _lookup(engine, name)
    if platform is None:
        raise WebhookRefused(404, f"No platform named '{name[:100]}' is registered in Caseload.")
    if platform.lms != lms:
        raise WebhookRefused(404, f"Platform '{platform.name}' is not registered as a {lms.title()} platform.")
    if platform.status != PlatformStatus.ACTIVE.value:
        raise WebhookRefused(403, f"Platform '{platform.name}' is disabled in Caseload.")
    return platform


def receive_canvas(engine: Engine, platform_name: str, body: bytes) -> Receipt:
    platform = _platform(engine, platform_name, LmsFamily.CANVAS.value)
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
    _check_root_account(platform, claims)
    now = utcnow()
    try:
        parsed = parse_canvas(claims, now)
    except EventInvalid as exc:
        raise WebhookRefused(400, f"Live Event refused: {exc}.") from None
    _check_fresh(claims, parsed, now)
    return _store(engine, platform, parsed, claims)


LIVE_EVENT_MAX_AGE_SECONDS = 24 * 3600
"""A signed Live Event issued (``iat``, else its ``event_time``) longer ago than this is refused as stale: a token
captured once cannot be replayed later (the inbox forgets applied events after ``CASELOAD_INBOX_KEEP_DAYS``), and
whatever Canvas failed to deliver for a day is repaired by the scheduled NRPS pull."""


def _check_root_account(platform: _PlatformInfo, claims: dict[str, Any]) -> None:
    """Accept an event only from this platform's Canvas root account (``services.platforms.canvas_account``): a
    signature alone does not say which district sent it."""
    metadata = claims.get("metadata")
    sent = metadata.get("root_account_uuid") if isinstance(metadata, dict) else None
    if not platform.canvas_root_account_uuid:
        raise WebhookRefused(409, f"Live Event refused: Caseload does not know the Canvas root account of platform "
                                  f"'{platform.name}' yet. Launch Caseload once from this Canvas (the developer key "
                                  "sends canvas_root_account_uuid), or set it with caseload platform webhooks "
                                  f"--name {platform.name} --canvas-root-account-uuid ….")
    if not isinstance(sent, str) or not sent:
        raise WebhookRefused(403, "Live Event refused: it names no Canvas root account (metadata.root_account_uuid).")
    if sent != platform.canvas_root_account_uuid:
        log.warning("Live Event for another Canvas root account refused on platform %s", platform.id)
        raise WebhookRefused(403, f"Live Event refused: it comes from another Canvas root account than the one "
                                  f"platform '{platform.name}' belongs to. Check the subscription's URL in Canvas "
                                  "Data Services (each Canvas account posts to its own platform's URL).")


def _check_fresh(claims: dict[str, Any], parsed: ParsedEvent, now: datetime) -> None:
    issued_at = claims.get("iat")
    if isinstance(issued_at, int | float) and not isinstance(issued_at, bool):
        age = now.timestamp() - float(issued_at)
    else:
        age = (now - parsed.event_time).total_seconds()
    if age > LIVE_EVENT_MAX_AGE_SECONDS:
        raise WebhookRefused(401, "Live Event refused: the signed event is stale (issued more than "
                                  f"{LIVE_EVENT_MAX_AGE_SECONDS // 3600} hours ago). Caseload's roster pull repairs "
                                  "changes older than that.")


def receive_moodle(engine: Engine, platform_name: str, body: bytes, timestamp: str | None,
                   signature: str | None) -> Receipt:
    platform = _platform(engine, platform_name, LmsFamily.MOODLE.value)
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
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep to parse
        raise WebhookRefused(400, "The body is not valid JSON.") from None
    if isinstance(payload, dict) and payload.get("schema") == PING_SCHEMA:
        return _pong(platform, payload)
    try:
        parsed = parse_moodle(payload, utcnow())
    except EventInvalid as exc:
        raise WebhookRefused(400, f"Event refused: {exc}.") from None
    return _store(engine, platform, parsed, payload)


PING_SCHEMA = "caseload.moodle-ping/1"
"""The plugin's "Test connection": signed like an event, stored nowhere, answered with the platform it matched."""


@dataclass(frozen=True)
class Pong:
    """The answer to a signed test from the Moodle plugin: which platform the URL and secret matched."""

    platform: str
    lms: str
    site: str

    def message(self) -> str:
        where = f" from {self.site}" if self.site else ""
        return (f"Caseload received a correctly signed test{where}: it matched platform '{self.platform}' "
                f"({self.lms}). Roster events sent with this URL and secret will be accepted.")


def _pong(platform: _PlatformInfo, payload: dict[str, Any]) -> Receipt:
    site = payload.get("site")
    site_text = site[:200] if isinstance(site, str) else ""
    log.info("signed test from the Moodle plugin of platform %s", platform.id)
    return Receipt(event_id=None, duplicate=False, event_type="ping", pong=Pong(platform.name, platform.lms, site_text))


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


def _store(engine: Engine, platform: _PlatformInfo, parsed: ParsedEvent, payload: dict[str, Any]) -> Receipt:
    now = utcnow()
    status = InboundStatus.IGNORED.value if parsed.ignored else InboundStatus.PENDING.value
    params = {"platform_id": platform.id, "source": parsed.lms, "event_type": parsed.event_type,
              "dedupe_key": parsed.dedupe_key, "received_at": now, "event_time": parsed.event_time,
              "payload": payload, "status": status, "attempts": 0,
              "next_attempt_at": None if parsed.ignored else now, "last_error": parsed.ignored}
    if engine.dialect.name == "postgresql":
        event_id = group_writer().store(engine, params)
    else:
        inbox_row_json(params)  # the same refusals as on PostgreSQL
        # SQLite (the embedded default) has one writer at a time anyway: one statement, autocommit.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            event_id = conn.execute(_insert_statement(engine.dialect.name), params).scalar_one_or_none()
    if event_id is None:
        log.info("duplicate %s event %s from platform %s", parsed.lms, parsed.event_type, platform.id)
    return Receipt(event_id=event_id, duplicate=event_id is None, event_type=parsed.event_type,
                   ignored=parsed.ignored)


# ---------------------------------------------------------------------------------------------------------------
# Group commit (PostgreSQL)
# ---------------------------------------------------------------------------------------------------------------

_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
"""A ``\u0000`` escape in JSON text (an even number of backslashes before it, so not an escaped backslash)."""


def inbox_row_json(params: dict[str, Any]) -> str:
    """The inbox row as JSON text, or a refusal for what PostgreSQL's ``jsonb`` cannot hold: NaN or Infinity (Python's
    JSON parser accepts them), a NUL character, half of a UTF-16 surrogate pair. Such an event is refused alone,
    before it joins a commit group, instead of failing the statement for every request of its group."""
    try:
        row = json.dumps(params, default=_json_time, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise WebhookRefused(400, "The event contains a number JSON cannot carry (NaN or Infinity).") from None
    try:
        row.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookRefused(400, "The event contains text that is not valid Unicode.") from None
    if "\\u0000" in row and _NUL_ESCAPE.search(row):
        raise WebhookRefused(400, "The event contains a NUL character, which Caseload does not store.")
    return row


class _Slot:
    __slots__ = ("key", "row", "wake", "done", "lead", "event_id", "error")

    def __init__(self, params: dict[str, Any]) -> None:
        self.key: str = params["dedupe_key"]
        self.row = inbox_row_json(params)
        self.wake = threading.Event()
        self.done = False
        self.lead = False
        self.event_id: int | None = None
        self.error: BaseException | None = None


class GroupWriter:
    """Stores the inbox rows of concurrent requests together: one ``INSERT … SELECT … FROM
    jsonb_to_recordset(…) ON CONFLICT (dedupe_key) DO NOTHING RETURNING`` and one commit for all the rows that
    arrived while the previous write was in flight, instead of a statement and a commit (a WAL flush) per event.

    The contract is unchanged: a request is answered only after the commit that includes its row has returned
    (or with the error that commit raised: 503, and the LMS sends again). Each write is made by the first
    request of its group, on that request's thread; the others wait for it. No background thread, nothing held
    in memory that has been acknowledged. The same key twice in one group is stored once: the second is a
    duplicate, as it would be a moment later."""

    MAX_ROWS = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._writing = False

    def store(self, engine: Any, params: dict[str, Any]) -> int | None:
        slot = _Slot(params)
        with self._lock:
            self._queue.append(slot)
            if not self._writing:
                self._writing = slot.lead = True
        while not slot.lead and not slot.done:
            slot.wake.wait()
            slot.wake.clear()
        if not slot.done:
            self._write_next_group(engine)
        if slot.error is not None:
            raise slot.error
        return slot.event_id

    def _write_next_group(self, engine: Any) -> None:
        with self._lock:
            group, self._queue = self._queue[:self.MAX_ROWS], self._queue[self.MAX_ROWS:]
        try:
            self._write(engine, group)
        except BaseException as exc:  # noqa: BLE001 - every request of the group gets the error
            for s in group:
                s.error = exc
        finally:
            for s in group:
                s.done = True
                s.wake.set()
            with self._lock:
                if self._queue:  # hand over: the first waiting request writes the next group
                    following = self._queue[0]
                    following.lead = True
                    following.wake.set()
                else:
                    self._writing = False

    @staticmethod
    def _write(engine: Any, group: list[_Slot]) -> None:
        first: dict[str, _Slot] = {}
        for s in group:
            first.setdefault(s.key, s)
        rows = "[" + ",".join(s.row for s in first.values()) + "]"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            stored = dict(conn.exec_driver_sql(_GROUP_INSERT_SQL, (rows,)).all())
        for key, s in first.items():
            s.event_id = stored.get(key)


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as UTCDateTime refuses them: a naive time would be read in the session's zone
            raise TypeError("naive datetime in an inbox row")
        return value.isoformat()
    raise TypeError(f"not serialisable in an inbox row: {type(value).__name__}")


_GROUP_INSERT_SQL = (
    "INSERT INTO inbound_events (platform_id, source, event_type, dedupe_key, received_at, event_time, payload, "
    "status, attempts, next_attempt_at, last_error) "
    "SELECT platform_id, source, event_type, dedupe_key, received_at, event_time, payload, status, attempts, "
    "next_attempt_at, last_error FROM jsonb_to_recordset(%s::jsonb) AS r(platform_id int, source text, "
    "event_type text, dedupe_key text, received_at timestamptz, event_time timestamptz, payload jsonb, "
    "status text, attempts int, next_attempt_at timestamptz, last_error text) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id")
"""One statement text and one parameter whatever the group size: the rows go as one JSON array, each row
serialised by the json module's C encoder in its own request's thread (``inbox_row_json``). Eleven typed arrays,
the first version, cost more: psycopg escapes every payload element of a text-format array in Python. PostgreSQL
plans the statement once per connection (psycopg prepares it after a few uses)."""


def group_writer() -> GroupWriter:
    """One writer per app and process."""
    writer = current_app.extensions.get("caseload.inbox_writer")
    if writer is None:
        writer = current_app.extensions.setdefault("caseload.inbox_writer", GroupWriter())
    return writer  # type: ignore[no-any-return]

"""A per-process copy of the registrations (active ``platforms`` rows) and deployment statuses that logins and
launches read, so a returning teacher's login reads nothing and the launch does not read them either.

Why it is safe to trust a cached row (design notes, "Leaner launch"):
- **the launch re-checks it in the same statement that spends the nonce.** ``adapter._use_nonce`` inserts the
  ``used_nonces`` row only ``WHERE EXISTS`` an active platform with exactly the id, issuer, client_id, keyset URL
  and LMS family the validation used, and an active deployment of it with the launch's deployment_id. A platform
  or deployment disabled, re-keyed or edited in any process since it was cached makes that insert write nothing;
  the launch then re-reads the rows and validates again from them (no extra round trip while nothing changed);
- **only what lets a launch through is trusted.** Every refusal that depends on these rows (unknown issuer or
  client_id, wrong audience, deployment not active, signature not verifiable with the cached keyset URL) is
  re-decided from freshly read rows before it is shown; an issuer with no active platform and a deployment that
  is not active are never cached, so a platform registered or a deployment approved in another process is used
  at its next launch;
- **the login's redirect** (the platform's auth URL and client_id) is the one thing used without a re-check: a
  stale one lasts at most ``TTL_SECONDS``, and the launch that follows is checked as above;
- **writes in this process clear it at commit**: any flush or ORM ``UPDATE``/``DELETE`` that touches ``Platform``
  or ``Deployment`` marks the session, and its commit empties the cache (admin pages, dynamic registration, the
  pending-deployment record, the CLI in its own process).

It also remembers, per platform, the framing origins a launch of this process vouched for (``return_url``, Canvas's
API domain) once that launch committed: the next launches naming the same origins skip ``framing.learn`` and its two
reads, which would find them known. A change to a platform's stored origins (an administrator removing one) empties
the cache like any platform change; removed in another process, an origin is learned again after ``TTL_SECONDS``
at the latest — as it would be by that launch anyway.

The cache belongs to one Flask app (``app.extensions``), so apps on different databases in one process (tests) never
share rows. Keys come only from rows found in the database, so its size is bounded by the registrations.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from lti_app.models import Deployment, Platform, PlatformFrameOrigin

TTL_SECONDS = 60.0
"""How long a cached registration is used without being read again (it bounds only a login's redirect URL: launches
re-check the rows they used, see the module docstring)."""

_EXTENSION = "caseload.registry_cache"
_CHANGED = "caseload.registry_changed"
_WATCHED = (Platform, Deployment, PlatformFrameOrigin)


@dataclass(frozen=True)
class RegisteredPlatform:
    """The columns of an active ``platforms`` row a login or launch needs, plus (at launch) the status of the
    launch's deployment (None: no such deployment row)."""

    id: int
    lms: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    keyset_url: str
    deployment_status: str | None = None


Key = tuple[str, str | None]
"""(issuer, deployment_id): deployment_id None for a login, which needs no deployment status."""


class RegistryCache:
    """Rows per (issuer, deployment_id), each with the monotonic time it was read. Thread-safe for gthread workers:
    a value read before an invalidation is never stored after it (``generation``)."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self.generation = 0
        self._rows: dict[Key, tuple[float, tuple[RegisteredPlatform, ...]]] = {}
        self._origins: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> tuple[RegisteredPlatform, ...] | None:
        hit = self._rows.get(key)
        if hit is None or time.monotonic() - hit[0] >= self.ttl:
            return None
        return hit[1]

    def put(self, key: Key, rows: tuple[RegisteredPlatform, ...], generation: int) -> None:
        """Keep rows read while the cache was at ``generation``; only rows that let a login or launch through."""
        if not rows or (key[1] is not None and not any(
                p.deployment_status == "active" for p in rows)):
            return
        with self._lock:
            if generation == self.generation:
                self._rows[key] = (time.monotonic(), rows)

    def origins_known(self, platform_id: int, origins: list[str]) -> bool:
        """Whether a launch of this process already vouched for all these framing origins of the platform, within
        ``ttl`` (then ``framing.learn`` has nothing to store and need not read the platform's origins)."""
        now = time.monotonic()
        return all(now - self._origins.get((platform_id, o), -1e18) < self.ttl for o in origins)

    def note_origins_known(self, platform_id: int, origins: list[str], generation: int) -> None:
        """After the launch that learned (or found) these origins committed."""
        with self._lock:
            if generation == self.generation:
                now = time.monotonic()
                self._origins.update({(platform_id, o): now for o in origins})

    def forget(self, issuer: str | None = None) -> None:
        """Drop one issuer's rows (all of them, and the known framing origins, when None); rows being read now will
        not be stored."""
        with self._lock:
            self.generation += 1
            if issuer is None:
                self._rows.clear()
                self._origins.clear()
            else:
                for key in [k for k in self._rows if k[0] == issuer]:
                    del self._rows[key]

    def __len__(self) -> int:
        return len(self._rows) + len(self._origins)


def registry_cache(app: Flask | None = None) -> RegistryCache:
    """The app's cache, created (and hooked to its sessionmaker for invalidation) on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get(_EXTENSION)
    if cache is None:
        with _CREATE_LOCK:
            cache = app.extensions.get(_EXTENSION)
            if cache is None:
                cache = RegistryCache()
                _watch(app.extensions["caseload.sessionmaker"], cache)
                app.extensions[_EXTENSION] = cache
    return cache  # type: ignore[no-any-return]


_CREATE_LOCK = threading.Lock()


def _watch(maker: sessionmaker[Session], cache: RegistryCache) -> None:
    """Clear ``cache`` when a session of ``maker`` commits a change to a platform or deployment."""

    def after_flush(session: Session, _context: Any) -> None:
        if any(isinstance(obj, _WATCHED) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info[_CHANGED] = True

    def do_orm_execute(state: Any) -> None:
        if (state.is_update or state.is_delete) and any(
                m.class_ in _WATCHED for m in state.all_mappers):
            state.session.info[_CHANGED] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            cache.forget()

    def after_rollback(session: Session) -> None:
        session.info.pop(_CHANGED, None)

    event.listen(maker, "after_flush", after_flush)
    event.listen(maker, "do_orm_execute", do_orm_execute)
    event.listen(maker, "after_commit", after_commit)
    event.listen(maker, "after_rollback", after_rollback)

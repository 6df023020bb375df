"""Framing origins: which LMS pages may show Caseload in their frame (CSP ``frame-ancestors``, CSP Level 3 §6.4.2).

A platform's pages do not always live on its issuer's host: Canvas cloud's issuer is ``https://canvas.instructure.com``
and its login host ``https://sso.canvaslms.com``, but the course page that frames the tool is the district's own host
(``https://district.instructure.com`` or a vanity domain). Caseload therefore keeps, per platform, the origins its
pages really live on, learned only from sources it trusts:

- a validated launch: the origin of ``launch_presentation.return_url`` (LTI Core 1.3 §5.4.4) and, for Canvas, the
  ``$Canvas.api.domain`` custom variable (the host the user is on). A newly seen origin is added only here, after the
  id_token's signature, nonce and state have been checked;
- the LMS page that started Dynamic Registration (the one-time invite vouches for the administrator's browser);
- an administrator (``caseload platform frame-origin add``, or the admin page).

An origin nobody vouched for stays refused. The issuer's and login URL's origins are always allowed, as before.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import dialect_insert, utcnow
from lti_app.domain.vocab import AdminAction
from lti_app.models import Platform, PlatformFrameOrigin
from lti_app.services.access.audit_log import record_admin

log = logging.getLogger(__name__)

SOURCES = ("launch", "registration", "admin")
MAX_ORIGINS_PER_PLATFORM = 50
"""A platform with more page origins than this learns no more from launches (an administrator can still add): the
CSP header must stay a sensible size, and a real LMS has a handful of hosts."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
"""A DNS host name (IDNs in their ASCII form): CSP host sources allow nothing else."""


class FramingInvalid(ValueError):
    """An origin or platform the request names cannot be used; the message says why."""


def normalise_origin(value: str, *, allow_path: bool = False) -> str | None:
    """``scheme://host[:port]`` for an http(s) URL or origin, lower case, default port dropped; None when ``value`` is
    not one (another scheme, no host, user info, a wildcard, or a path/query when ``allow_path`` is False)."""
    text = (value or "").strip()
    if not text or any(c.isspace() for c in text) or "*" in text or ";" in text or "," in text or "'" in text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if not allow_path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return None
    host = parts.hostname.lower()
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"
    except ValueError:
        if not _HOST.match(host):
            return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def origin_of_url(url: str | None) -> str | None:
    """The origin of an http(s) URL (path, query and fragment ignored)."""
    return normalise_origin(url or "", allow_path=True)


def origin_of_host(host: str | None, *, scheme: str = "https") -> str | None:
    """The origin for a bare host name such as Canvas's ``$Canvas.api.domain`` (``district.instructure.com``)."""
    text = (host or "").strip()
    if not text or "/" in text or "@" in text:
        return None
    return normalise_origin(f"{scheme}://{text}")


def fixed_origins(issuer: str, auth_login_url: str) -> list[str]:
    """The origins a platform is allowed from by its registration alone: its issuer and its login URL."""
    return sorted({o for o in (origin_of_url(issuer), origin_of_url(auth_login_url)) if o})


def known_origins(session: Session, platform_id: int) -> list[str]:
    """Every origin a platform's pages may frame Caseload from: issuer, login URL and the stored origins."""
    row = session.execute(select(Platform.issuer, Platform.auth_login_url).where(Platform.id == platform_id)).first()
    if row is None:
        return []
    stored = session.scalars(select(PlatformFrameOrigin.origin)
                             .where(PlatformFrameOrigin.platform_id == platform_id)).all()
    return sorted(set(fixed_origins(row[0], row[1])) | set(stored))


def all_known_origins(session: Session) -> list[str]:
    """The union over every platform (the CSP of a page whose platform is not known)."""
    origins: set[str] = set()
    for issuer, login in session.execute(select(Platform.issuer, Platform.auth_login_url)).all():
        origins.update(fixed_origins(issuer or "", login or ""))
    origins.update(session.scalars(select(PlatformFrameOrigin.origin).distinct()).all())
    return sorted(origins)


def learn(session: Session, platform_id: int, origins: Iterable[str], source: str) -> list[str]:
    """Store origins a trusted source vouched for (``source``: launch or registration); those already known are left
    as they are. One INSERT … ON CONFLICT DO NOTHING per new origin, in the caller's transaction. Returns the origins
    that were new."""
    if source not in SOURCES:
        raise ValueError(f"unknown framing source {source!r}")
    wanted = {o for o in (normalise_origin(x) for x in origins) if o}
    if not wanted:
        return []
    known = set(known_origins(session, platform_id))
    new = sorted(wanted - known)
    if not new:
        return []
    room = MAX_ORIGINS_PER_PLATFORM - session.query(PlatformFrameOrigin).filter_by(platform_id=platform_id).count()
    if room < len(new):
        log.warning("platform %s has %s framing origins already; %s new one(s) not stored", platform_id,
                    MAX_ORIGINS_PER_PLATFORM - room, len(new))
        new = new[:max(room, 0)]
    table = PlatformFrameOrigin.__table__
    for origin in new:
        stmt = dialect_insert(session, table).values(platform_id=platform_id, origin=origin, source=source,
                                                     created_at=utcnow())
        session.execute(stmt.on_conflict_do_nothing(index_elements=["platform_id", "origin"]))
    if new:
        log.info("platform %s: %s new framing origin(s) from %s", platform_id, len(new), source)
    return new


@dataclass(frozen=True)
class FramingOrigin:
    origin: str
    source: str
    """issuer | login | launch | registration | admin"""
    removable: bool


def list_origins(session: Session, platform: Platform) -> list[FramingOrigin]:
    """What the admin page and ``caseload platform frame-origin list`` show for one platform."""
    out: dict[str, FramingOrigin] = {}
    issuer, login = origin_of_url(platform.issuer), origin_of_url(platform.auth_login_url)
    if issuer:
        out[issuer] = FramingOrigin(issuer, "issuer", False)
    if login and login not in out:
        out[login] = FramingOrigin(login, "login", False)
    rows = session.scalars(select(PlatformFrameOrigin).where(PlatformFrameOrigin.platform_id == platform.id)
                           .order_by(PlatformFrameOrigin.origin)).all()
    for row in rows:
        if row.origin not in out:
            out[row.origin] = FramingOrigin(row.origin, row.source, True)
    return sorted(out.values(), key=lambda o: o.origin)


def find_platform(session: Session, name: str) -> Platform:
    platform = session.scalars(select(Platform).where(Platform.name == name)).one_or_none()
    if platform is None:
        raise FramingInvalid(f"No platform named {name!r} (see `caseload platform list`).")
    return platform


def add_origin(session: Session, platform: Platform, value: str, *, actor_id: int | None, via: str) -> str:
    """An administrator allows an origin (``https://district.instructure.com``) to frame Caseload for ``platform``."""
    origin = normalise_origin(value)
    if origin is None:
        raise FramingInvalid(f"{value!r} is not an origin: write it as https://host or https://host:port, without a "
                             "path or wildcard.")
    if origin in {o.origin for o in list_origins(session, platform)}:
        return origin
    if session.query(PlatformFrameOrigin).filter_by(platform_id=platform.id).count() >= MAX_ORIGINS_PER_PLATFORM:
        raise FramingInvalid(f"This platform already has {MAX_ORIGINS_PER_PLATFORM} framing origins; remove one "
                             "first.")
    session.add(PlatformFrameOrigin(platform_id=platform.id, origin=origin, source="admin"))
    session.flush()
    record_admin(session, actor_id, via, AdminAction.FRAME_ORIGIN_ADD.value, target_type="platform",
                 target_id=platform.id, summary=f"{platform.name}: pages on {origin} may show Caseload")
    return origin


def remove_origin(session: Session, platform: Platform, value: str, *, actor_id: int | None, via: str) -> str:
    """Stop allowing a stored origin. The issuer's and login URL's origins come from the registration itself and
    cannot be removed here."""
    origin = normalise_origin(value) or value.strip()
    if origin in fixed_origins(platform.issuer, platform.auth_login_url):
        raise FramingInvalid(f"{origin} is this platform's issuer or login origin; it is always allowed.")
    gone = session.execute(delete(PlatformFrameOrigin).where(PlatformFrameOrigin.platform_id == platform.id,
                                                             PlatformFrameOrigin.origin == origin)
                           .execution_options(synchronize_session=False))
    if not getattr(gone, "rowcount", 0):
        raise FramingInvalid(f"{origin} is not one of {platform.name}'s framing origins.")
    record_admin(session, actor_id, via, AdminAction.FRAME_ORIGIN_REMOVE.value, target_type="platform",
                 target_id=platform.id, summary=f"{platform.name}: pages on {origin} may no longer show Caseload")
    return origin

"""LMS connections: store a platform's API credentials encrypted, build the client, record its health, and the
administrator's switch. Only this module decrypts the secrets."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.canvas.client import SCOPES as CANVAS_SCOPES
from integrations.canvas.client import CanvasClient, CanvasTokens
from integrations.http import HttpClient
from integrations.moodle.webservice import FUNCTIONS as MOODLE_FUNCTIONS
from integrations.moodle.webservice import MoodleError, MoodleTokenRefused, MoodleWebService
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.vocab import LmsFamily
from lti_app.models import LmsConnection, Platform

log = logging.getLogger(__name__)

CANVAS = "canvas_oauth"
MOODLE = "moodle_token"


class ConnectionInvalid(ValueError):
    """The connection cannot be saved as given; the message says why."""


def connection_for(session: Session, platform_id: int) -> LmsConnection | None:
    return session.scalar(select(LmsConnection).where(LmsConnection.platform_id == platform_id))


def save_canvas(session: Session, platform: Platform, api_base_url: str, client_id: str, client_secret: str,
                refresh_token: str | None) -> LmsConnection:
    """Store (or replace) a Canvas connection: the API developer key and the refresh token an administrator's
    authorization produced (None: the authorization is about to be asked for). The caller commits."""
    if platform.lms != LmsFamily.CANVAS.value:
        raise ConnectionInvalid(f"Platform {platform.name} is not a Canvas platform.")
    api_base_url = api_base_url.strip()
    if not api_base_url.startswith(("https://", "http://")) or not client_id.strip() or not client_secret.strip():
        raise ConnectionInvalid("A Canvas connection needs the Canvas address (https://…), and the API developer "
                                "key's client id and secret.")
    conn = connection_for(session, platform.id) or LmsConnection(platform_id=platform.id, kind=CANVAS, scopes=[],
                                                                 enabled=False, health="unknown", health_detail="")
    conn.kind, conn.api_base_url, conn.client_id = CANVAS, api_base_url.rstrip("/"), client_id.strip()
    conn.client_secret_encrypted = cipher().encrypt(client_secret.strip())
    conn.secret_encrypted = cipher().encrypt(refresh_token) if refresh_token else None
    conn.access_token_encrypted, conn.access_token_expires_at = None, None
    conn.scopes = list(CANVAS_SCOPES)
    conn.health, conn.health_detail = "unknown", ""
    session.add(conn)
    session.flush()
    return conn


def save_moodle(session: Session, platform: Platform, api_base_url: str, token: str) -> LmsConnection:
    """Store (or replace) a Moodle web service connection: a Moodle platform's, or a new token for a platform whose
    connection already speaks Moodle's web services (the practice LMS). The caller commits."""
    existing = connection_for(session, platform.id)
    if platform.lms != LmsFamily.MOODLE.value and (existing is None or existing.kind != MOODLE):
        raise ConnectionInvalid(f"Platform {platform.name} is not a Moodle platform.")
    if not api_base_url.startswith(("https://", "http://")) or not token.strip():
        raise ConnectionInvalid("A Moodle connection needs the site's URL and the web service token.")
    conn = connection_for(session, platform.id) or LmsConnection(platform_id=platform.id, kind=MOODLE, scopes=[],
                                                                 enabled=False, health="unknown", health_detail="")
    conn.kind, conn.api_base_url, conn.client_id = MOODLE, api_base_url.rstrip("/"), None
    conn.secret_encrypted = cipher().encrypt(token.strip())
    conn.client_secret_encrypted = conn.access_token_encrypted = None
    conn.scopes = []
    conn.health, conn.health_detail = "unknown", ""
    session.add(conn)
    session.flush()
    return conn


def set_enabled(session: Session, conn: LmsConnection, enabled: bool, actor_id: int | None) -> None:
    conn.enabled = enabled
    conn.enabled_at = utcnow() if enabled else None
    conn.enabled_by_id = actor_id if enabled else None


def mark_health(conn: LmsConnection, health: str, detail: str = "") -> None:
    conn.health, conn.health_detail, conn.checked_at = health, detail[:1000], utcnow()


def canvas_client(conn: LmsConnection, http: HttpClient | None = None) -> CanvasClient:
    """A client whose refreshed access tokens are written back (encrypted) to the connection row."""

    def stored(token: str, expires: float) -> None:
        conn.access_token_encrypted = cipher().encrypt(token)
        conn.access_token_expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)

    tokens = CanvasTokens(
        token_url=f"{conn.api_base_url}/login/oauth2/token", client_id=conn.client_id or "",
        client_secret=cipher().decrypt(conn.client_secret_encrypted) if conn.client_secret_encrypted else "",
        refresh_token=cipher().decrypt(conn.secret_encrypted) if conn.secret_encrypted else "",
        access_token=cipher().decrypt(conn.access_token_encrypted) if conn.access_token_encrypted else None,
        expires_at=conn.access_token_expires_at.timestamp() if conn.access_token_expires_at else 0.0,
        on_refresh=stored)
    return CanvasClient(conn.api_base_url, tokens, http=http)


def moodle_client(conn: LmsConnection, http: HttpClient | None = None) -> MoodleWebService:
    return MoodleWebService(conn.api_base_url, cipher().decrypt(conn.secret_encrypted or b""), http=http)


def check_moodle(session: Session, conn: LmsConnection) -> tuple[bool, str]:
    """"Test connection": the token works and its service lists every function Caseload needs."""
    try:
        info = moodle_client(conn).site_info()
    except MoodleTokenRefused as exc:
        mark_health(conn, "reauthorize", str(exc))
        return False, str(exc)
    except MoodleError as exc:
        mark_health(conn, "down", str(exc))
        return False, str(exc)
    granted = sorted({str(f["name"]) for f in info.get("functions") or [] if isinstance(f, dict) and f.get("name")})
    conn.scopes = granted
    missing = [f for f in MOODLE_FUNCTIONS if f not in granted]
    if missing:
        detail = "The token's service lacks: " + ", ".join(missing)
        mark_health(conn, "reauthorize", detail)
        return False, detail
    mark_health(conn, "ok", f"Moodle {info.get('release', '')}".strip())
    return True, conn.health_detail


def store_authorization(conn: LmsConnection, refresh_token: str, access_token: str, expires_in: float) -> None:
    """What the OAuth2 authorization-code exchange returned (the refresh token is the lasting credential)."""
    conn.secret_encrypted = cipher().encrypt(refresh_token)
    conn.access_token_encrypted = cipher().encrypt(access_token)
    conn.access_token_expires_at = utcnow() + dt.timedelta(seconds=max(0.0, expires_in))
    mark_health(conn, "ok", "Authorized by a Canvas administrator.")


def client_secret(conn: LmsConnection) -> str:
    return cipher().decrypt(conn.client_secret_encrypted) if conn.client_secret_encrypted else ""

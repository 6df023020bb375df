"""Connecting Caseload to Canvas's REST API: a Canvas administrator authorizes Caseload's API developer key once,
in the browser (OAuth2 authorization code flow, developerdocs ``oauth/oauth_endpoints``), acting as the district's
service account; Caseload keeps the refresh token encrypted and renews hour-long access tokens with it.

Canvas's authorization page cannot be shown inside a frame, so the flow runs in its own browser window and comes
back to ``/lms/oauth/canvas/callback`` without Caseload's page token: the ``state`` carries who asked and for which
platform, signed with the secret key and valid 15 minutes (it is also what stops a forged callback, RFC 6749
§10.12). Only the scopes Caseload needs are requested (``integrations.canvas.client.SCOPES``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from integrations.canvas.client import CanvasError, authorize_url, exchange_code
from integrations.http import HttpClient
from lti_app.models import LmsConnection, Platform
from lti_app.services.access.audit_log import record_admin
from lti_app.services.lms_actions import connections

log = logging.getLogger(__name__)

STATE_MAX_AGE = 900
_SALT = "caseload.lms.canvas-oauth"


class AuthorizationFailed(ValueError):
    """The authorization did not complete; the message says why in words an administrator can act on."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["CASELOAD"].secret_key, salt=_SALT)


def start(session: Session, platform: Platform, actor_id: int, redirect_uri: str, api_base_url: str | None = None,
          client_id: str | None = None, client_secret: str | None = None) -> str:
    """Save the developer key (or reuse the stored one to authorize again) and return Canvas's authorization URL.
    The caller commits."""
    conn = connections.connection_for(session, platform.id)
    if api_base_url or client_id or client_secret or conn is None:
        previous = conn.secret_encrypted if conn is not None else None
        conn = connections.save_canvas(session, platform, api_base_url or "", client_id or "", client_secret or "",
                                       None)
        conn.secret_encrypted = previous  # the old authorization works until the new one replaces it
    state = _serializer().dumps({"p": platform.id, "by": actor_id})
    return authorize_url(conn.api_base_url, conn.client_id or "", redirect_uri, state)


@dataclass(frozen=True)
class Authorized:
    connection: LmsConnection
    platform: Platform


def finish(session: Session, state: str, code: str, error: str, redirect_uri: str) -> Authorized:
    try:
        data = _serializer().loads(state, max_age=STATE_MAX_AGE)
    except SignatureExpired:
        raise AuthorizationFailed("The authorization took longer than 15 minutes. Start it again from Caseload's "
                                  "administration page.") from None
    except BadSignature:
        raise AuthorizationFailed("This authorization did not start in Caseload. Start it from Caseload's "
                                  "administration page.") from None
    platform = session.get(Platform, int(data.get("p", 0)))
    conn = connections.connection_for(session, platform.id) if platform is not None else None
    if platform is None or conn is None or conn.kind != connections.CANVAS:
        raise AuthorizationFailed("The platform of this authorization no longer exists in Caseload.")
    if error:
        detail = {"access_denied": "the Canvas administrator declined",
                  "invalid_scope": "the developer key does not allow every scope Caseload asks for: enable them "
                                   "on the key (README lists them)"}.get(error, error[:100])
        if conn.secret_encrypted is None:  # a working earlier authorization stays in use
            connections.mark_health(conn, "reauthorize", f"Canvas did not authorize Caseload: {detail}.")
            session.commit()
        raise AuthorizationFailed(f"Canvas did not authorize Caseload: {detail}.")
    try:
        body = exchange_code(HttpClient(), f"{conn.api_base_url}/login/oauth2/token", conn.client_id or "",
                             connections.client_secret(conn), redirect_uri, code)
    except CanvasError as exc:
        if conn.secret_encrypted is None:
            connections.mark_health(conn, "reauthorize", str(exc))
            session.commit()
        raise AuthorizationFailed(str(exc)) from None
    connections.store_authorization(conn, body["refresh_token"], body["access_token"],
                                    float(body.get("expires_in") or 3600))
    record_admin(session, int(data.get("by") or 0) or None, "web", "lms_canvas_authorized", target_type="platform",
                 target_id=platform.id, summary=f"Canvas API access authorized for {platform.name}")
    session.commit()
    log.info("Canvas API authorized for platform %s", platform.id)
    return Authorized(conn, platform)

"""LTI Dynamic Registration 1.0 (tool side), as Moodle 4.x and Canvas start it.

Registration is by invitation: a Caseload administrator creates a one-time registration link
(``caseload platform registration-url``, ``/lti/register?invite=…``) and gives it to the LMS administrator. Without
a valid, unexpired, unspent invite nothing is fetched and nothing is stored: an open endpoint would let anyone
register a "platform" of their own, whose launches could then claim a real student's SIS id (students are linked
to their LMS identities by SIS id across platforms).

The platform opens the link with ``openid_configuration=…&registration_token=…`` added, in a frame; Caseload fetches
the platform's OpenID configuration, checks it (DR 1.0 §3.5: the issuer must be a prefix of the configuration
URL; the endpoints must be present), posts its tool configuration to the registration endpoint with the
registration token, and stores the registration (client_id, and the deployment if the platform returns one).
Nothing is stored unless every step succeeded."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from integrations.http import HttpClient, HttpError, response_json
from lti_app import clock
from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.vocab import AdminAction
from lti_app.models import Deployment, Platform, RegistrationInvite
from lti_app.services.access.audit_log import record_admin
from lti_app.services.platforms import framing
from lti_app.services.platforms.canvas_config import NRPS_SCOPE
from lti_app.services.platforms.canvas_config import custom_fields as canvas_custom_fields

log = logging.getLogger(__name__)
PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"


class RegistrationFailed(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Registered:
    platform: Platform
    deployment_id: str | None
    webhook_secret: str | None = None
    """Moodle: the companion plugin's webhook secret, generated with the registration and shown once on the result
    page (only its encrypted form is stored; the admin page makes a new one when it was missed)."""


def tool_configuration(base_url: str, lms: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    launch = base + "/lti/launch"
    messages = [
        {"type": "LtiResourceLinkRequest", "target_link_uri": launch, "label": "Accommodations",
         "placements": ["course_navigation"],
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]},
        {"type": "LtiResourceLinkRequest", "target_link_uri": launch, "label": "Caseload",
         "placements": ["account_navigation"]},
    ]
    config: dict[str, Any] = {
        "domain": urlsplit(base).netloc,
        "target_link_uri": launch,
        "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
        "messages": messages,
        "description": "Student accommodations, acknowledgements and case notes for school staff.",
    }
    if lms == "canvas":
        config["custom_parameters"] = canvas_custom_fields()
        config["https://canvas.instructure.com/lti/privacy_level"] = "public"
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base + "/lti/login",
        "redirect_uris": [launch],
        "client_name": "Caseload",
        "jwks_uri": base + "/lti/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": NRPS_SCOPE,
        TOOL_CONFIG: config,
    }


INVITE_PARAM = "invite"
DEFAULT_INVITE_HOURS = 72


def _invite_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(session: Session, *, hours: float = DEFAULT_INVITE_HOURS, label: str | None = None
                  ) -> tuple[str, RegistrationInvite]:
    """A new one-time registration invite: (its secret, shown once; the stored row, which keeps only a hash)."""
    if not 0 < hours <= 24 * 30:
        raise ValueError("a registration link lasts between a few minutes and 30 days")
    token = secrets.token_urlsafe(32)
    invite = RegistrationInvite(token_sha256=_invite_hash(token), label=label[:255] if label else None,
                                expires_at=utcnow() + dt.timedelta(hours=hours))
    session.add(invite)
    session.flush()
    return token, invite


def issue_registration_link(session: Session, base_url: str, *, hours: float, label: str | None,
                            actor_id: int | None, via: str) -> tuple[str, RegistrationInvite]:
    """Create an invite and record it in the administrators' change log (the secret is never logged)."""
    token, invite = create_invite(session, hours=hours, label=label)
    record_admin(session, actor_id, via, AdminAction.REGISTRATION_LINK.value, target_type="registration_invite",
                 target_id=invite.id, summary=f"Registration link{f' ({invite.label})' if invite.label else ''} valid "
                                              f"until {clock.shown_time(invite.expires_at)}")
    return registration_url(base_url, token), invite


def recent_invites(session: Session, limit: int = 10) -> list[tuple[RegistrationInvite, str | None]]:
    """The newest invites with the name of the platform each registered (None while unused)."""
    rows = session.execute(select(RegistrationInvite, Platform.name)
                           .outerjoin(Platform, Platform.id == RegistrationInvite.platform_id)
                           .order_by(RegistrationInvite.id.desc()).limit(limit)).all()
    return [(invite, name) for invite, name in rows]


def registration_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/lti/register?{INVITE_PARAM}={token}"


_NO_INVITE = ("Registering Caseload needs a registration link from your Caseload administrator (created with "
              "'caseload platform registration-url'). Start the registration in the LMS again with that link.")


def _valid_invite(session: Session, token: str | None) -> RegistrationInvite:
    if not token:
        raise RegistrationFailed(_NO_INVITE, 403)
    invite = session.scalars(select(RegistrationInvite)
                             .where(RegistrationInvite.token_sha256 == _invite_hash(token))).one_or_none()
    if invite is None:
        raise RegistrationFailed("This registration link is not one Caseload issued; ask your Caseload "
                                 "administrator for a new one.", 403)
    if invite.used_at is not None:
        raise RegistrationFailed("This registration link has already been used; each link registers one LMS. Ask "
                                 "your Caseload administrator for a new one.", 403)
    if invite.expires_at <= utcnow():
        raise RegistrationFailed("This registration link has expired; ask your Caseload administrator for a new "
                                 "one.", 403)
    return invite


def _spend_invite(session: Session, invite: RegistrationInvite, platform: Platform) -> None:
    """Mark the invite used by this registration, in the registration's transaction (a failed registration does
    not spend it). Of two registrations racing with one link, the second finds it spent."""
    spent = session.execute(update(RegistrationInvite)
                            .where(RegistrationInvite.id == invite.id, RegistrationInvite.used_at.is_(None))
                            .values(used_at=utcnow(), platform_id=platform.id)
                            .execution_options(synchronize_session=False))
    if getattr(spent, "rowcount", 0) != 1:
        raise RegistrationFailed("This registration link has just been used by another registration.", 409)


def _lms_family(config: dict[str, Any]) -> str:
    code = str((config.get(PLATFORM_CONFIG) or {}).get("product_family_code", "")).lower()
    return "canvas" if code == "canvas" else "moodle" if code == "moodle" else "generic"


def register(session: Session, base_url: str, openid_configuration: str, registration_token: str | None,
             invite_token: str | None, http: HttpClient | None = None, page_origin: str | None = None) -> Registered:
    """``page_origin``: the origin of the LMS page that opened the registration link in its frame (its ``Referer``);
    stored as one of the platform's framing origins once the registration succeeded (the invite vouches for the
    administrator's browser), so that launches from that LMS host are shown in its frames."""
    invite = _valid_invite(session, invite_token)  # before anything is fetched from the URL we were given
    http = http or HttpClient(timeout=10, retries=1)
    if not openid_configuration.startswith(("https://", "http://")):
        raise RegistrationFailed("The LMS did not give a valid openid_configuration URL.")
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        config = http.get_json(openid_configuration, headers=headers)
    except HttpError as exc:
        raise RegistrationFailed(f"Caseload could not read the LMS's configuration ({exc}).", 502) from None
    if not isinstance(config, dict):
        raise RegistrationFailed("The LMS's OpenID configuration is not a JSON object.", 502)
    issuer = str(config.get("issuer") or "")
    if not issuer or not openid_configuration.startswith(issuer):
        raise RegistrationFailed("The LMS's configuration names an issuer that does not match its address "
                                 "(Dynamic Registration 1.0 §3.5.1); registration refused.")
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
               if not config.get(k)]
    if missing:
        raise RegistrationFailed(f"The LMS's configuration lacks {', '.join(missing)}.", 502)
    lms = _lms_family(config)
    try:
        response = http.post(config["registration_endpoint"], json=tool_configuration(base_url, lms),
                             headers={**headers, "Content-Type": "application/json"})
        registered = response_json(response)
    except HttpError as exc:
        status = exc.status
        raise RegistrationFailed(f"The LMS refused the registration (HTTP {status or 'unreachable'}). If it "
                                 "took too long, start the registration again from the LMS.", 502) from None
    except ValueError:
        raise RegistrationFailed("The LMS answered the registration with something that is not JSON.", 502) from None
    client_id = str(registered.get("client_id") or "")
    if not client_id:
        raise RegistrationFailed("The LMS did not return a client_id for Caseload.", 502)
    if session.scalar(select(Platform.id).where(Platform.issuer == issuer, Platform.client_id == client_id)):
        raise RegistrationFailed("This LMS registration (issuer and client ID) is already known to Caseload.", 409)
    deployment_id = (registered.get(TOOL_CONFIG) or {}).get("deployment_id")
    host = urlsplit(issuer).netloc.replace(":", "-") or "lms"
    name = f"{host}-{client_id}"[:100]
    webhook_secret = secrets.token_urlsafe(32) if lms == "moodle" else None
    platform = Platform(name=name, lms=lms, issuer=issuer, client_id=client_id,
                        auth_login_url=config["authorization_endpoint"], auth_token_url=config["token_endpoint"],
                        keyset_url=config["jwks_uri"], status="active",
                        settings={"registered_by": "dynamic_registration"},
                        webhook_secret_encrypted=cipher().encrypt(webhook_secret) if webhook_secret else None)
    session.add(platform)
    session.flush()
    if deployment_id:
        session.add(Deployment(platform_id=platform.id, deployment_id=str(deployment_id), status="active",
                               approved_at=utcnow()))
    session.flush()
    _spend_invite(session, invite, platform)
    if page_origin and page_origin != framing.origin_of_url(base_url):
        framing.learn(session, platform.id, [page_origin], "registration")
    log.info("dynamic registration stored platform %s (%s) with invite %s", platform.id, lms, invite.id)
    return Registered(platform, str(deployment_id) if deployment_id else None, webhook_secret)

"""Registering LMS platforms and their deployments (by CLI or admin page), validated before anything is
written: a district IT admin gets a sentence, never an IntegrityError."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.vocab import DeploymentStatus, LmsFamily
from lti_app.models import Deployment, Platform


class PlatformInvalid(ValueError):
    pass


@dataclass(frozen=True)
class NewPlatform:
    name: str
    lms: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    keyset_url: str
    deployment_ids: tuple[str, ...] = ()
    live_events_keyset_url: str | None = None
    webhook_secret: str | None = None


def _check_url(label: str, url: str | None, required: bool = True) -> None:
    if not url:
        if required:
            raise PlatformInvalid(f"{label} is required.")
        return
    parts = urlsplit(url)
    production = current_app.config["CASELOAD"].env == "production"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise PlatformInvalid(f"{label} must be a full URL (https://...), not {url!r}.")
    if production and parts.scheme != "https":
        raise PlatformInvalid(f"{label} must use https in production.")


def add_platform(session: Session, new: NewPlatform) -> tuple[Platform, str | None]:
    """Validate and add. Returns the platform and, for Moodle, the webhook secret to give the companion plugin
    (generated when none was given; shown once, stored encrypted)."""
    if not new.name or not new.name.replace("-", "").replace("_", "").isalnum() or len(new.name) > 100:
        raise PlatformInvalid("The name must be letters, digits, '-' or '_' (it appears in webhook URLs).")
    if new.lms not in {f.value for f in LmsFamily}:
        raise PlatformInvalid("--lms must be canvas, moodle or generic.")
    if not new.client_id:
        raise PlatformInvalid("The client ID is required (the LMS shows it when you register the tool).")
    for label, url in (("The issuer", new.issuer), ("The auth login URL", new.auth_login_url),
                       ("The auth token URL", new.auth_token_url), ("The keyset URL", new.keyset_url)):
        _check_url(label, url)
    _check_url("The live events keyset URL", new.live_events_keyset_url, required=False)
    if session.scalar(select(Platform.id).where(Platform.name == new.name)):
        raise PlatformInvalid(f"A platform named {new.name!r} already exists.")
    if session.scalar(select(Platform.id).where(Platform.issuer == new.issuer, Platform.client_id == new.client_id)):
        raise PlatformInvalid("This issuer and client ID are already registered.")
    secret = new.webhook_secret or (secrets.token_urlsafe(32) if new.lms == LmsFamily.MOODLE.value else None)
    platform = Platform(name=new.name, lms=new.lms, issuer=new.issuer.rstrip("/") if new.lms != "canvas" else new.issuer,
                        client_id=new.client_id, auth_login_url=new.auth_login_url, auth_token_url=new.auth_token_url,
                        keyset_url=new.keyset_url, live_events_keyset_url=new.live_events_keyset_url,
                        webhook_secret_encrypted=cipher().encrypt(secret) if secret else None, status="active",
                        settings={})
    session.add(platform)
    session.flush()
    for dep in dict.fromkeys(new.deployment_ids):
        session.add(Deployment(platform_id=platform.id, deployment_id=dep, status=DeploymentStatus.ACTIVE.value,
                               approved_at=utcnow()))
    session.flush()
    from lti_app.security import invalidate_frame_cache

    invalidate_frame_cache()
    return platform, (secret if not new.webhook_secret else None)


def set_deployment_status(session: Session, platform_name: str, deployment_id: str, status: str) -> Deployment:
    platform = session.scalars(select(Platform).where(Platform.name == platform_name)).one_or_none()
    if platform is None:
        raise PlatformInvalid(f"No platform is named {platform_name!r} (see `caseload platform list`).")
    dep = session.scalars(select(Deployment).where(Deployment.platform_id == platform.id,
                                                   Deployment.deployment_id == deployment_id)).one_or_none()
    if dep is None:
        dep = Deployment(platform_id=platform.id, deployment_id=deployment_id)
        session.add(dep)
    dep.status = status
    if status == DeploymentStatus.ACTIVE.value:
        dep.approved_at = utcnow()
    session.flush()
    return dep


def configure_webhooks(session: Session, platform_name: str, *, live_events_keyset_url: str | None = None,
                       new_secret: bool = False, secret: str | None = None,
                       canvas_root_account_uuid: str | None = None) -> tuple[Platform, str | None]:
    """Set a platform's Live Events key set URL and/or give it a new webhook secret (generated unless given).
    Returns the platform and the generated secret (to show once). The caller commits."""
    platform = session.scalars(select(Platform).where(Platform.name == platform_name)).one_or_none()
    if platform is None:
        raise PlatformInvalid(f"No platform named '{platform_name}'.")
    if live_events_keyset_url is not None:
        _check_url("The live events keyset URL", live_events_keyset_url or None, required=False)
        platform.live_events_keyset_url = live_events_keyset_url or None
    if canvas_root_account_uuid is not None:
        from lti_app.services.platforms.canvas_account import clean_uuid

        if platform.lms != "canvas":
            raise PlatformInvalid("Only Canvas platforms have a Canvas root account.")
        uuid = clean_uuid(canvas_root_account_uuid)
        if uuid is None:
            raise PlatformInvalid("A Canvas root account uuid is 16 to 64 letters and digits (Canvas shows 40).")
        platform.canvas_root_account_uuid = uuid
    generated = None
    if new_secret or secret:
        if secret is not None and len(secret) < 24:
            raise PlatformInvalid("A webhook secret must be at least 24 characters.")
        generated = None if secret else secrets.token_urlsafe(32)
        platform.webhook_secret_encrypted = cipher().encrypt(secret or generated or "")
    return platform, generated


"""Tenancy: which LMS platforms may launch Caseload, their deployments, and the tool's own keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, JSONType, UTCDateTime, utcnow


class Platform(Base):
    """One LTI 1.3 registration: an issuer plus the client_id it gave Caseload (LTI Core 1.3 §3.1.3).

    An issuer may register Caseload several times (several client_ids), hence unique (issuer, client_id).
    """

    __tablename__ = "platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    """Short admin-chosen name used in URLs (webhooks) and the CLI."""
    lms: Mapped[str] = mapped_column(String(20))
    """canvas | moodle | generic (``LmsFamily``)."""
    issuer: Mapped[str] = mapped_column(String(500))
    """The ``iss`` claim the platform puts in its id_tokens."""
    client_id: Mapped[str] = mapped_column(String(255))
    """The OAuth2 client id the platform issued to Caseload; must be in the id_token ``aud``."""
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    """The platform's OIDC authorization endpoint (where /lti/login redirects)."""
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    """The platform's OAuth2 token endpoint (client-credentials for NRPS)."""
    auth_audience: Mapped[str | None] = mapped_column(String(1000))
    """``aud`` for client assertions when the platform wants something other than the token URL."""
    keyset_url: Mapped[str] = mapped_column(String(1000))
    """The platform's JWKS URL, for id_token signatures."""
    live_events_keyset_url: Mapped[str | None] = mapped_column(String(1000))
    """Canvas only: the JWKS that signs Live Events payloads."""
    webhook_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Moodle companion plugin HMAC secret, encrypted with the data keys."""
    canvas_root_account_uuid: Mapped[str | None] = mapped_column(String(64))
    """Canvas only: the root account this registration belongs to (``$vnd.Canvas.root_account.uuid``, learned from
    the first launch, or set by an administrator). Live Events are accepted only with this ``root_account_uuid``:
    Instructure-hosted Canvas instances may share the signing key set."""
    status: Mapped[str] = mapped_column(String(20), default="active")
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    """LMS-specific extras (OneRoster endpoint, Canvas API host, ...)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(back_populates="platform", cascade="all, delete-orphan")
    frame_origins: Mapped[list[PlatformFrameOrigin]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", order_by="PlatformFrameOrigin.origin")


class PlatformFrameOrigin(Base):
    """An origin whose pages may frame Caseload for this platform (CSP ``frame-ancestors``), besides its issuer and
    login URL origins. Canvas's issuer is never the course page's host (the district's ``*.instructure.com`` host or a
    vanity domain), so these are learned from trusted sources: a validated launch (``launch_presentation.return_url``,
    Canvas ``$Canvas.api.domain``), the page that started Dynamic Registration, or an administrator."""

    __tablename__ = "platform_frame_origins"
    __table_args__ = (UniqueConstraint("platform_id", "origin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(300))
    """``scheme://host[:port]``, lower case, no path (what CSP source expressions and ``Origin`` headers compare)."""
    source: Mapped[str] = mapped_column(String(20))
    """launch | registration | admin: where Caseload learned it."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="frame_origins")


class Deployment(Base):
    """An LTI deployment of a registration (LTI Core 1.3 §3.1.3). Unknown ones start ``pending``."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class ToolKey(Base):
    """Caseload's own RSA signing keys (served at /lti/jwks). One ``current``, at most one ``next``."""

    __tablename__ = "tool_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    """PEM private key encrypted with the data keys (MultiFernet)."""
    public_jwk: Mapped[dict] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LaunchStateEntry(Base):
    """Short-lived OIDC launch state (state, nonce, launch data) as the launch kept it until 2026-12-03. Nothing
    writes it any more (the OIDC state is a signed value, docs/design-notes.md); the table stays, and is purged, so
    that a rollback to the previous version keeps working. A later migration can drop it."""

    __tablename__ = "launch_state"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONType)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class UsedNonce(Base):
    """Nonces of accepted id_tokens: a second launch with the same nonce is a replay (LTI Security §5.1.3)."""

    __tablename__ = "used_nonces"
    __table_args__ = (UniqueConstraint("platform_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PlatformKeysetCache(Base):
    """The last fetched JWKS of a platform URL, shared by all web processes."""

    __tablename__ = "keyset_cache"

    url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    keys: Mapped[dict] = mapped_column(JSONType)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RegistrationInvite(Base):
    """A one-time link with which an LMS administrator registers Caseload by LTI Dynamic Registration. Only the
    SHA-256 of its secret is stored; it is spent by the registration it allowed (``platform_id``)."""

    __tablename__ = "registration_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id", ondelete="SET NULL"))


__all__ = ["Deployment", "LaunchStateEntry", "Platform", "PlatformFrameOrigin", "PlatformKeysetCache",
           "RegistrationInvite", "ToolKey", "UsedNonce"]

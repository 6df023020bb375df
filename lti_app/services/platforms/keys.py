"""Caseload's own signing keys (served at /lti/jwks): one ``current`` key signs, one ``next`` key is already
published so platforms that cache our JWKS know it before it is used; rotation promotes next to current.

Private keys are stored encrypted with the data keys; the public JWK is stored beside them."""

from __future__ import annotations

import json
import logging
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import cipher
from lti_app.db import utcnow
from lti_app.domain.vocab import KeyState
from lti_app.models import ToolKey

log = logging.getLogger(__name__)
KEY_BITS = 2048


def _new_key(state: KeyState) -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    kid = secrets.token_urlsafe(16)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return ToolKey(kid=kid, private_key_encrypted=cipher().encrypt(pem), public_jwk=jwk, state=state.value,
                   activated_at=utcnow() if state is KeyState.CURRENT else None)


def ensure_keys(session: Session) -> None:
    """Create the current and next keys on first need, committed in their own transaction so that a key
    used to sign something is always the one published (the caller's transaction may roll back)."""
    states = set(session.scalars(select(ToolKey.state).where(ToolKey.state != KeyState.RETIRED.value)))
    if KeyState.CURRENT.value in states and KeyState.NEXT.value in states:
        return
    from flask import current_app

    with current_app.extensions["caseload.sessionmaker"]() as own:
        states = set(own.scalars(select(ToolKey.state).where(ToolKey.state != KeyState.RETIRED.value)))
        if KeyState.CURRENT.value not in states:
            own.add(_new_key(KeyState.CURRENT))
            log.info("generated the current tool key")
        if KeyState.NEXT.value not in states:
            own.add(_new_key(KeyState.NEXT))
            log.info("generated the next tool key")
        own.commit()


def _one(session: Session, state: KeyState) -> ToolKey:
    """The oldest key in this state (two processes starting at once could both have created one)."""
    return session.scalars(select(ToolKey).where(ToolKey.state == state.value).order_by(ToolKey.id).limit(1)).one()


def jwks(session: Session) -> dict[str, list[dict]]:
    ensure_keys(session)
    rows = session.scalars(select(ToolKey).where(ToolKey.state.in_([KeyState.CURRENT.value, KeyState.NEXT.value]))
                           .order_by(ToolKey.state)).all()
    return {"keys": [dict(r.public_jwk) for r in rows]}


def current_key(session: Session) -> tuple[str, bytes]:
    """(kid, private PEM) of the key that signs Caseload's client assertions."""
    ensure_keys(session)
    row = _one(session, KeyState.CURRENT)
    return row.kid, cipher().decrypt(row.private_key_encrypted).encode()


def rotate(session: Session) -> tuple[str, str]:
    """next -> current, current -> retired, and a new next. Returns (new current kid, new next kid)."""
    ensure_keys(session)
    now = utcnow()
    current = _one(session, KeyState.CURRENT)
    nxt = _one(session, KeyState.NEXT)
    current.state, current.retired_at = KeyState.RETIRED.value, now
    nxt.state, nxt.activated_at = KeyState.CURRENT.value, now
    new_next = _new_key(KeyState.NEXT)
    session.add(new_next)
    session.flush()
    log.info("rotated tool keys: current=%s next=%s", nxt.kid, new_next.kid)
    return nxt.kid, new_next.kid

"""Verification of pushed payloads: JWTs signed by a platform key set (Canvas Live Events, "Sign Payload"), and
HMAC-SHA256 signatures over ``timestamp + "." + body`` (the Caseload companion plugin for Moodle).

No app code here: callers give the key set URL, the secret and the clock. Errors carry a reason that is safe to
send back to the sender (never a key, a secret or a payload value).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.algorithms import RSAAlgorithm

from integrations.http import HttpClient, HttpError

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512")
REFETCH_MIN_SECONDS = 5.0
"""An unknown kid refetches the key set at most this often per URL (a flood of made-up kids is not a flood of
requests to the platform)."""


class SignatureInvalid(Exception):
    """The payload's signature does not verify; ``reason`` says why."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class KeysetUnavailable(SignatureInvalid):
    """The key set could not be fetched: the sender should retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status=503)


class KeysetVerifier:
    """Verifies compact JWS tokens against a JWKS URL. Keys are cached per URL for ``cache_seconds`` and the set is
    refetched once when a token names a kid the cached set lacks. Thread-safe; one per process."""

    def __init__(self, http: HttpClient | None = None, cache_seconds: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http or HttpClient(timeout=5.0, retries=1)
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, dict[str, Any]]] = {}
        self._last_fetch: dict[str, float] = {}
        self.fetches = 0

    def verify(self, token: str, keyset_url: str, leeway: float = 60.0) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignatureInvalid("the body is not a signed JWT (compact JWS)") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise SignatureInvalid(f"the JWT algorithm '{alg}' is not accepted (RSA signatures only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise SignatureInvalid("the JWT header names no key (kid)")
        key = self._key(keyset_url, kid)
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], leeway=leeway,
                                options={"verify_aud": False, "verify_iss": False, "require": []})
        except jwt.ExpiredSignatureError:
            raise SignatureInvalid("the signed payload has expired") from None
        except jwt.InvalidSignatureError:
            raise SignatureInvalid("the signature does not verify with the platform's key") from None
        except jwt.PyJWTError as exc:
            raise SignatureInvalid(f"the signed payload is not valid ({type(exc).__name__})") from None
        if not isinstance(claims, dict):
            raise SignatureInvalid("the signed payload is not a JSON object", status=400)
        return claims

    def _key(self, url: str, kid: str) -> Any:
        now = self._clock()
        with self._lock:
            cached = self._sets.get(url)
            if cached is not None and now - cached[0] < self.cache_seconds and kid in cached[1]:
                return cached[1][kid]
            stale = cached is None or now - cached[0] >= self.cache_seconds
            if not stale and now - self._last_fetch.get(url, -1e9) < REFETCH_MIN_SECONDS:
                raise SignatureInvalid("the JWT names a key (kid) the platform's key set does not have")
            keys = self._fetch(url)
            self._sets[url] = (now, keys)
            self._last_fetch[url] = now
        if kid not in keys:
            raise SignatureInvalid("the JWT names a key (kid) the platform's key set does not have")
        return keys[kid]

    def _fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        try:
            body = self._http.get_json(url)
        except HttpError:
            log.warning("key set fetch failed for %s", urlsplit(url).netloc)
            raise KeysetUnavailable("the platform's key set could not be fetched; try again later") from None
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise KeysetUnavailable("the platform's key set is not a JSON Web Key Set")
        keys: dict[str, Any] = {}
        for jwk in body["keys"]:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                keys[str(jwk["kid"])] = RSAAlgorithm.from_jwk(jwk)
            except (jwt.PyJWTError, ValueError, KeyError, TypeError):
                continue
        log.info("fetched key set from %s (%s keys)", urlsplit(url).netloc, len(keys))
        return keys


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``timestamp + "." + body`` (what the Moodle plugin sends as X-Caseload-Signature)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_hmac(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
                window_seconds: int = 300) -> None:
    """Raise SignatureInvalid unless ``signature`` is the HMAC of this body at a timestamp within the window."""
    if not timestamp or not signature:
        raise SignatureInvalid("X-Caseload-Timestamp and X-Caseload-Signature headers are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureInvalid("X-Caseload-Timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > window_seconds:
        raise SignatureInvalid(f"the timestamp is more than {window_seconds // 60} minutes from Caseload's clock; "
                               "check the Moodle server's time")
    given = signature.strip()
    if given.startswith("sha256="):
        given = given[len("sha256="):]
    expected = hmac_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureInvalid("the signature does not match (check the webhook secret in the Moodle plugin)")

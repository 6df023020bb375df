"""LTI Advantage service access tokens: OAuth2 client credentials with a signed JWT client assertion.

1EdTech Security Framework 1.0 §4.1 (and LTI Advantage services, e.g. NRPS 2.0 §2.1): the tool POSTs
``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``,
a ``client_assertion`` JWT it signs with its own private key (RS256, ``kid`` of a key in its published JWKS,
``iss`` = ``sub`` = the client_id, ``aud`` = the platform's token endpoint or the audience the platform names,
short ``exp``, unique ``jti``) and the space-separated ``scope`` it wants. The platform answers with a bearer
token and ``expires_in``.

Tokens are cached until their expiry minus a margin (Security Framework §4.1.2 expects tools to reuse a token
until it expires; Canvas documents that one token serves every course of the registration). The cache key
includes the signing key id, so a key rotation simply obtains a new token.

Pure: no Flask, no database. The signing key comes from a callable (the app passes the current tool key).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from integrations.http import HttpClient, HttpError, response_json

log = logging.getLogger(__name__)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""Security Framework §4.1.1 / RFC 7523 §2.2."""
ASSERTION_LIFETIME_SECONDS = 300
"""How long a client assertion is valid. Short: it is used once, immediately."""
DEFAULT_MARGIN_SECONDS = 60
"""A cached token is not used in its last minute, so it never expires in flight."""


@dataclass(frozen=True)
class SigningKey:
    """The tool key that signs client assertions: its ``kid`` (published in the tool JWKS) and PEM."""

    kid: str
    private_pem: bytes


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float
    scopes: frozenset[str]


class TokenRequestError(Exception):
    """The platform refused (or could not answer) the token request. ``reason`` is readable by an LMS admin."""

    def __init__(self, reason: str, *, error: str | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.status = status


def build_client_assertion(*, client_id: str, audience: str, key: SigningKey, now: float | None = None,
                           lifetime: int = ASSERTION_LIFETIME_SECONDS) -> str:
    """The signed JWT the tool authenticates with (Security Framework §4.1.1)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": f"{uuid.uuid4()}-{secrets.token_hex(4)}",
    }
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})


class TokenCache:
    """Process-wide token cache, safe to share between threads. Holds only unexpired tokens."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], now: float, margin: float) -> AccessToken | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                return None
            if token.expires_at - margin <= now:
                del self._tokens[key]
                return None
            return token

    def put(self, key: tuple[str, ...], token: AccessToken) -> None:
        with self._lock:
            self._tokens[key] = token

    def discard(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


class LtiTokenClient:
    """Obtains (and caches) access tokens from one platform's token endpoint for one client_id."""

    def __init__(self, http: HttpClient, *, token_url: str, client_id: str, key_provider: Callable[[], SigningKey],
                 audience: str | None = None, cache: TokenCache | None = None,
                 margin_seconds: float = DEFAULT_MARGIN_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self.token_url = token_url
        self.client_id = client_id
        self.audience = audience or token_url
        self._key_provider = key_provider
        self._cache = cache if cache is not None else TokenCache()
        self._margin = margin_seconds
        self._clock = clock
        self.requests_made = 0

    def _cache_key(self, scopes: frozenset[str], kid: str) -> tuple[str, ...]:
        return (self.token_url, self.client_id, self.audience, kid, " ".join(sorted(scopes)))

    def token(self, scopes: Iterable[str], *, fresh: bool = False) -> str:
        """A bearer token for ``scopes``: the cached one unless ``fresh`` or it is about to expire."""
        wanted = frozenset(scopes)
        key = self._key_provider()
        cache_key = self._cache_key(wanted, key.kid)
        now = self._clock()
        if fresh:
            self._cache.discard(cache_key)
        else:
            cached = self._cache.get(cache_key, now, self._margin)
            if cached is not None:
                return cached.value
        token = self._request(wanted, key, now)
        self._cache.put(cache_key, token)
        return token.value

    def _request(self, scopes: frozenset[str], key: SigningKey, now: float) -> AccessToken:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": build_client_assertion(client_id=self.client_id, audience=self.audience, key=key,
                                                       now=now),
            "scope": " ".join(sorted(scopes)),
        }
        self.requests_made += 1
        try:
            response = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except HttpError as exc:
            raise _token_error(exc) from None
        try:
            body: Any = response_json(response)
        except ValueError:
            raise TokenRequestError("The LMS token endpoint did not answer with JSON.") from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not value or not isinstance(value, str):
            raise TokenRequestError("The LMS token endpoint answered without an access_token.")
        try:
            expires_in = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        granted = frozenset(str(body.get("scope") or " ".join(scopes)).split())
        log.info("access token obtained from %s for client %s (expires in %ss)", self.token_url, self.client_id,
                 int(expires_in))
        return AccessToken(value=value, expires_at=now + expires_in, scopes=granted)


def _token_error(exc: HttpError) -> TokenRequestError:
    """Turn the platform's OAuth2 error (RFC 6749 §5.2) into words an LMS admin can act on."""
    status = exc.status
    error = None
    body = exc.body_json()
    if isinstance(body, dict):
        error = str(body.get("error") or "") or None
    if error == "invalid_scope":
        reason = ("The LMS refused the roster scope. In the LMS, allow the Names and Role Provisioning scope "
                  "(contextmembership.readonly) for Caseload's registration or developer key.")
    elif error in ("invalid_client", "unauthorized_client") or status == 401:
        reason = ("The LMS did not accept Caseload's signed client assertion. Check that the registration's "
                  "client ID is right and that the LMS uses Caseload's current key set (/lti/jwks).")
    elif status is None:
        reason = "The LMS token endpoint could not be reached."
    else:
        reason = f"The LMS token endpoint refused the request (HTTP {status}{', ' + error if error else ''})."
    return TokenRequestError(reason, error=error, status=status)

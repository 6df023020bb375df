"""pylti1p3 wired to Caseload's database, with the checks the library leaves to the tool.

pylti1p3 gives us registration/deployment lookup, the JWKS handling, the signature check and its message
validators. On top of it we enforce (LTI Core 1.3 §5.1.3 and the 1EdTech Security Framework §5.1.3):
- RS256 only, checked on the JWT header before anything else (no ``none``, no HS*);
- the OIDC ``state`` is a value Caseload signed at login (HMAC-SHA256 under the app secret, 5-minute lifetime,
  naming the registration the login was for), and it must come back in the browser that started the login
  (its cookie, or LTI platform storage); nothing is stored for a login;
- the ``nonce`` is an HMAC of that state, so an id_token is only accepted with the login it was issued for,
  and it is single-use across all processes (``UsedNonce`` unique row): a replayed id_token is refused even
  in the same browser within its lifetime;
- ``aud`` contains our client_id, and ``azp`` equals it when ``aud`` has several values;
- ``exp``/``iat`` with a configurable leeway (60 s by default);
- ``target_link_uri`` is our own launch URL; version 1.3.0; message type LtiResourceLinkRequest;
- unknown deployments of a known registration are recorded as ``pending`` and refused until approved.
The platform JWKS is cached in the database (all processes) and refetched once on an unknown kid.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from flask import Response, current_app, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from jwt.algorithms import RSAAlgorithm
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.contrib.flask.cookie import FlaskCookieService
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import Integer, String, and_, bindparam, cast, exists, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.http import response_json
from lti_app.db import dialect_insert, utcnow
from lti_app.domain.vocab import DeploymentStatus, PlatformStatus
from lti_app.lti.context import CLAIM, NRPS_CLAIM, RESOURCE_LINK_REQUEST, LaunchContext, from_claims
from lti_app.lti.errors import LaunchError, PendingDeployment, ReplayedLaunch, UnknownPlatform
from lti_app.lti.registry_cache import RegisteredPlatform, RegistryCache, registry_cache
from lti_app.models import Deployment, Platform, PlatformKeysetCache, UsedNonce

log = logging.getLogger(__name__)

ALLOWED_ALGS = ("RS256",)
# Per-process copy of the shared (database) JWKS cache: url -> (monotonic fetch time, keys).
_PROCESS_KEYSETS: dict[str, tuple[float, Any]] = {}
# (keyset URL, kid, alg) -> (loaded public key, alg) of keys already converted in this process.
_PEM_CACHE: dict[tuple[str, str, str], tuple[Any, str]] = {}
STATE_LIFETIME = 300


# --- OIDC state: a signed value, nothing stored -------------------------------------------------------------

_STATE_SALT = "caseload.oidc-state"
_NONCE_LABEL = b"caseload.oidc-nonce\x00"
# secret key -> TimestampSigner (deriving the signing key costs a hash per call otherwise).
_SIGNERS: dict[str, TimestampSigner] = {}


def _state_signer() -> TimestampSigner:
    secret = current_app.config["CASELOAD"].secret_key
    signer = _SIGNERS.get(secret)
    if signer is None:
        signer = _SIGNERS[secret] = TimestampSigner(secret, salt=_STATE_SALT, digest_method=hashlib.sha256)
    return signer


def new_state(platform_id: int) -> str:
    """A fresh OIDC ``state``: ``<platform id>.<128 random bits>.<time>.<HMAC-SHA256>`` under the app secret
    (salted apart from app tokens). Unforgeable, unique, and it carries its own issue time; see
    docs/design-notes.md, "OIDC state without a table"."""
    return _state_signer().sign(f"{platform_id}.{secrets.token_urlsafe(16)}").decode()


def read_state(state: str, max_age: int = STATE_LIFETIME) -> int:
    """The platform id a state was issued for; LaunchError when it is not ours, malformed or expired."""
    try:
        value = _state_signer().unsign(state, max_age=max_age).decode()
    except SignatureExpired:
        raise LaunchError("The launch took longer than five minutes to come back from the LMS (the login state "
                          "expired). Start again from the course.") from None
    except BadSignature:
        raise LaunchError(_REASONS["State not found"]) from None
    platform_id, _, _random = value.partition(".")
    if not platform_id.isdigit():
        raise LaunchError(_REASONS["State not found"])
    return int(platform_id)


def nonce_for(state: str) -> str:
    """The nonce sent with ``state``: an HMAC of the state under the app secret. The id_token must echo it, which
    binds the token to the login this browser started; the ``used_nonces`` row makes it single-use."""
    key = current_app.config["CASELOAD"].secret_key.encode()
    digest = hmac.new(key, _NONCE_LABEL + state.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def state_cookie_name(state: str) -> str:
    return f"lti1p3-{state}"


def _set_state_cookie(response: Response, state: str) -> None:
    """State cookies that survive inside an LMS iframe: ``Secure; SameSite=None; Partitioned`` (CHIPS)."""
    secure = bool(current_app.config["CASELOAD"].secure_cookies)
    response.set_cookie(state_cookie_name(state), state, max_age=STATE_LIFETIME, path="/", httponly=True,
                        secure=secure, samesite="None" if secure else "Lax", partitioned=secure)


class _NoStorage(LaunchDataStorage[Any]):
    """pylti1p3 wants a storage; Caseload keeps nothing in one (state and nonce are checked before pylti1p3 runs,
    and a launch is never restored from storage: the app token replaces it)."""

    def get_session_cookie_name(self) -> str | None:
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        return None

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        raise AssertionError("Caseload's launch keeps no pylti1p3 storage")

    def check_value(self, key: str) -> bool:
        return False


# --- tool configuration from the database -------------------------------------------------------------------

_PLATFORM_COLUMNS = (Platform.id, Platform.lms, Platform.issuer, Platform.client_id, Platform.auth_login_url,
                     Platform.auth_token_url, Platform.auth_audience, Platform.keyset_url)
_ACTIVE_PLATFORMS = select(*_PLATFORM_COLUMNS).where(Platform.issuer == bindparam("iss"),
                                                      Platform.status == PlatformStatus.ACTIVE.value)
_ACTIVE_PLATFORMS_WITH_DEPLOYMENT = (
    select(*_PLATFORM_COLUMNS, Deployment.status)
    .outerjoin(Deployment, and_(Deployment.platform_id == Platform.id,
                                Deployment.deployment_id == bindparam("deployment_id")))
    .where(Platform.issuer == bindparam("iss"), Platform.status == PlatformStatus.ACTIVE.value)
    .order_by(Platform.id))


def _registration(platform: RegisteredPlatform) -> Registration:
    reg = Registration()
    reg.set_issuer(platform.issuer).set_client_id(platform.client_id)
    reg.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    reg.set_key_set_url(platform.keyset_url)
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    return reg


class DbToolConf(ToolConfAbstract[FlaskRequest]):
    """Registrations and deployments from the ``platforms`` and ``deployments`` tables: at most one statement per
    request (the launch reads the platforms of the issuer together with the status of the launch's deployment),
    none when ``cache`` holds them (``registry_cache``: a launch re-checks cached rows when it spends the nonce).
    ``cached`` says whether any row came from the cache, so a refusal can be re-decided from fresh rows."""

    def __init__(self, session: Session, deployment_id: str | None = None, cache: RegistryCache | None = None,
                 read_cache: bool = True, connection_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._db = session
        self._deployment_id = deployment_id
        self._cache = cache
        self._read_cache = read_cache
        self._connection_options = connection_options
        self.cached = False
        self.platform: RegisteredPlatform | None = None
        self._by_issuer: dict[str, list[RegisteredPlatform]] = {}

    def _platforms(self, iss: str) -> list[RegisteredPlatform]:
        if iss not in self._by_issuer:
            key = (iss, self._deployment_id)
            hit = self._cache.get(key) if self._cache is not None and self._read_cache else None
            if hit is not None:
                self.cached = True
                self._by_issuer[iss] = list(hit)
                return self._by_issuer[iss]
            generation = self._cache.generation if self._cache is not None else 0
            rows: Any
            connection = self._db.connection(execution_options=self._connection_options)
            if self._deployment_id is None:
                rows = connection.execute(_ACTIVE_PLATFORMS, {"iss": iss}).all()
            else:
                rows = connection.execute(_ACTIVE_PLATFORMS_WITH_DEPLOYMENT,
                                          {"iss": iss, "deployment_id": self._deployment_id}).all()
            self._by_issuer[iss] = [RegisteredPlatform(*row) for row in rows]
            if self._cache is not None:
                self._cache.put(key, tuple(self._by_issuer[iss]), generation)
        return self._by_issuer[iss]

    def check_iss_has_one_client(self, iss: str) -> bool:
        return len(self._platforms(iss)) == 1

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return len(self._platforms(iss)) > 1

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration | None:  # type: ignore[override]
        platforms = self._platforms(iss)
        if len(platforms) != 1:
            return None
        self.platform = platforms[0]
        return _registration(self.platform)

    def find_registration_by_params(  # type: ignore[override]
            self, iss: str, client_id: str | None, *args: Any, **kwargs: Any) -> Registration | None:
        for platform in self._platforms(iss):
            if client_id is not None and platform.client_id == client_id:
                self.platform = platform
                return _registration(platform)
        return None

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        return self._deployment(deployment_id)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str | None, *args: Any,
                                  **kwargs: Any) -> LtiDeployment | None:
        return self._deployment(deployment_id)

    def _deployment(self, deployment_id: str) -> LtiDeployment | None:
        if self.platform is None or deployment_id != self._deployment_id:
            return None
        if self.platform.deployment_status == DeploymentStatus.ACTIVE.value:
            return LtiDeployment().set_deployment_id(deployment_id)
        return None


# --- login ----------------------------------------------------------------------------------------------------

def launch_url() -> str:
    return current_app.config["CASELOAD"].base_url + "/lti/launch"


def login(session: Session, storage_origins: Callable[[RegisteredPlatform, str], list[str]] | None = None) -> Response:
    """Third-party initiated login (LTI Core 1.3 §5.1.1): redirect to the platform's auth endpoint with a signed
    state (also set as a cookie in this browser) and the nonce derived from it. Nothing is written.

    ``storage_origins(platform, lti_storage_target)`` names the origins the platform-storage page may post the state
    to (the caller knows the platform's framing origins); an empty list means that page could not be shown in this
    LMS frame, and the login redirects at once (the state cookie alone binds the browser)."""
    params = request.form if request.method == "POST" else request.args
    for required in ("iss", "login_hint", "target_link_uri"):
        if not params.get(required):
            raise LaunchError(f"The LMS did not send '{required}' when starting the launch. Check the tool's "
                              "login URL in the LMS registration.")
    iss = params["iss"]
    client_id = params.get("client_id")
    # The login only reads: a cached registration (registry_cache) or one statement outside a transaction (no
    # BEGIN and COMMIT round trips). A refusal is never decided from cached rows alone.
    cache = registry_cache()
    conf = DbToolConf(session, cache=cache, connection_options=_AUTOCOMMIT)
    try:
        platform = _login_platform(conf, iss, client_id)
    except LaunchError:
        if not conf.cached:
            raise
        cache.forget(iss)
        platform = _login_platform(DbToolConf(session, cache=cache, read_cache=False, connection_options=_AUTOCOMMIT),
                                   iss, client_id)
    target = params["target_link_uri"]
    if not _same_url(target, launch_url()):
        raise LaunchError("The launch was addressed to a different tool URL than Caseload's "
                          f"({launch_url()}). Check the target link URI in the LMS registration.")
    state = new_state(platform.id)
    # The authentication request of LTI Core 1.3 §5.1.1.2 (the parameters pylti1p3's OIDC login sends).
    auth_params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
                   "client_id": platform.client_id, "redirect_uri": launch_url(), "state": state,
                   "nonce": nonce_for(state), "login_hint": params["login_hint"]}
    if params.get("lti_message_hint"):
        auth_params["lti_message_hint"] = params["lti_message_hint"]
    redirect_url = platform.auth_login_url + ("&" if "?" in platform.auth_login_url else "?") + urlencode(auth_params)
    storage_target = params.get("lti_storage_target")
    origins = (storage_origins(platform, storage_target) if storage_origins is not None else
               [_origin_of(platform.auth_login_url)]) if storage_target else []
    if storage_target and origins:
        # LTI Client Side postMessages (platform storage): also keep the state in the LMS's storage, for browsers
        # that drop even partitioned third-party cookies. The page stores it, then continues to the LMS.
        from flask import render_template

        response = current_app.make_response(render_template(
            "lti/storage_login.html", target=storage_target, key=f"state_{state}", value=state,
            origins=origins, redirect_url=redirect_url))
    else:
        response = current_app.make_response(("", 302, {"Location": redirect_url}))
    _set_state_cookie(response, state)
    return response


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _login_platform(conf: DbToolConf, iss: str, client_id: str | None) -> RegisteredPlatform:
    """The registration a login is for: the issuer's only one, or the one with the login's client_id."""
    platforms = conf._platforms(iss)
    if not platforms:
        raise UnknownPlatform()
    if len(platforms) > 1 and not client_id:
        raise LaunchError("This LMS has several Caseload registrations but did not say which one (client_id) "
                          "when starting the launch.")
    platform = next((p for p in platforms if p.client_id == client_id), None) if client_id else platforms[0]
    if platform is None:
        raise UnknownPlatform("This LMS registration (client ID) is not known to Caseload. Ask your Caseload "
                              "administrator to register it.")
    return platform


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "*"


class NeedsPlatformStorageCheck(Exception):
    """The state cookie is missing but the LMS offers platform storage: check the state in the browser."""

    def __init__(self, target: str, state: str, origin: str) -> None:
        super().__init__("platform storage check")
        self.target, self.state, self.origin = target, state, origin


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


def _same_url(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower(), pa.path.rstrip("/")) == (pb.scheme, pb.netloc.lower(), pb.path.rstrip("/"))


# --- launch ---------------------------------------------------------------------------------------------------

def _b64json(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _peek(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = id_token.split(".")
    if len(parts) != 3:
        raise LaunchError("The id_token from the LMS is not a signed JWT.")
    try:
        return _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep to parse
        raise LaunchError("The id_token from the LMS could not be decoded.") from None


_OBJECT_CLAIMS = tuple(CLAIM + name for name in ("resource_link", "context", "lis", "custom", "tool_platform",
                                                   "launch_presentation")) + (NRPS_CLAIM,)
_STRING_CLAIMS = ("iss", "sub", "nonce", "azp", "name", "given_name", "family_name", "email") + tuple(
    CLAIM + name for name in ("deployment_id", "message_type", "version", "target_link_uri"))
_NESTED_VALUES: tuple[tuple[str, str, tuple[type, ...]], ...] = (
    (CLAIM + "resource_link", "id", (str, int)), (CLAIM + "context", "id", (str, int)),
    (NRPS_CLAIM, "context_memberships_url", (str,)))


def _check_claim_shapes(body: dict[str, Any]) -> None:
    """Refuse an id_token whose claims have JSON types LTI 1.3 does not allow (an object where a string belongs, a
    number for ``aud``...), before anything reads them: pylti1p3 and the roster code assume the shapes the
    specification gives. Runs on the unverified body; the signature is checked later, on well-formed tokens only."""

    def refuse(claim: str, kind: str) -> None:
        raise LaunchError(f"The id_token's '{claim.rsplit('/', 1)[-1]}' claim is not {kind}, as LTI 1.3 requires.")

    for claim in _OBJECT_CLAIMS:
        required = claim == CLAIM + "resource_link"  # a required claim: null is not an object either
        if (claim in body if required else body.get(claim) is not None) and not isinstance(body[claim], dict):
            refuse(claim, "an object")
    for claim in _STRING_CLAIMS:
        if body.get(claim) is not None and not isinstance(body[claim], str):
            refuse(claim, "a string")
    for claim, key, types in _NESTED_VALUES:
        value = (body.get(claim) or {}).get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            refuse(f"{claim}.{key}", "a string")
    aud = body.get("aud")
    if aud is not None and not isinstance(aud, str) and not (
            isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        refuse("aud", "a string or a list of strings")
    roles = body.get(CLAIM + "roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        refuse(CLAIM + "roles", "a list of strings")


class _CachedKeysMessageLaunch(FlaskMessageLaunch):
    """pylti1p3's launch validation (id_token format, registration, signature, deployment, message validators)
    with the JWKS from our shared cache, refetched once when the token's kid is not in the cached set. The state
    and the nonce are checked by ``validate_launch`` itself (signed state, nonce bound to it, single-use row)."""

    cache_seconds = 600
    db: Session

    def validate_state(self) -> _CachedKeysMessageLaunch:
        return self  # done before pylti1p3 runs: signed state, cookie or platform storage (validate_launch)

    def validate_nonce(self) -> _CachedKeysMessageLaunch:
        return self  # done by validate_launch: HMAC-bound to the state, and single-use (used_nonces)

    def fetch_public_key(self, key_set_url: str) -> Any:
        hit = _PROCESS_KEYSETS.get(key_set_url)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        row = self.db.get(PlatformKeysetCache, key_set_url)
        if row is not None:
            age = (utcnow() - row.fetched_at).total_seconds()
            if age < self.cache_seconds:
                _PROCESS_KEYSETS[key_set_url] = (time.monotonic() - age, row.keys)
                return row.keys
        return self._refetch(key_set_url)

    def _refetch(self, key_set_url: str) -> Any:
        try:
            resp = requests.get(key_set_url, timeout=5)
            resp.raise_for_status()
            keys = response_json(resp)
        except (requests.RequestException, ValueError):
            log.warning("platform JWKS fetch failed for %s", urlsplit(key_set_url).netloc)
            raise LaunchError("Caseload could not fetch the LMS's public keys (JWKS) to verify the launch. "
                              "Check the platform's keyset URL.", status=502) from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise LaunchError("The LMS's public key set (JWKS) is not valid JSON Web Key Set.", status=502)
        log.info("fetched platform JWKS from %s", urlsplit(key_set_url).netloc)
        _PROCESS_KEYSETS[key_set_url] = (time.monotonic(), keys)
        # One statement, whoever fetched first: two processes launching at once both fetch, and both store.
        table: Any = PlatformKeysetCache.__table__
        stmt = dialect_insert(self.db, table)
        stmt = stmt.on_conflict_do_update(index_elements=["url"], set_={"keys": stmt.excluded["keys"],
                                                                       "fetched_at": stmt.excluded.fetched_at})
        self.db.execute(stmt, {"url": key_set_url, "keys": keys, "fetched_at": utcnow()})
        return keys

    def save_launch_data(self) -> _CachedKeysMessageLaunch:
        """Caseload never restores a launch from storage (the app token replaces it), so the id_token body is not
        written anywhere, and no claims are kept at rest."""
        return self

    def get_public_key(self) -> tuple[Any, str]:
        """pylti1p3's lookup, memoised per process by (keyset URL, kid, alg), and the key loaded once: converting a
        JWK to PEM and parsing the PEM cost more than verifying the signature. An unknown kid refetches the keyset
        once."""
        assert self._registration is not None
        header = self._jwt.get("header", {})
        memo_key = (self._registration.get_key_set_url() or "", str(header.get("kid")), str(header.get("alg")))
        hit = _PEM_CACHE.get(memo_key)
        if hit is not None:
            return hit
        try:
            pem, alg = super().get_public_key()
        except LtiException as exc:
            if "Unable to find public key" not in str(exc):
                raise
            keys = self._refetch(self._registration.get_key_set_url() or "")
            self._registration.set_key_set(keys)
            pem, alg = super().get_public_key()
        if alg not in ALLOWED_ALGS:
            raise LtiException(f"Can't decode id_token: the key's algorithm {alg} is not allowed")
        result = (RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem), alg)
        _PEM_CACHE[memo_key] = result
        return result


# Never used for a request (the JWKS fetch is ours); saves pylti1p3 building a requests.Session per launch.
_UNUSED_HTTP = requests.Session()

_REASONS = {
    "State not found": "The launch could not be matched to a login started from this browser (state). "
                       "Your browser may block cookies inside the LMS frame: open Caseload in a new tab.",
    "Missing state param": "The LMS did not return the login state. Start the launch again from the course.",
    "Invalid Nonce": "The launch's nonce does not match a login started by Caseload. Start again from the course.",
    '"nonce" is empty': "The id_token has no nonce.",
    "Registration not found.": UnknownPlatform.default,
    "Client id not registered for this issuer": "The id_token's client ID is not registered for this LMS.",
    "Unable to find deployment": "This deployment is not active in Caseload.",
    "Unable to find public key": "The id_token was signed with a key the LMS does not publish (unknown kid).",
}


class _StaleRegistration(Exception):
    """Rows from the registry cache led to a refusal, or no longer match the database when the nonce was spent:
    the launch is decided again from freshly read rows."""

    def __init__(self, issuer: str) -> None:
        super().__init__("stale registration")
        self.issuer = issuer


def validate_launch(session: Session) -> LaunchContext:
    """Validate the POSTed id_token and return the launch. Raises LaunchError with a readable reason.

    The issuer's platforms and the deployment's status usually come from the per-process registry cache (no
    statement); the nonce insert re-checks them against the database (``_use_nonce``). When cached rows led to a
    refusal, or no longer match, the launch is validated once more from rows read now (nothing was written)."""
    cache = registry_cache()
    try:
        return _validate_launch(session, cache, read_cache=True)
    except _StaleRegistration as stale:
        cache.forget(stale.issuer)
    return _validate_launch(session, cache, read_cache=False)


def _validate_launch(session: Session, cache: RegistryCache, read_cache: bool) -> LaunchContext:
    settings = current_app.config["CASELOAD"]
    id_token = request.form.get("id_token", "")
    if not id_token:
        raise LaunchError("The LMS did not send an id_token. Launches must come from the LMS, not a bookmark.")
    state = request.form.get("state", "")
    if not state:
        raise LaunchError(_REASONS["Missing state param"])
    header, body = _peek(id_token)
    _check_claim_shapes(body)
    if header.get("alg") not in ALLOWED_ALGS:
        raise LaunchError(f"The id_token uses the signing algorithm {header.get('alg')!r}; LTI 1.3 requires RS256.")
    state_platform_id = read_state(state)  # signed by us, not expired; nothing else is read before this
    iss = str(body.get("iss") or "")
    deployment_id = str(body.get(CLAIM + "deployment_id") or "")
    conf = DbToolConf(session, deployment_id, cache=cache, read_cache=read_cache)

    def registry_refusal(refusal: LaunchError) -> Exception:
        """A refusal decided from cached rows is decided again from fresh ones."""
        return _StaleRegistration(iss) if conf.cached else refusal

    if not iss or not conf._platforms(iss):
        raise UnknownPlatform()  # (an issuer without active platforms is never cached)
    aud = body.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if not audiences:
        raise LaunchError("The id_token has no audience (aud).")
    matches = [p for p in conf._platforms(iss) if p.client_id in audiences]
    if not matches:
        raise registry_refusal(UnknownPlatform("The id_token is not addressed to any Caseload registration of "
                                               "this LMS (aud)."))
    platform = next((p for p in matches if p.id == state_platform_id), None)
    if platform is None:
        # The login in this browser was started for another registration than the one this token is for.
        raise registry_refusal(LaunchError(_REASONS["State not found"]))
    if len(audiences) > 1 and body.get("azp") != platform.client_id:
        raise LaunchError("The id_token has several audiences but its authorized party (azp) is not Caseload.")
    _check_times(body, settings.launch_leeway_seconds)
    if not deployment_id:
        raise LaunchError("The id_token has no deployment_id claim.")
    if conf.cached and platform.deployment_status != DeploymentStatus.ACTIVE.value:
        raise _StaleRegistration(iss)  # decided (and a new deployment recorded) from fresh rows only
    _check_deployment(platform, deployment_id)
    if body.get(CLAIM + "version") != "1.3.0":
        raise LaunchError("Only LTI 1.3.0 launches are supported (the version claim says otherwise).")
    message_type = body.get(CLAIM + "message_type")
    if message_type != RESOURCE_LINK_REQUEST:
        raise LaunchError(f"Caseload does not handle '{message_type}' messages; only course and account "
                          "navigation launches (LtiResourceLinkRequest) are supported.")
    target = body.get(CLAIM + "target_link_uri")
    if not target or not _same_url(str(target), launch_url()):
        raise LaunchError(f"The launch's target_link_uri is not Caseload's launch URL ({launch_url()}).")
    for claim in ("sub", "nonce"):
        if not body.get(claim):
            raise LaunchError(f"The id_token is missing the required '{claim}' claim.")
    if not body.get(CLAIM + "roles") and body.get(CLAIM + "roles") != []:
        raise LaunchError("The id_token is missing the roles claim.")

    # The state must come back in the browser that started the login: its cookie, or (when the browser dropped
    # the cookie) the LMS's platform storage read back by Caseload's own page.
    cookie_name = state_cookie_name(state)
    lti_request = FlaskRequest(cookies=request.cookies, session={}, request_data=request.form.to_dict(),
                               request_is_secure=request.is_secure)
    if request.cookies.get(cookie_name) != state:
        target = request.form.get("lti_storage_target")
        if not target:
            raise LaunchError(_REASONS["State not found"])
        if request.form.get("platform_storage_checked") != "1":
            raise NeedsPlatformStorageCheck(target, state, _origin_of(platform.auth_login_url))
        # The confirmation must come from Caseload's own page (which read the state back from the LMS's
        # storage in this browser), never from another site's form.
        origin = request.headers.get("Origin", "null")
        if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin" or (
                origin != "null" and not _same_origin(origin, launch_url())):
            raise LaunchError(_REASONS["State not found"])
    launch = _CachedKeysMessageLaunch(lti_request, conf, cookie_service=FlaskCookieService(lti_request),
                                      launch_data_storage=_NoStorage(), requests_session=_UNUSED_HTTP)
    launch.db = session
    launch.cache_seconds = settings.jwks_cache_seconds
    launch.set_jwt_verify_options({"verify_aud": False, "verify_exp": False, "verify_iat": False})
    conf.platform = platform
    try:
        launch.validate()
    except LaunchError:
        raise
    except (LtiException, OIDCException) as exc:
        message = str(exc)
        if conf.cached:  # e.g. the keyset URL changed since the registration was cached
            raise _StaleRegistration(iss) from None
        reason = next((v for k, v in _REASONS.items() if message.startswith(k)), None)
        if reason is None:
            reason = "The id_token signature or contents could not be verified."
        raise LaunchError(reason) from None
    nonce = str(body["nonce"])
    # Single use first (a replayed id_token says so), then the binding to this login's state. Both are checked
    # after the signature; a refusal rolls the nonce row back with everything else.
    if not _use_nonce(session, platform, deployment_id, nonce, body):
        if conf.cached:
            raise _StaleRegistration(iss)  # the registration changed since it was cached, or a replay: re-read
        raise ReplayedLaunch()
    if not hmac.compare_digest(nonce.encode(), nonce_for(state).encode()):
        raise LaunchError(_REASONS["Invalid Nonce"])
    return from_claims(dict(launch.get_launch_data()), platform.id, platform.lms)


MAX_ID_TOKEN_LIFETIME = 86400
"""An id_token whose exp is further away than this is refused (Canvas issues them for an hour, Moodle for a
minute): the used-nonce row must be able to outlive it."""


def _check_times(body: dict[str, Any], leeway: int) -> None:
    now = time.time()
    try:
        exp = float(body["exp"])
        iat = float(body["iat"])
    except (KeyError, TypeError, ValueError):
        raise LaunchError("The id_token is missing its issued-at (iat) or expiry (exp) time.") from None
    if not (math.isfinite(exp) and math.isfinite(iat)) or exp - now > MAX_ID_TOKEN_LIFETIME:
        raise LaunchError("The id_token's expiry (exp) is more than a day away; LMS id_tokens live for minutes. "
                          "Check the LMS server's clock.")
    if exp + leeway < now:
        raise LaunchError("The launch has expired (the id_token's exp is in the past). Launch again from the LMS; "
                          "if this keeps happening, check the LMS server's clock.")
    if iat - leeway > now:
        raise LaunchError("The id_token was issued in the future (iat). Check the LMS server's clock.")


def _check_deployment(platform: RegisteredPlatform, deployment_id: str) -> None:
    status = platform.deployment_status
    if status is None:
        # Record it for an administrator to approve, in its own transaction: the launch itself writes nothing.
        maker = current_app.extensions["caseload.sessionmaker"]
        with maker() as other:
            try:
                other.add(Deployment(platform_id=platform.id, deployment_id=deployment_id,
                                     status=DeploymentStatus.PENDING.value))
                other.commit()
                log.info("deployment recorded as pending on platform %s", platform.id)
            except IntegrityError:
                other.rollback()
        raise PendingDeployment(f"This LMS deployment ({deployment_id}) is new to Caseload and is waiting for an "
                                "administrator to approve it (caseload platform approve-deployment).")
    if status != DeploymentStatus.ACTIVE.value:
        raise PendingDeployment(f"This LMS deployment ({deployment_id}) is {status} in Caseload; ask your "
                                "Caseload administrator to approve it.")


_USED_NONCES: Any = UsedNonce.__table__
_PLATFORMS: Any = Platform.__table__
_DEPLOYMENTS: Any = Deployment.__table__
_USE_NONCE: dict[str, Any] = {}
"""dialect name -> the guarded INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING statement, built (and
cache-keyed) once."""


def _use_nonce_statement(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    stmt = _USE_NONCE.get(dialect)
    if stmt is None:
        registered = exists(
            select(literal(1)).select_from(_PLATFORMS.join(_DEPLOYMENTS, _DEPLOYMENTS.c.platform_id == _PLATFORMS.c.id))
            .where(_PLATFORMS.c.id == bindparam("platform_id"),
                   _PLATFORMS.c.status == PlatformStatus.ACTIVE.value,
                   _PLATFORMS.c.issuer == bindparam("issuer"), _PLATFORMS.c.client_id == bindparam("client_id"),
                   _PLATFORMS.c.keyset_url == bindparam("keyset_url"), _PLATFORMS.c.lms == bindparam("lms"),
                   _DEPLOYMENTS.c.deployment_id == bindparam("deployment_id"),
                   _DEPLOYMENTS.c.status == DeploymentStatus.ACTIVE.value))
        row = select(cast(bindparam("platform_id"), Integer), cast(bindparam("nonce"), String),
                     bindparam("expires_at", type_=_USED_NONCES.c.expires_at.type)).where(registered)
        stmt = _USE_NONCE[dialect] = (dialect_insert(session, _USED_NONCES)
                                      .from_select(["platform_id", "nonce", "expires_at"], row)
                                      .on_conflict_do_nothing(index_elements=["platform_id", "nonce"])
                                      .returning(_USED_NONCES.c.id))
    return stmt


def _use_nonce(session: Session, platform: RegisteredPlatform, deployment_id: str, nonce: str,
               body: dict[str, Any]) -> bool:
    """Record the nonce, in one statement that also re-checks the registration the launch was validated with:
    the row is inserted only while the platform is active with the same issuer, client_id, keyset URL and LMS
    family, and the deployment is active (``INSERT … SELECT … WHERE EXISTS … ON CONFLICT DO NOTHING``). False:
    nothing was inserted — the nonce was used already (a replay), or the registration changed.
    The row outlives every moment the id_token could still be accepted: its exp (+ leeway) and its state's
    lifetime."""
    leeway = current_app.config["CASELOAD"].launch_leeway_seconds
    keep_until = max(float(body["exp"]) + leeway, time.time() + STATE_LIFETIME + leeway) + 3600
    inserted = session.connection().execute(_use_nonce_statement(session), {
        "platform_id": platform.id, "nonce": nonce[:255], "expires_at": dt.datetime.fromtimestamp(keep_until, dt.UTC),
        "issuer": platform.issuer, "client_id": platform.client_id, "keyset_url": platform.keyset_url,
        "lms": platform.lms, "deployment_id": deployment_id}).scalar_one_or_none()
    return inserted is not None


def verify_signature_only(id_token: str, public_pem: str) -> dict[str, Any]:
    """Helper for tests and tools: decode with RS256 only."""
    return jwt.decode(id_token, public_pem, algorithms=list(ALLOWED_ALGS), options={"verify_aud": False})

"""pylti1p3 wired to Caseload's database, with the checks the library leaves to the tool.

pylti1p3 gives us the OIDC login redirect, registration/deployment lookup, the JWKS fetch and the signature
check. On top of it we enforce (LTI Core 1.3 §5.1.3 and the 1EdTech Security Framework §5.1.3):
- RS256 only, checked on the JWT header before anything else (no ``none``, no HS*);
- ``aud`` contains our client_id, and ``azp`` equals it when ``aud`` has several values;
- ``exp``/``iat`` with a configurable leeway (60 s by default);
- the nonce is single-use across all processes (``UsedNonce`` unique row), so a replayed id_token is refused
  even in the same browser within its lifetime;
- ``target_link_uri`` is our own launch URL; version 1.3.0; message type LtiResourceLinkRequest;
- unknown deployments of a known registration are recorded as ``pending`` and refused until approved.
The platform JWKS is cached in the database (all processes) and refetched once on an unknown kid.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from flask import Response, current_app, request
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.contrib.flask.cookie import FlaskCookieService
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import dialect_insert, utcnow
from lti_app.domain.vocab import DeploymentStatus, PlatformStatus
from lti_app.lti.context import CLAIM, RESOURCE_LINK_REQUEST, LaunchContext, from_claims
from lti_app.lti.errors import LaunchError, PendingDeployment, ReplayedLaunch, UnknownPlatform
from lti_app.models import Deployment, LaunchStateEntry, Platform, PlatformKeysetCache, UsedNonce

log = logging.getLogger(__name__)

ALLOWED_ALGS = ("RS256",)
# Per-process copy of the shared (database) JWKS cache: url -> (monotonic fetch time, keys).
_PROCESS_KEYSETS: dict[str, tuple[float, Any]] = {}
# (keyset URL, kid, alg) -> (PEM, alg) of keys already converted in this process.
_PEM_CACHE: dict[tuple[str, str, str], tuple[str, str]] = {}
STATE_LIFETIME = 300


# --- storage ---------------------------------------------------------------------------------------------

class DbLaunchDataStorage(LaunchDataStorage[Any]):
    """pylti1p3 key/value storage in ``launch_state`` so that any web process can finish a login."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._db = session
        self._seen: dict[str, Any] = {}
        """Values this request already read or wrote: pylti1p3 reads the same key several times per launch."""

    def get_session_cookie_name(self) -> str | None:
        return None  # values are keyed by state/nonce, which are unguessable; no session cookie needed

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        k = self._prepare_key(key)[:255]
        if k in self._seen:
            return self._seen[k]
        row = self._db.get(LaunchStateEntry, k)
        value = None if row is None or row.expires_at < utcnow() else row.value.get("v")
        self._seen[k] = value
        return value

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        """One statement: insert, or replace the value of an existing key (INSERT … ON CONFLICT DO UPDATE)."""
        k = self._prepare_key(key)[:255]
        expires = utcnow() + dt.timedelta(seconds=exp or 3600)
        table: Any = LaunchStateEntry.__table__
        stmt = dialect_insert(self._db, table)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value,
                                                                         "expires_at": stmt.excluded.expires_at})
        self._db.execute(stmt, {"key": k, "value": {"v": value}, "expires_at": expires})
        self._seen[k] = value

    def check_value(self, key: str) -> bool:
        return self.get_value(key) is not None

    def remove_value(self, key: str) -> None:
        k = self._prepare_key(key)[:255]
        self._db.execute(delete(LaunchStateEntry).where(LaunchStateEntry.key == k))
        self._seen[k] = None


class PartitionedCookieService(FlaskCookieService):
    """State cookies that survive inside an LMS iframe: ``Secure; SameSite=None; Partitioned`` (CHIPS)."""

    def update_response(self, response: Response) -> None:
        secure = bool(current_app.config["CASELOAD"].secure_cookies)
        for key, data in self._cookie_data_to_set.items():
            response.set_cookie(key, data["value"], max_age=data["exp"], path="/", httponly=True,
                                secure=secure, samesite="None" if secure else "Lax", partitioned=secure)


# --- tool configuration from the database -------------------------------------------------------------------

def _registration(platform: Platform) -> Registration:
    reg = Registration()
    reg.set_issuer(platform.issuer).set_client_id(platform.client_id)
    reg.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    reg.set_key_set_url(platform.keyset_url)
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    return reg


class DbToolConf(ToolConfAbstract[FlaskRequest]):
    """Registrations and deployments from the ``platforms`` and ``deployments`` tables."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._db = session
        self.platform: Platform | None = None
        self._by_issuer: dict[str, list[Platform]] = {}
        self._deployments: dict[tuple[int, str], Deployment | None] = {}

    def _platforms(self, iss: str) -> list[Platform]:
        if iss not in self._by_issuer:
            self._by_issuer[iss] = list(self._db.scalars(
                select(Platform).where(Platform.issuer == iss, Platform.status == PlatformStatus.ACTIVE.value)))
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

    def deployment_row(self, platform: Platform, deployment_id: str) -> Deployment | None:
        """The deployment row, looked up once per launch (our own check and pylti1p3's both ask)."""
        key = (platform.id, deployment_id)
        if key not in self._deployments:
            self._deployments[key] = self._db.scalars(select(Deployment).where(
                Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id)).one_or_none()
        return self._deployments[key]

    def _deployment(self, deployment_id: str) -> LtiDeployment | None:
        if self.platform is None:
            return None
        row = self.deployment_row(self.platform, deployment_id)
        if row is not None and row.status == DeploymentStatus.ACTIVE.value:
            return LtiDeployment().set_deployment_id(deployment_id)
        return None


# --- login ----------------------------------------------------------------------------------------------------

def _lti_request() -> FlaskRequest:
    data = request.form.to_dict() if request.method == "POST" else request.args.to_dict()
    return FlaskRequest(request_data=data or {"_": ""}, request_is_secure=request.is_secure)


def launch_url() -> str:
    return current_app.config["CASELOAD"].base_url + "/lti/launch"


def login(session: Session) -> Response:
    """Third-party initiated login (LTI Core 1.3 §5.1.1): redirect to the platform's auth endpoint."""
    params = request.form if request.method == "POST" else request.args
    for required in ("iss", "login_hint", "target_link_uri"):
        if not params.get(required):
            raise LaunchError(f"The LMS did not send '{required}' when starting the launch. Check the tool's "
                              "login URL in the LMS registration.")
    conf = DbToolConf(session)
    iss = params["iss"]
    client_id = params.get("client_id")
    if not conf._platforms(iss):
        raise UnknownPlatform()
    if conf.check_iss_has_many_clients(iss) and not client_id:
        raise LaunchError("This LMS has several Caseload registrations but did not say which one (client_id) "
                          "when starting the launch.")
    if client_id and conf.find_registration_by_params(iss, client_id) is None:
        raise UnknownPlatform("This LMS registration (client ID) is not known to Caseload. Ask your Caseload "
                              "administrator to register it.")
    target = params["target_link_uri"]
    if not _same_url(target, launch_url()):
        raise LaunchError("The launch was addressed to a different tool URL than Caseload's "
                          f"({launch_url()}). Check the target link URI in the LMS registration.")
    storage = DbLaunchDataStorage(session)
    cookies = PartitionedCookieService(_lti_request())
    oidc = FlaskOIDCLogin(_lti_request(), conf, cookie_service=cookies, launch_data_storage=storage)
    try:
        redirect_url = oidc.get_redirect_object(launch_url()).get_redirect_url()
    except (OIDCException, LtiException) as exc:
        raise LaunchError(f"The login request could not be used: {exc}") from None
    query = parse_qs(urlsplit(redirect_url).query)
    state = query.get("state", [""])[0]
    storage.set_value(f"caseload-state-{state}", {"iss": iss, "client_id": query.get("client_id", [""])[0]},
                      STATE_LIFETIME)
    storage_target = params.get("lti_storage_target")
    if storage_target:
        # LTI Client Side postMessages (platform storage): also keep the state in the LMS's storage, for browsers
        # that drop even partitioned third-party cookies. The page stores it, then continues to the LMS.
        from flask import render_template

        platform = conf.find_registration_by_params(iss, query.get("client_id", [""])[0])
        origin = _origin_of(conf.platform.auth_login_url if conf.platform else "") if platform else ""
        response = current_app.make_response(render_template(
            "lti/storage_login.html", target=storage_target, key=f"state_{state}", value=state, origin=origin,
            redirect_url=redirect_url))
    else:
        response = current_app.make_response(("", 302, {"Location": redirect_url}))
    cookies.update_response(response)
    return response


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
    except (ValueError, UnicodeDecodeError):
        raise LaunchError("The id_token from the LMS could not be decoded.") from None


class _CachedKeysMessageLaunch(FlaskMessageLaunch):
    """JWKS from our shared cache; refetched once when the token's kid is not in the cached set."""

    cache_seconds = 600
    db: Session

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
            keys = resp.json()
        except (requests.RequestException, ValueError):
            log.warning("platform JWKS fetch failed for %s", urlsplit(key_set_url).netloc)
            raise LaunchError("Caseload could not fetch the LMS's public keys (JWKS) to verify the launch. "
                              "Check the platform's keyset URL.", status=502) from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise LaunchError("The LMS's public key set (JWKS) is not valid JSON Web Key Set.", status=502)
        log.info("fetched platform JWKS from %s", urlsplit(key_set_url).netloc)
        _PROCESS_KEYSETS[key_set_url] = (time.monotonic(), keys)
        row = self.db.get(PlatformKeysetCache, key_set_url)
        if row is None:
            self.db.add(PlatformKeysetCache(url=key_set_url, keys=keys, fetched_at=utcnow()))
        else:
            row.keys, row.fetched_at = keys, utcnow()
        self.db.flush()
        return keys

    def save_launch_data(self) -> _CachedKeysMessageLaunch:
        """Caseload never restores a launch from storage (the app token replaces it), so the id_token body is not
        written to the launch-state table: two writes fewer per launch, and no claims kept at rest."""
        return self

    def get_public_key(self) -> tuple[str, str]:
        """pylti1p3's lookup, memoised per process by (keyset URL, kid, alg): converting a JWK to PEM costs more
        than verifying the signature. An unknown kid refetches the keyset once."""
        assert self._registration is not None
        header = self._jwt.get("header", {})
        memo_key = (self._registration.get_key_set_url() or "", str(header.get("kid")), str(header.get("alg")))
        hit = _PEM_CACHE.get(memo_key)
        if hit is not None:
            return hit
        try:
            result: tuple[str, str] = super().get_public_key()
        except LtiException as exc:
            if "Unable to find public key" not in str(exc):
                raise
            keys = self._refetch(self._registration.get_key_set_url() or "")
            self._registration.set_key_set(keys)
            result = super().get_public_key()
        _PEM_CACHE[memo_key] = result
        return result


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


def validate_launch(session: Session) -> LaunchContext:
    """Validate the POSTed id_token and return the launch. Raises LaunchError with a readable reason."""
    settings = current_app.config["CASELOAD"]
    id_token = request.form.get("id_token", "")
    if not id_token:
        raise LaunchError("The LMS did not send an id_token. Launches must come from the LMS, not a bookmark.")
    if not request.form.get("state"):
        raise LaunchError(_REASONS["Missing state param"])
    header, body = _peek(id_token)
    if header.get("alg") not in ALLOWED_ALGS:
        raise LaunchError(f"The id_token uses the signing algorithm {header.get('alg')!r}; LTI 1.3 requires RS256.")
    iss = str(body.get("iss") or "")
    conf = DbToolConf(session)
    if not iss or not conf._platforms(iss):
        raise UnknownPlatform()
    aud = body.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if not audiences:
        raise LaunchError("The id_token has no audience (aud).")
    matches = [p for p in conf._platforms(iss) if p.client_id in audiences]
    if not matches:
        raise UnknownPlatform("The id_token is not addressed to any Caseload registration of this LMS (aud).")
    platform = matches[0]
    if len(audiences) > 1 and body.get("azp") != platform.client_id:
        raise LaunchError("The id_token has several audiences but its authorized party (azp) is not Caseload.")
    _check_times(body, settings.launch_leeway_seconds)
    deployment_id = str(body.get(CLAIM + "deployment_id") or "")
    if not deployment_id:
        raise LaunchError("The id_token has no deployment_id claim.")
    _check_deployment(conf, platform, deployment_id)
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

    storage = DbLaunchDataStorage(session)
    state = request.form["state"]
    if storage.get_value(f"caseload-state-{state}") is None:
        raise LaunchError(_REASONS["State not found"])
    lti_request = _lti_request()
    cookie_name = f"lti1p3-{state}"
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
        lti_request = FlaskRequest(cookies={cookie_name: state}, request_data=request.form.to_dict(),
                                   request_is_secure=request.is_secure)
    launch = _CachedKeysMessageLaunch(lti_request, conf, cookie_service=PartitionedCookieService(lti_request),
                                      launch_data_storage=storage)
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
        reason = next((v for k, v in _REASONS.items() if message.startswith(k)), None)
        if reason is None:
            reason = "The id_token signature or contents could not be verified."
        raise LaunchError(reason) from None
    storage.remove_value(f"caseload-state-{state}")
    _use_nonce(session, platform, str(body["nonce"]), body)
    return from_claims(dict(launch.get_launch_data()), platform.id, platform.lms)


def _check_times(body: dict[str, Any], leeway: int) -> None:
    now = time.time()
    try:
        exp = float(body["exp"])
        iat = float(body["iat"])
    except (KeyError, TypeError, ValueError):
        raise LaunchError("The id_token is missing its issued-at (iat) or expiry (exp) time.") from None
    if exp + leeway < now:
        raise LaunchError("The launch has expired (the id_token's exp is in the past). Launch again from the LMS; "
                          "if this keeps happening, check the LMS server's clock.")
    if iat - leeway > now:
        raise LaunchError("The id_token was issued in the future (iat). Check the LMS server's clock.")


def _check_deployment(conf: DbToolConf, platform: Platform, deployment_id: str) -> None:
    row = conf.deployment_row(platform, deployment_id)
    if row is None:
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
    if row.status != DeploymentStatus.ACTIVE.value:
        raise PendingDeployment(f"This LMS deployment ({deployment_id}) is {row.status} in Caseload; ask your "
                                "Caseload administrator to approve it.")


def _use_nonce(session: Session, platform: Platform, nonce: str, body: dict[str, Any]) -> None:
    """Record the nonce; a nonce already recorded is a replay. One statement (INSERT … ON CONFLICT DO NOTHING)."""
    expires = dt.datetime.fromtimestamp(float(body["exp"]) + 3600, dt.UTC)
    table: Any = UsedNonce.__table__
    stmt = (dialect_insert(session, table).on_conflict_do_nothing(index_elements=["platform_id", "nonce"])
            .returning(table.c.id))
    inserted = session.execute(stmt, {"platform_id": platform.id, "nonce": nonce[:255],
                                      "expires_at": expires}).scalar_one_or_none()
    if inserted is None:
        raise ReplayedLaunch()


def verify_signature_only(id_token: str, public_pem: str) -> dict[str, Any]:
    """Helper for tests and tools: decode with RS256 only."""
    return jwt.decode(id_token, public_pem, algorithms=list(ALLOWED_ALGS), options={"verify_aud": False})

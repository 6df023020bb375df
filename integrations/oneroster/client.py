"""OneRoster rostering client for districts whose SIS is the source of truth.

- OneRoster 1.2 (Rostering Service REST binding 1.0): service root ``/ims/oneroster/rostering/v1p2``; OAuth 2.0
  client credentials (RFC 6749 §4.4, client authenticated with HTTP Basic) with the scope
  ``https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly``.
- OneRoster 1.1: service root ``/ims/oneroster/v1p1``. Only SIS servers that accept OAuth 2.0 client credentials
  for 1.1 are supported (scope ``.../or/v1p1/scope/roster-core.readonly``); 1.1's original OAuth 1.0a request
  signing is out of scope.
- Collections are paged with ``limit`` and ``offset`` (the server may cap ``limit``; ``X-Total-Count`` tells the
  total when present) and filtered with ``filter=dateLastModified>'<ISO 8601>'`` for deltas. In a delta, records
  deleted in the SIS come back with ``status: tobedeleted``.

Pure: no Flask, no database, no app imports.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from integrations.http import HttpClient, HttpError, response_json
from integrations.lti_token import AccessToken, TokenCache

log = logging.getLogger(__name__)

VERSIONS = {
    "1.2": ("/ims/oneroster/rostering/v1p2", "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"),
    "1.1": ("/ims/oneroster/v1p1", "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly"),
}
DEFAULT_PAGE_SIZE = 1000
MAX_PAGES = 10_000

# OneRoster enrollment roles -> Caseload enrollment roles. Guardians, parents, relatives and administrators are
# not course members in the LMS sense and give no enrollment.
ENROLLMENT_ROLE = {"student": "student", "teacher": "teacher", "aide": "ta", "proctor": "ta"}
STAFF_USER_ROLES = frozenset({"teacher", "aide", "administrator", "proctor", "districtAdministrator",
                              "principal", "siteAdministrator", "systemAdministrator", "counselor"})


class OneRosterError(Exception):
    """The SIS could not be read. ``reason`` is readable by a district admin."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class OneRosterConfig:
    base_url: str
    """The SIS's OneRoster server (service root, or the host under which ``/ims/oneroster/...`` lives)."""
    token_url: str
    client_id: str
    client_secret: str
    version: str = "1.2"
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def service_root(self) -> str:
        base = self.base_url.rstrip("/")
        if "/ims/oneroster" in base:
            return base
        return base + VERSIONS[self.version][0]

    @property
    def scope(self) -> str:
        return VERSIONS[self.version][1]


def parse_timestamp(value: Any) -> dt.datetime | None:
    """OneRoster DateTime (ISO 8601, UTC ``Z``) or Date; None when absent or unreadable."""
    if not value:
        return None
    text = str(value).strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """The form OneRoster filters expect: ``2026-11-24T08:00:00.000Z``."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _ref(value: Any) -> str | None:
    """The sourcedId of a GUIDRef (``{"href":..., "sourcedId":..., "type":...}``)."""
    return _text(value.get("sourcedId")) if isinstance(value, Mapping) else _text(value)


@dataclass(frozen=True)
class OrUser:
    sourced_id: str
    status: str
    """active | tobedeleted"""
    date_last_modified: dt.datetime | None
    enabled: bool
    identifier: str | None
    username: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    roles: frozenset[str]

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_USER_ROLES)

    @property
    def name(self) -> str | None:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return full or None


@dataclass(frozen=True)
class OrClass:
    sourced_id: str
    status: str
    date_last_modified: dt.datetime | None
    title: str | None


@dataclass(frozen=True)
class OrEnrollment:
    sourced_id: str
    status: str
    date_last_modified: dt.datetime | None
    user_sourced_id: str | None
    class_sourced_id: str | None
    role: str | None
    """Caseload enrollment role, or None for roles that give none (guardian, administrator...)."""
    begin_date: dt.date | None
    end_date: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        if self.status != "active":
            return False
        if self.begin_date and day < self.begin_date:
            return False
        return not (self.end_date and day > self.end_date)


def _status(raw: Mapping[str, Any]) -> str:
    return "tobedeleted" if str(raw.get("status") or "active").strip().lower() == "tobedeleted" else "active"


def _date(value: Any) -> dt.date | None:
    stamp = parse_timestamp(value)
    return stamp.date() if stamp else None


def parse_user(raw: Mapping[str, Any]) -> OrUser | None:
    sourced_id = _text(raw.get("sourcedId"))
    if sourced_id is None:
        return None
    roles: set[str] = set()
    if raw.get("role"):  # 1.1: one role
        roles.add(str(raw["role"]))
    for entry in raw.get("roles") or []:  # 1.2: [{roleType, role, org}]
        if isinstance(entry, Mapping) and entry.get("role"):
            roles.add(str(entry["role"]))
    enabled = str(raw.get("enabledUser", "true")).strip().lower() not in ("false", "0", "no")
    return OrUser(
        sourced_id=sourced_id, status=_status(raw), date_last_modified=parse_timestamp(raw.get("dateLastModified")),
        enabled=enabled, identifier=_text(raw.get("identifier")), username=_text(raw.get("username")),
        given_name=_text(raw.get("givenName")), family_name=_text(raw.get("familyName")),
        email=_text(raw.get("email")), roles=frozenset(roles),
    )


def parse_class(raw: Mapping[str, Any]) -> OrClass | None:
    sourced_id = _text(raw.get("sourcedId"))
    if sourced_id is None:
        return None
    return OrClass(sourced_id=sourced_id, status=_status(raw),
                   date_last_modified=parse_timestamp(raw.get("dateLastModified")), title=_text(raw.get("title")))


def parse_enrollment(raw: Mapping[str, Any]) -> OrEnrollment | None:
    sourced_id = _text(raw.get("sourcedId"))
    if sourced_id is None:
        return None
    return OrEnrollment(
        sourced_id=sourced_id, status=_status(raw), date_last_modified=parse_timestamp(raw.get("dateLastModified")),
        user_sourced_id=_ref(raw.get("user")), class_sourced_id=_ref(raw.get("class")),
        role=ENROLLMENT_ROLE.get(str(raw.get("role") or "").strip()),
        begin_date=_date(raw.get("beginDate")), end_date=_date(raw.get("endDate")),
    )


class OneRosterClient:
    def __init__(self, http: HttpClient, config: OneRosterConfig, *, cache: TokenCache | None = None,
                 clock: Callable[[], float] = time.time, max_pages: int = MAX_PAGES) -> None:
        if config.version not in VERSIONS:
            raise OneRosterError(f"OneRoster version must be one of {', '.join(VERSIONS)}.")
        self._http = http
        self.config = config
        self._cache = cache if cache is not None else TokenCache()
        self._clock = clock
        self.max_pages = max_pages
        self.token_requests = 0

    # -- OAuth 2.0 client credentials ------------------------------------------------------------------------
    def _token(self, fresh: bool = False) -> str:
        key = (self.config.token_url, self.config.client_id, self.config.scope)
        now = self._clock()
        if fresh:
            self._cache.discard(key)
        else:
            cached = self._cache.get(key, now, 60)
            if cached is not None:
                return cached.value
        basic = base64.b64encode(f"{self.config.client_id}:{self.config.client_secret}".encode()).decode()
        self.token_requests += 1
        try:
            response = self._http.post(self.config.token_url,
                                       data={"grant_type": "client_credentials", "scope": self.config.scope},
                                       headers={"Authorization": f"Basic {basic}", "Accept": "application/json"})
            body = response_json(response)
        except HttpError as exc:
            if exc.status in (400, 401):
                raise OneRosterError(f"The SIS refused Caseload's OneRoster client ID or secret (HTTP {exc.status}).",
                                     status=exc.status) from None
            raise OneRosterError(f"The SIS token endpoint failed ({exc.status or 'unreachable'}).",
                                 status=exc.status) from None
        except ValueError:
            raise OneRosterError("The SIS token endpoint did not answer with JSON.") from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise OneRosterError("The SIS token endpoint answered without an access_token.")
        try:
            expires_in = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        self._cache.put(key, AccessToken(value=value, expires_at=now + expires_in,
                                         scopes=frozenset([self.config.scope])))
        return value

    # -- collections -----------------------------------------------------------------------------------------
    def _get(self, url: str) -> tuple[Any, Mapping[str, str]]:
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self._token(fresh=attempt == 1)}", "Accept": "application/json"}
            try:
                response = self._http.get(url, headers=headers)
            except HttpError as exc:
                if exc.status == 401 and attempt == 0:
                    continue
                raise OneRosterError(f"The SIS OneRoster service failed (HTTP {exc.status or 'unreachable'}).",
                                     status=exc.status) from None
            try:
                return response_json(response), response.headers
            except ValueError:
                raise OneRosterError("The SIS OneRoster service did not answer with JSON.") from None
        raise OneRosterError("The SIS refused Caseload's access token.", status=401)

    def iter_collection(self, collection: str, *, since: dt.datetime | None = None) -> Iterator[Mapping[str, Any]]:
        """Every record of ``users`` / ``classes`` / ``enrollments`` (modified after ``since`` when given)."""
        limit = self.config.page_size
        offset = 0
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": limit, "offset": offset}
            if since is not None:
                params["filter"] = f"dateLastModified>'{format_timestamp(since)}'"
            body, headers = self._get(f"{self.config.service_root}/{collection}?{urlencode(params)}")
            records = body.get(collection) if isinstance(body, dict) else None
            if not isinstance(records, list):
                raise OneRosterError(f"The SIS answered without a '{collection}' list.")
            yield from (r for r in records if isinstance(r, Mapping))
            pages += 1
            offset += len(records)
            total = _int(headers.get("X-Total-Count"))
            if not records or (total is not None and offset >= total) or (total is None and len(records) < limit):
                return
            if pages >= self.max_pages:
                raise OneRosterError(f"The SIS sent more than {self.max_pages} pages of {collection}.")

    def users(self, since: dt.datetime | None = None) -> Iterator[OrUser]:
        for raw in self.iter_collection("users", since=since):
            user = parse_user(raw)
            if user is not None:
                yield user

    def user(self, sourced_id: str) -> OrUser | None:
        body, _ = self._get(f"{self.config.service_root}/users/{quote(sourced_id, safe='')}")
        raw = body.get("user") if isinstance(body, dict) else None
        return parse_user(raw) if isinstance(raw, Mapping) else None

    def classes(self, since: dt.datetime | None = None) -> Iterator[OrClass]:
        for raw in self.iter_collection("classes", since=since):
            klass = parse_class(raw)
            if klass is not None:
                yield klass

    def enrollments(self, since: dt.datetime | None = None) -> Iterator[OrEnrollment]:
        for raw in self.iter_collection("enrollments", since=since):
            enrollment = parse_enrollment(raw)
            if enrollment is not None:
                yield enrollment


def _int(value: Any) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None

"""Names and Role Provisioning Services 2.0 client and member normaliser.

NRPS 2.0 (https://www.imsglobal.org/spec/lti-nrps/v2p0):
- §2.1 the tool calls the ``context_memberships_url`` from the launch claim with a bearer token carrying the
  scope ``.../lti-nrps/scope/contextmembership.readonly`` and ``Accept:
  application/vnd.ims.lti-nrps.v2.membershipcontainer+json``;
- §2.4.2 large rosters are paged: the platform sends ``Link: <url>; rel="next"`` until the last page; the tool
  may ask for a page size with ``limit`` (the platform may cap it; Canvas caps at 50);
- §2.3 ``rlid`` asks for the members of one resource link and makes the platform add each member's ``message``
  (the claims a launch would carry). Canvas accepts the course's own context id as ``rlid`` and then includes
  ``https://www.instructure.com/canvas_user_id`` in each message: that is how Caseload learns Canvas's
  numeric user ids, which Canvas Live Events use;
- §2.2 a member's ``status`` defaults to Active; members the LMS suspended or unenrolled are simply absent
  (Moodle) or come back as ``Inactive`` / ``Deleted``; roles may be full LIS URIs or, as Moodle sends them,
  short context role names (``Learner``, ``Instructor``; LTI Core 1.3 §A.2.3.1 allows both).

The client is pure: it takes an HTTP wrapper and a token source and knows nothing of Flask or the database.
It reads every page before returning so that the caller never reconciles from a partial roster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from integrations.http import HttpClient, HttpError, response_json

log = logging.getLogger(__name__)

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
CANVAS_USER_ID_CLAIM = "https://www.instructure.com/canvas_user_id"
CUSTOM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/custom"
DEFAULT_PAGE_SIZE = 100
MAX_PAGES = 2000
"""Guard against a platform whose next links never end (200,000 members at 100 a page)."""

# Enrollment roles as Caseload names them (lti_app.domain.vocab.EnrollmentRole values; integrations may not
# import the app, so the strings are repeated here).
TEACHER, TA, STUDENT, OBSERVER, DESIGNER = "teacher", "ta", "student", "observer", "designer"
STAFF_ROLES = frozenset({TEACHER, TA, DESIGNER})

_CONTEXT_ROLE = {
    "Instructor": TEACHER,
    "TeachingAssistant": TA,
    "Learner": STUDENT,
    "Mentor": OBSERVER,
    "ContentDeveloper": DESIGNER,
}
_LIS_V2 = "http://purl.imsglobal.org/vocab/lis/v2/"
_URN_CONTEXT = "urn:lti:role:ims/lis/"


class NrpsError(Exception):
    """The membership service could not be read. ``reason`` is readable by an LMS admin."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class TokenSource(Protocol):
    def __call__(self, *, fresh: bool = False) -> str: ...


def context_role(role: str) -> str | None:
    """Map one NRPS/LTI role to an enrollment role, or None for roles that are not context roles.

    Accepts full LIS v2 URIs (``.../membership#Instructor``, sub-roles ``.../membership/Instructor#TeachingAssistant``),
    short names (``Instructor``, ``Learner``, ``Instructor#TeachingAssistant``) and LTI 1.1 URNs
    (``urn:lti:role:ims/lis/Instructor/TeachingAssistant``). Institution and system roles
    (``.../institution/person#...``, ``.../system/person#...``) describe the person, not the course, and give no
    enrollment.
    """
    value = role.strip()
    if value.startswith(_LIS_V2):
        rest = value[len(_LIS_V2):]
        if not rest.startswith("membership"):
            return None
        rest = rest[len("membership"):]  # "#Instructor" or "/Instructor#TeachingAssistant"
        principal, _, sub = rest.lstrip("/#").partition("#")
    elif value.startswith(_URN_CONTEXT):
        principal, _, sub = value[len(_URN_CONTEXT):].partition("/")
    elif "://" in value or value.startswith("urn:"):
        return None
    else:
        principal, _, sub = value.partition("#")
    if sub == "TeachingAssistant" or principal == "TeachingAssistant":
        return TA
    return _CONTEXT_ROLE.get(principal)


def enrollment_roles(roles: Iterable[str]) -> frozenset[str]:
    """All enrollment roles of one member. A teaching assistant's roles usually include the Instructor
    principal role as well (LTI Core §A.2.3.1: a sub-role implies its principal); they count as TA only."""
    mapped = {r for r in (context_role(str(role)) for role in roles) if r is not None}
    if TA in mapped:
        mapped.discard(TEACHER)
    return frozenset(mapped)


_DIGITS = re.compile(r"^\d+$")


def _canvas_user_id(member: Mapping[str, Any]) -> str | None:
    """Canvas's numeric user id, present only in ``message`` (asked for with ``rlid``) or custom fields."""
    messages = member.get("message")
    candidates: list[Any] = []
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            candidates.append(message.get(CANVAS_USER_ID_CLAIM))
            custom = message.get(CUSTOM_CLAIM)
            if isinstance(custom, Mapping):
                candidates.append(custom.get("canvas_user_id"))
    for value in candidates:
        text = str(value).strip() if value is not None else ""
        if _DIGITS.match(text):
            return text
    return None


@dataclass(frozen=True)
class NrpsMember:
    """One member, normalised. ``user_id`` is the LTI ``sub`` of that person on the platform (NRPS 2.0 §2.2)."""

    user_id: str
    roles: frozenset[str]
    status: str
    """active | inactive | deleted (NRPS status, lower-cased; absent means active)."""
    raw_roles: tuple[str, ...] = ()
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    sourced_id: str | None = None
    """``lis_person_sourcedid`` when not empty (often the SIS id)."""
    lms_user_id: str | None = None
    """Canvas numeric user id when the platform included it."""

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_member(raw: Mapping[str, Any]) -> NrpsMember | None:
    """Normalise one member object; None when it has no user_id (it cannot be matched to anyone)."""
    user_id = _text(raw.get("user_id"))
    if user_id is None:
        return None
    raw_roles = tuple(str(r) for r in (raw.get("roles") or []) if r)
    status = (_text(raw.get("status")) or "Active").lower()
    return NrpsMember(
        user_id=user_id,
        roles=enrollment_roles(raw_roles),
        status=status if status in ("active", "inactive", "deleted") else "active",
        raw_roles=raw_roles,
        name=_text(raw.get("name")),
        given_name=_text(raw.get("given_name")),
        family_name=_text(raw.get("family_name")),
        email=_text(raw.get("email")),
        sourced_id=_text(raw.get("lis_person_sourcedid")),
        lms_user_id=_canvas_user_id(raw),
    )


@dataclass(frozen=True)
class Membership:
    """A whole roster as the platform reported it, all pages read."""

    url: str
    context_id: str | None
    context_title: str | None
    members: list[NrpsMember] = field(default_factory=list)
    pages: int = 0
    skipped: int = 0
    """Member objects without a user_id (ignored)."""


_LINK_PART = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 Link header (quoted or bare ``rel``)."""
    if not link_header:
        return None
    for match in _LINK_PART.finditer(link_header):
        target, params = match.group(1), match.group(2)
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return target.strip()
    return None


def with_query(url: str, **params: str | int | None) -> str:
    """``url`` with ``params`` added (replacing same-named ones); None values are left out."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


class NrpsClient:
    """Reads a context membership, page by page, with the given HTTP wrapper and token source."""

    def __init__(self, http: HttpClient, token: TokenSource | Callable[..., str], *,
                 page_size: int | None = DEFAULT_PAGE_SIZE, max_pages: int = MAX_PAGES) -> None:
        self._http = http
        self._token = token
        self.page_size = page_size
        self.max_pages = max_pages

    def _get_page(self, url: str) -> tuple[dict[str, Any], str | None]:
        headers = {"Accept": MEMBERSHIP_MEDIA_TYPE}
        for attempt in (0, 1):
            headers["Authorization"] = f"Bearer {self._token(fresh=attempt == 1)}"
            try:
                response = self._http.get(url, headers=headers)
            except HttpError as exc:
                if exc.status == 401 and attempt == 0:
                    # The platform revoked or expired our cached token early: get a new one once.
                    log.info("NRPS answered 401; retrying once with a fresh token")
                    continue
                raise _nrps_error(exc) from None
            try:
                body = response_json(response)
            except ValueError:
                raise NrpsError("The LMS membership service did not answer with JSON.") from None
            if not isinstance(body, dict):
                raise NrpsError("The LMS membership service answered with something other than a membership "
                                "container.")
            return body, next_link(response.headers.get("Link"))
        raise NrpsError("The LMS refused Caseload's access token for the membership service.", status=401)

    def iter_pages(self, url: str, *, rlid: str | None = None) -> Iterator[dict[str, Any]]:
        """Each page's JSON body, following ``rel="next"`` links on the same origin only (a bearer token
        must never be sent to another host a response names)."""
        first = with_query(url, limit=self.page_size, rlid=rlid)
        seen: set[str] = set()
        current: str | None = first
        pages = 0
        while current is not None:
            if current in seen:
                raise NrpsError("The LMS membership service repeated a page link; the roster was not applied.")
            if not _same_origin(current, url):
                raise NrpsError("The LMS membership service pointed to another site for its next page; "
                                "Caseload did not follow it.")
            seen.add(current)
            pages += 1
            if pages > self.max_pages:
                raise NrpsError(f"The LMS membership service sent more than {self.max_pages} pages.")
            body, current = self._get_page(current)
            yield body

    def fetch(self, url: str, *, rlid: str | None = None) -> Membership:
        """The complete roster (every page read), normalised."""
        members: dict[str, NrpsMember] = {}
        context_id = context_title = None
        pages = skipped = 0
        for body in self.iter_pages(url, rlid=rlid):
            pages += 1
            raw_context = body.get("context")
            context: Mapping[str, Any] = raw_context if isinstance(raw_context, Mapping) else {}
            context_id = context_id or _text(context.get("id"))
            context_title = context_title or _text(context.get("title"))
            for raw in body.get("members") or []:
                member = parse_member(raw) if isinstance(raw, Mapping) else None
                if member is None:
                    skipped += 1
                    continue
                previous = members.get(member.user_id)
                # A member listed twice (platforms page by enrollment) keeps the union of roles.
                members[member.user_id] = member if previous is None else _merge(previous, member)
        log.info("NRPS roster read: %s members on %s pages (%s skipped)", len(members), pages, skipped)
        return Membership(url=url, context_id=context_id, context_title=context_title,
                          members=list(members.values()), pages=pages, skipped=skipped)


def _merge(a: NrpsMember, b: NrpsMember) -> NrpsMember:
    active = "active" if "active" in (a.status, b.status) else b.status
    return NrpsMember(
        user_id=a.user_id, roles=enrollment_roles((*a.raw_roles, *b.raw_roles)), status=active,
        raw_roles=(*a.raw_roles, *b.raw_roles), name=a.name or b.name, given_name=a.given_name or b.given_name,
        family_name=a.family_name or b.family_name, email=a.email or b.email,
        sourced_id=a.sourced_id or b.sourced_id, lms_user_id=a.lms_user_id or b.lms_user_id,
    )


def _nrps_error(exc: HttpError) -> NrpsError:
    status = exc.status
    if status in (401, 403):
        reason = (f"The LMS refused access to the course roster (HTTP {status}). The registration must allow the "
                  "Names and Role Provisioning scope, and the tool must be available in this course.")
    elif status == 404:
        reason = "The LMS no longer knows this course's membership URL (HTTP 404): the course may be deleted."
    elif status == 406:
        reason = "The LMS does not offer Names and Role Provisioning 2.0 for this course (HTTP 406)."
    elif status is None:
        reason = "The LMS membership service could not be reached."
    else:
        reason = f"The LMS membership service failed (HTTP {status})."
    return NrpsError(reason, status=status)

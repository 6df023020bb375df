"""The practice LMS: a small but real LTI 1.3 platform inside Caseload, for newcomers and end-to-end tests.

It has its own RSA key (encrypted in the practice ``Platform.settings``), signs id_tokens, publishes its JWKS,
issues client-credentials tokens (verifying the tool's signed client assertion against the tool's keys) and
serves NRPS memberships from the demo roster. Caseload talks to it exactly as to Canvas or Moodle: over HTTP,
through /lti/login and /lti/launch. It exists only in dev/demo/test; production never serves it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import cipher
from lti_app.models import Course, Deployment, Enrollment, Person, Platform, RoleGrant
from lti_app.settings import Settings

NAME = "practice"
CLIENT_ID = "caseload-practice"
DEPLOYMENT_ID = "1"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE_URI = {
    "teacher": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "ta": "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
    "student": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
    "observer": "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor",
    "designer": "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
}
ADMIN_URI = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
STAFF_URI = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"


class PracticeError(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def page_url(settings: Settings) -> str:
    """The course page's origin: ``CASELOAD_PRACTICE_LMS_PAGE_URL`` when set (a host apart from the issuer and login
    URL, as Canvas course pages are on the district's host and not on canvas.instructure.com), else the practice
    LMS's own."""
    return settings.practice_lms_page_url or settings.practice_url


def urls(settings: Settings) -> dict[str, str]:
    root = settings.practice_url + "/practice"
    return {"issuer": root, "auth": root + "/auth", "token": root + "/token", "jwks": root + "/jwks",
            "nrps": root + "/nrps", "page": page_url(settings) + "/practice/"}


def get_platform(session: Session) -> Platform | None:
    return session.scalars(select(Platform).where(Platform.name == NAME)).one_or_none()


def ensure_platform(session: Session, settings: Settings) -> Platform:
    """Register the practice platform (idempotent) with its own signing key. Caller commits."""
    u = urls(settings)
    platform = get_platform(session)
    if platform is None:
        platform = Platform(name=NAME, lms="generic", issuer=u["issuer"], client_id=CLIENT_ID, status="active",
                            auth_login_url=u["auth"], auth_token_url=u["token"], keyset_url=u["jwks"], settings={})
        session.add(platform)
        session.flush()
    platform.issuer, platform.auth_login_url = u["issuer"], u["auth"]
    platform.auth_token_url, platform.keyset_url = u["token"], u["jwks"]
    if "practice_key" not in (platform.settings or {}):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": "practice-" + secrets.token_hex(4), "alg": "RS256", "use": "sig"})
        platform.settings = {**(platform.settings or {}), "practice_key": cipher().encrypt(pem).decode(),
                             "practice_jwk": jwk, "practice_tokens": {}}
    dep = session.scalars(select(Deployment).where(Deployment.platform_id == platform.id,
                                                   Deployment.deployment_id == DEPLOYMENT_ID)).one_or_none()
    if dep is None:
        session.add(Deployment(platform_id=platform.id, deployment_id=DEPLOYMENT_ID, status="active"))
    session.flush()
    return platform


def jwks(platform: Platform) -> dict[str, Any]:
    return {"keys": [platform.settings["practice_jwk"]]}


def _private_pem(platform: Platform) -> str:
    return cipher().decrypt(platform.settings["practice_key"].encode())


@dataclass(frozen=True)
class Persona:
    key: str
    label: str
    person: Person
    course: Course | None
    roles: tuple[str, ...]


def personas(session: Session, platform: Platform) -> list[Persona]:
    """The people a newcomer can launch as, from the demo district."""
    people = {p.lti_sub: p for p in session.scalars(select(Person).where(Person.platform_id == platform.id))}
    courses = {c.id: c for c in session.scalars(select(Course).where(Course.platform_id == platform.id))}
    out: list[Persona] = []
    teacher_rows = session.execute(
        select(Enrollment.person_id, Enrollment.course_id).where(Enrollment.role == "teacher",
                                                                 Enrollment.state == "active")
        .order_by(Enrollment.course_id, Enrollment.person_id)).all()
    seen: set[int] = set()
    for person_id, course_id in teacher_rows:
        if course_id in seen or course_id not in courses:
            continue
        seen.add(course_id)
        person = next((p for p in people.values() if p.id == person_id), None)
        if person is None:
            continue
        course = courses[course_id]
        out.append(Persona(f"teacher-{course.id}", f"Teacher: {person.display_name} — {course.title}", person,
                           course, ("teacher",)))
    grants = session.execute(select(RoleGrant.person_id, RoleGrant.role).where(RoleGrant.revoked_at.is_(None))
                             .order_by(RoleGrant.id)).all()
    by_id = {p.id: p for p in people.values()}
    for person_id, role in grants:
        person = by_id.get(person_id)
        if person is None:
            continue
        if role == "case_manager":
            out.append(Persona(f"cm-{person.id}", f"Case manager: {person.display_name}", person, None, ("staff",)))
        elif role in ("district_admin", "school_admin"):
            out.append(Persona(f"admin-{person.id}", f"Administrator: {person.display_name}", person, None,
                               ("admin",)))
    student_row = session.execute(
        select(Enrollment.person_id, Enrollment.course_id).where(Enrollment.role == "student",
                                                                 Enrollment.state == "active")
        .order_by(Enrollment.course_id, Enrollment.person_id).limit(1)).first()
    if student_row and student_row[1] in courses and student_row[0] in by_id:
        out.append(Persona("student", f"Student: {by_id[student_row[0]].display_name}", by_id[student_row[0]],
                           courses[student_row[1]], ("student",)))
    return out


def login_url(settings: Settings, platform: Platform, persona: Persona) -> str:
    """The third-party-initiated login the practice page opens in its iframe (LTI Core 1.3 §5.1.1)."""
    params = {"iss": platform.issuer, "login_hint": persona.person.lti_sub,
              "target_link_uri": settings.base_url + "/lti/launch", "client_id": platform.client_id,
              "lti_deployment_id": DEPLOYMENT_ID, "lti_message_hint": persona.key,
              # LTI Client Side postMessages: the practice page offers platform storage (practice.js).
              "lti_storage_target": "_parent"}
    return settings.base_url + "/lti/login?" + urlencode(params)


def authorize(session: Session, settings: Settings, params: dict[str, str]) -> tuple[str, str, str]:
    """The OIDC authorization endpoint: check the tool's request, return (redirect_uri, id_token, state)."""
    platform = get_platform(session)
    if platform is None:
        raise PracticeError("The practice LMS is not set up: run `caseload demo`.", 404)
    expected_redirect = settings.base_url + "/lti/launch"
    checks = {"scope": "openid", "response_type": "id_token", "client_id": platform.client_id,
              "redirect_uri": expected_redirect}
    for name, value in checks.items():
        if params.get(name) != value:
            raise PracticeError(f"Practice LMS: '{name}' must be {value!r} in the authorization request.")
    for name in ("state", "nonce", "login_hint", "lti_message_hint"):
        if not params.get(name):
            raise PracticeError(f"Practice LMS: the authorization request has no '{name}'.")
    persona = next((p for p in personas(session, platform) if p.key == params["lti_message_hint"]), None)
    if persona is None or persona.person.lti_sub != params["login_hint"]:
        raise PracticeError("Practice LMS: unknown user or launch (login_hint / lti_message_hint).", 403)
    return expected_redirect, _id_token(settings, platform, persona, params["nonce"]), params["state"]


def _id_token(settings: Settings, platform: Platform, persona: Persona, nonce: str) -> str:
    now = int(time.time())
    person = persona.person
    roles = [ROLE_URI[r] for r in persona.roles if r in ROLE_URI]
    if "admin" in persona.roles:
        roles.append(ADMIN_URI)
    if "staff" in persona.roles:
        roles.append(STAFF_URI)
    claims: dict[str, Any] = {
        "iss": platform.issuer, "aud": platform.client_id, "sub": person.lti_sub, "iat": now, "exp": now + 60,
        "nonce": nonce, "name": person.name, "given_name": person.given_name, "family_name": person.family_name,
        "email": person.email,
        CLAIM + "deployment_id": DEPLOYMENT_ID, CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "version": "1.3.0", CLAIM + "target_link_uri": settings.base_url + "/lti/launch",
        CLAIM + "roles": roles,
        CLAIM + "resource_link": {"id": f"caseload-{persona.course.id if persona.course else 'account'}",
                                  "title": "Accommodations"},
        CLAIM + "lis": {"person_sourcedid": person.sis_id or ""},
        CLAIM + "tool_platform": {"product_family_code": "caseload-practice", "name": "Practice LMS"},
        CLAIM + "launch_presentation": {"document_target": "iframe", "locale": "en",
                                        "return_url": urls(settings)["page"]},
    }
    if persona.course is not None:
        course = persona.course
        claims[CLAIM + "context"] = {"id": course.lti_context_id, "title": course.title, "label": course.label,
                                     "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"]}
        claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = {
            "context_memberships_url": urls(settings)["nrps"] + "/" + course.lti_context_id,
            "service_versions": ["2.0"]}
    return jwt.encode(claims, _private_pem(platform), algorithm="RS256",
                      headers={"kid": platform.settings["practice_jwk"]["kid"]})


def issue_access_token(session: Session, settings: Settings, form: dict[str, str], tool_jwks: dict[str, Any]) -> dict:
    """Client credentials with a JWT client assertion (1EdTech Security Framework §4.1)."""
    platform = get_platform(session)
    if platform is None:
        raise PracticeError("The practice LMS is not set up.", 404)
    if form.get("grant_type") != "client_credentials":
        raise PracticeError("unsupported_grant_type")
    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        raise PracticeError("invalid_request: client_assertion_type")
    assertion = form.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        jwk = next(k for k in tool_jwks["keys"] if k.get("kid") == header.get("kid"))
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=urls(settings)["token"])  # type: ignore[arg-type]
    except (StopIteration, jwt.PyJWTError, ValueError):
        raise PracticeError("invalid_client", 401) from None
    if claims.get("iss") != platform.client_id or claims.get("sub") != platform.client_id:
        raise PracticeError("invalid_client", 401)
    scopes = [s for s in form.get("scope", "").split() if s == NRPS_SCOPE]
    if not scopes:
        raise PracticeError("invalid_scope")
    token = secrets.token_urlsafe(24)
    tokens = dict((platform.settings or {}).get("practice_tokens", {}))
    now = int(time.time())
    tokens = {k: v for k, v in tokens.items() if v > now}
    tokens[token] = now + 3600
    platform.settings = {**platform.settings, "practice_tokens": tokens}
    session.flush()
    return {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(scopes)}


def check_bearer(platform: Platform, authorization: str) -> None:
    token = authorization[7:] if authorization.startswith("Bearer ") else ""
    expiry = (platform.settings or {}).get("practice_tokens", {}).get(token)
    if not token or not expiry or expiry < time.time():
        raise PracticeError("A valid bearer token from /practice/token is required.", 401)


def memberships(session: Session, settings: Settings, platform: Platform, context_id: str, offset: int,
                limit: int) -> tuple[dict[str, Any], str | None]:
    """NRPS 2.0 membership container page and the next page URL (``Link: rel="next"``)."""
    course = session.scalars(select(Course).where(Course.platform_id == platform.id,
                                                  Course.lti_context_id == context_id)).one_or_none()
    if course is None:
        raise PracticeError("No such course in the practice LMS.", 404)
    rows = session.execute(
        select(Person, Enrollment.role).join(Enrollment, Enrollment.person_id == Person.id)
        .where(Enrollment.course_id == course.id, Enrollment.state == "active")
        .order_by(Person.id, Enrollment.role).offset(offset).limit(limit + 1)).all()
    members = [{"status": "Active", "user_id": p.lti_sub, "name": p.name, "given_name": p.given_name,
                "family_name": p.family_name, "email": p.email, "lis_person_sourcedid": p.sis_id or "",
                "roles": [ROLE_URI.get(role, ROLE_URI["student"])]} for p, role in rows[:limit]]
    base = urls(settings)["nrps"] + "/" + context_id
    next_url = f"{base}?offset={offset + limit}&limit={limit}" if len(rows) > limit else None
    return {"id": base, "context": {"id": context_id, "label": course.label, "title": course.title},
            "members": members}, next_url

"""Who is looking: the signed app token that follows an LTI launch, and CSRF for every form.

Third-party cookies are unreliable inside an LMS iframe, so after a launch every page carries a short-lived
signed token (``t`` in links and forms, or ``Authorization: Bearer``). The token names the person, the
platform, the course and the roles of the launch; access to students is NOT in the token: it is decided
on every request from live enrollments and grants (access follows the roster at once).

CSRF: every POST must carry ``csrf_token``, an HMAC of the launch id; a token from another launch or no
token at all is refused with 400. The app token itself is never in a cookie, so a cross-site form post has
neither.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import abort, current_app, g, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PARAM = "t"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Viewer:
    """The person on the other side of the iframe, as established by one LTI launch."""

    person_id: int
    platform_id: int
    course_id: int | None
    roles: tuple[str, ...]
    """Coarse launch roles (``LaunchRole`` values) mapped from the LTI roles claim."""
    launch_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    placement: str = "course_navigation"
    student_person_id: int | None = None
    """Set by a Student Context Card launch: the student the card is about."""

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


_SERIALIZERS: dict[str, URLSafeTimedSerializer] = {}
"""secret key -> serializer: built once per process instead of on every token issued or read."""


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config["CASELOAD"].secret_key
    serializer = _SERIALIZERS.get(secret)
    if serializer is None:
        serializer = _SERIALIZERS[secret] = URLSafeTimedSerializer(secret, salt="caseload.app-token")
    return serializer


def issue_token(viewer: Viewer) -> str:
    data = asdict(viewer)
    data["roles"] = list(viewer.roles)
    return _serializer().dumps(data)


class TokenError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_token(token: str) -> Viewer:
    ttl = current_app.config["CASELOAD"].app_token_ttl
    try:
        data = _serializer().loads(token, max_age=ttl)
    except SignatureExpired:
        raise TokenError("Your Caseload session has expired. Open Caseload again from your course.") from None
    except BadSignature:
        raise TokenError("This Caseload link is not valid. Open Caseload again from your course.") from None
    data["roles"] = tuple(data.get("roles", ()))
    return Viewer(**data)


def token_from_request() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.values.get(TOKEN_PARAM) or None


def csrf_token(viewer: Viewer | None = None) -> str:
    viewer = viewer or g.get("viewer")
    if viewer is None:
        return ""
    key = current_app.config["CASELOAD"].secret_key.encode()
    return hmac.new(key, f"csrf:{viewer.launch_id}:{viewer.person_id}".encode(), hashlib.sha256).hexdigest()


def _check_csrf(viewer: Viewer) -> None:
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(sent, csrf_token(viewer)):
        abort(400, description="This form is out of date or did not come from Caseload (CSRF check failed). "
                               "Reload the page and try again.")


def require_viewer(view: F) -> F:
    """Decorator: the request must carry a valid app token (and, for unsafe methods, a CSRF token)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = token_from_request()
        if not token:
            abort(401, description="Open Caseload from your course in the LMS: this page needs a launch.")
        try:
            viewer = read_token(token)
        except TokenError as exc:
            abort(401, description=exc.reason)
        g.viewer = viewer
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            _check_csrf(viewer)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def current_viewer() -> Viewer:
    viewer = g.get("viewer")
    if viewer is None:
        abort(401, description="Open Caseload from your course in the LMS: this page needs a launch.")
    return viewer  # type: ignore[no-any-return]


def app_url(endpoint: str, **values: Any) -> str:
    """url_for that carries the current viewer's (renewed) token, for links inside the tool. The token parameter is
    encoded once per request and appended last, exactly where url_for would have put it."""
    viewer = g.get("viewer")
    if viewer is None:
        return url_for(endpoint, **values)
    if "_anchor" in values:
        values[TOKEN_PARAM] = _fresh_token(viewer)
        return url_for(endpoint, **values)
    if "_token_query" not in g:
        g._token_query = urlencode({TOKEN_PARAM: _fresh_token(viewer)})
    url = url_for(endpoint, **values)
    return f"{url}{'&' if '?' in url else '?'}{g._token_query}"


def _fresh_token(viewer: Viewer) -> str:
    if "_fresh_token" not in g:
        g._fresh_token = issue_token(viewer)
    return g._fresh_token  # type: ignore[no-any-return]


def token_query(viewer: Viewer) -> str:
    return urlencode({TOKEN_PARAM: issue_token(viewer)})


def init_app(app) -> None:  # type: ignore[no-untyped-def]
    @app.teardown_request
    def _forget_viewer(_exc: BaseException | None) -> None:
        g.pop("viewer", None)
        g.pop("_fresh_token", None)
        g.pop("_token_query", None)

    @app.context_processor
    def _inject() -> dict[str, Any]:
        def token_field() -> str:
            viewer = g.get("viewer")
            if viewer is None:
                return ""
            return _fresh_token(viewer)

        return {
            "app_url": app_url,
            "csrf_token": csrf_token,
            "app_token": token_field,
            "viewer": g.get("viewer"),
        }

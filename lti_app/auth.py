"""Who is looking: the signed app token that follows an LTI launch, its binding to the launching browser, and CSRF.

Third-party cookies are unreliable inside an LMS iframe, so after a launch every page carries a short-lived
signed token (``t`` in links and forms, or ``Authorization: Bearer``). The token names the person, the
platform, the course and the roles of the launch; access to students is NOT in the token: it is decided
on every request from live enrollments and grants (access follows the roster at once).

A URL alone opens nothing (docs/design-notes.md, "Page tokens bound to the launching browser"):
- **Binding.** The token carries a digest of a secret only the launching browser holds, checked on every request.
  Where the launch's state cookie came back, the secret is an HttpOnly ``Secure; SameSite=None; Partitioned`` cookie
  (``__Host-caseload_bind``, keyed to the LMS's site by CHIPS, so even the same browser outside that LMS page lacks
  it). Where the browser dropped the cookie, the secret lives in the LMS's LTI platform storage (``lti.put_data`` at
  launch): a page request without it gets a small page that reads it back (``lti.get_data``) and repeats the request
  as a POST carrying it (``_b`` in the body; a repeated GET is marked ``?_caseload_replay=get``). Neither mode puts
  the secret in a URL. A copied URL (history, bookmark, print footer, another computer) is refused with a page
  asking to open Caseload from the course again.
- **Absolute lifetime.** Renewal page to page keeps the launch time; ``CASELOAD_APP_TOKEN_MAX_AGE`` (8 hours by
  default, half a day at most) after the launch the token is refused, so roles and grants are read afresh by a new
  launch.

CSRF: every POST must carry ``csrf_token``, an HMAC of the launch id; a token from another launch or no
token at all is refused with 400. The app token itself is never in a cookie, so a cross-site form post has
neither.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from flask import Response, abort, current_app, g, make_response, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PARAM = "t"
CSRF_FIELD = "csrf_token"
BINDING_FIELD = "_b"
"""The platform-storage binding secret, in a POST body (never a URL)."""
BINDING_HEADER = "X-Caseload-Binding"
REPLAY_PARAM = "_caseload_replay"
"""``?_caseload_replay=get`` on a POST: the request is a page GET repeated with the binding secret in its body."""
COOKIE_MODE, STORAGE_MODE = "c", "s"
_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


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
    launched_at: int = field(default_factory=lambda: int(time.time()))
    """When the LTI launch happened (Unix seconds). Renewal keeps it: the absolute lifetime counts from here."""
    binding: str = ""
    """``c:<digest>`` (browser cookie) or ``s:<digest>`` (LTI platform storage) of the launching browser's secret. A
    token without one is refused."""
    frame_origin: str = ""
    """The LMS page origin of the launch (validated ``return_url`` / Canvas API domain): the pages that follow may be
    framed by it at once, before every process has re-read the learned framing origins."""
    storage_target: str = ""
    """Platform-storage mode: the LMS frame that keeps the binding secret (``lti_storage_target``) …"""
    storage_origin: str = ""
    """… and the origin to post to it (Canvas: its login host; ``_parent``: the LMS page)."""

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


_VIEWER_FIELDS = frozenset(Viewer.__dataclass_fields__)


def read_token(token: str) -> Viewer:
    settings = current_app.config["CASELOAD"]
    try:
        data = _serializer().loads(token, max_age=settings.app_token_ttl)
    except SignatureExpired:
        raise TokenError("Your Caseload session has expired. Open Caseload again from your course.") from None
    except BadSignature:
        raise TokenError("This Caseload link is not valid. Open Caseload again from your course.") from None
    if not isinstance(data, dict) or not _VIEWER_FIELDS.issuperset(data) or "launched_at" not in data:
        raise TokenError("This Caseload link is from an older version of Caseload. Open Caseload again from your "
                         "course.")
    data["roles"] = tuple(data.get("roles", ()))
    viewer = Viewer(**data)
    if time.time() - viewer.launched_at > settings.app_token_max_age:
        hours = settings.app_token_max_age / 3600
        raise TokenError(f"Your Caseload session started more than {hours:g} hours ago. Open Caseload again from your "
                         "course: your roles and access are checked afresh at each launch.")
    return viewer


def token_from_request() -> str | None:
    replayed = request.environ.get("caseload.token")
    if replayed:
        return str(replayed)
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.values.get(TOKEN_PARAM) or None


# --- binding to the launching browser ------------------------------------------------------------------------

def new_browser_secret() -> str:
    return secrets.token_urlsafe(32)


def binding_digest(secret: str) -> str:
    """What the token keeps of the browser's secret: an HMAC under the app secret (the token is readable by whoever
    holds it, so it must not contain the secret itself)."""
    key = current_app.config["CASELOAD"].secret_key.encode()
    return hmac.new(key, b"caseload.browser-binding\x00" + secret.encode(), hashlib.sha256).hexdigest()[:32]


def bind(mode: str, secret: str) -> str:
    return f"{mode}:{binding_digest(secret)}"


def binding_cookie_name() -> str:
    """``__Host-`` (Secure, host-only, path /) so that no sibling host can plant a known secret in this browser."""
    return "__Host-caseload_bind" if current_app.config["CASELOAD"].secure_cookies else "caseload_bind"


def browser_secret_from_cookie() -> str | None:
    value = request.cookies.get(binding_cookie_name(), "")
    return value if _SECRET_SHAPE.match(value) else None


def set_binding_cookie(response: Response, secret: str) -> None:
    """A session cookie (gone when the browser closes); inside the LMS frame it must be ``Secure; SameSite=None;
    Partitioned`` to be kept at all (Chromium keeps partitioned third-party cookies and drops the others)."""
    secure = bool(current_app.config["CASELOAD"].secure_cookies)
    response.set_cookie(binding_cookie_name(), secret, path="/", httponly=True, secure=secure,
                        samesite="None" if secure else "Lax", partitioned=secure)


def storage_key(viewer: Viewer) -> str:
    """The platform-storage key of a launch's binding secret (LTI Client Side postMessages ``lti.put_data``)."""
    return f"caseload_bind_{viewer.launch_id}"


def _storage_secret() -> str | None:
    """The platform-storage secret, from a replayed request, a POST body or a script's header (never the URL)."""
    value = (request.environ.get("caseload.binding") or request.headers.get(BINDING_HEADER)
             or (request.form.get(BINDING_FIELD) if request.method == "POST" else None) or "")
    return value if _SECRET_SHAPE.match(value) else None


_UNBOUND = ("This Caseload page was opened outside the browser and LMS page where Caseload was launched (for example "
            "from a copied link, a bookmark or the browser history). Open Caseload again from your course.")


def _check_binding(viewer: Viewer, token: str) -> Response | None:
    """None when the request comes from the launching browser; otherwise the response to give instead."""
    mode, _, digest = viewer.binding.partition(":")
    if mode == COOKIE_MODE:
        secret = browser_secret_from_cookie()
    elif mode == STORAGE_MODE:
        secret = _storage_secret()
    else:
        abort(401, description=_UNBOUND)
    if secret is not None and hmac.compare_digest(binding_digest(secret), digest):
        return None
    if mode == STORAGE_MODE and secret is None and request.method in ("GET", "POST") and not request.files:
        return _storage_unlock_page(viewer, token)
    abort(401, description=_UNBOUND)


def _storage_unlock_page(viewer: Viewer, token: str) -> Response:
    """A page with no record on it that reads the binding secret back from the LMS's platform storage and repeats
    this request with it. Opened anywhere but inside the launching LMS page, the read fails and it says so."""
    if request.method == "GET":
        query = [(k, v) for k, v in parse_qsl(request.query_string.decode(), keep_blank_values=True)
                 if k != TOKEN_PARAM]
        fields: Iterable[tuple[str, str]] = [(TOKEN_PARAM, token)]
        query.append((REPLAY_PARAM, "get"))
    else:
        query = parse_qsl(request.query_string.decode(), keep_blank_values=True)
        fields = [(k, v) for k, values in request.form.lists() for v in values if k != BINDING_FIELD]
    action = request.path + ("?" + urlencode(query) if query else "")
    resp = make_response(render_template(
        "lti/storage_unlock.html", action=action, fields=list(fields), key=storage_key(viewer),
        target=viewer.storage_target, origins=viewer.storage_origin, binding_field=BINDING_FIELD), 401)
    return resp


class ReplayAsGet:
    """WSGI middleware: a POST to ``…?_caseload_replay=get`` is the page GET the platform-storage unlock page repeats
    with the token and binding secret in its body. It becomes that GET (without the marker), the two values travel in
    the WSGI environ, so views see an ordinary GET and the secret never appears in a URL."""

    def __init__(self, wsgi_app: Any, max_bytes: int) -> None:
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and f"{REPLAY_PARAM}=get" in environ.get("QUERY_STRING", ""):
            from werkzeug.formparser import parse_form_data

            query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            if (REPLAY_PARAM, "get") in query:
                try:
                    _stream, form, _files = parse_form_data(environ, max_content_length=self.max_bytes,
                                                            max_form_memory_size=self.max_bytes)
                except Exception:  # noqa: BLE001 - a malformed body: let Flask answer the POST as it is (405/400)
                    return self.wsgi_app(environ, start_response)
                environ = {**environ, "REQUEST_METHOD": "GET", "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b""),
                           "QUERY_STRING": urlencode([(k, v) for k, v in query if k != REPLAY_PARAM]),
                           "caseload.token": form.get(TOKEN_PARAM, ""), "caseload.binding": form.get(BINDING_FIELD, "")}
                environ.pop("CONTENT_TYPE", None)
        return self.wsgi_app(environ, start_response)


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
        instead = _check_binding(viewer, token)
        if instead is not None:
            return instead
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
    url = _url_without_token(endpoint, values)
    return f"{url}{'&' if '?' in url else '?'}{g._token_query}"


def app_url_by_id(endpoint: str, name: str) -> Callable[[int], str]:
    """``lambda i: app_url(endpoint, **{name: i})`` for a page with one link per row (the caseload's 200 students):
    the route is built once and each row's link is the id put in its place, not a memo lookup under the request
    and app proxies per link. Falls back to ``app_url`` per id if the built URL does not show the id as is."""
    probe = 7_301_947_513
    built = app_url(endpoint, **{name: probe})
    path, query = built.split("?", 1) if "?" in built else (built, "")
    head, found, tail = path.partition(str(probe))
    if not found or str(probe) in tail:
        return lambda value: app_url(endpoint, **{name: value})
    rest = f"{tail}?{query}" if query else tail
    return lambda value: f"{head}{int(value)}{rest}"


_URL_MEMO = "caseload.url_memo"
_URL_MEMO_SIZE = 10_000


def _url_without_token(endpoint: str, values: dict[str, Any]) -> str:
    """``url_for(endpoint, **values)``, memoised per app by (script root, endpoint, arguments): the same links recur
    on every page (the course panel builds a dozen filter links per render, each a walk of the routing map that cost
    a tenth of the first page's CPU). A relative URL depends on nothing else (``_external``, ``_scheme`` and the like
    are built as before); the memo stops growing at ``_URL_MEMO_SIZE`` entries."""
    if any(name.startswith("_") for name in values):
        return url_for(endpoint, **values)
    try:
        key = (request.script_root, endpoint, tuple(sorted(values.items())))
        memo: dict[Any, str] = current_app.extensions.setdefault(_URL_MEMO, {})
        url = memo.get(key)
    except TypeError:  # an unhashable argument
        return url_for(endpoint, **values)
    if url is None:
        url = url_for(endpoint, **values)
        if len(memo) < _URL_MEMO_SIZE:
            memo[key] = url
    return url


def _fresh_token(viewer: Viewer) -> str:
    if "_fresh_token" not in g:
        g._fresh_token = issue_token(viewer)
    return g._fresh_token  # type: ignore[no-any-return]


def token_query(viewer: Viewer) -> str:
    return urlencode({TOKEN_PARAM: issue_token(viewer)})


def init_app(app) -> None:  # type: ignore[no-untyped-def]
    app.wsgi_app = ReplayAsGet(app.wsgi_app, app.config["CASELOAD"].max_body_bytes)

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

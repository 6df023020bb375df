"""Response headers, and the refusal to serve the built-in development secret beyond this machine.

- ``Content-Security-Policy``: scripts, styles and forms from Caseload only; ``frame-ancestors`` lists the origins
  whose pages may show Caseload in a frame: every platform's issuer and login URL origins, the origins learned from
  validated launches, Dynamic Registration and administrators (``services.platforms.framing``), the origin the current
  page token was launched from, and ``CASELOAD_EXTRA_FRAME_ANCESTORS``. An origin nobody vouched for is refused.
- ``Referrer-Policy: no-referrer``: a page's URL carries its page token, and without this every image, script and
  stylesheet request (and any link followed out of the LMS frame) would repeat it in ``Referer``.
- ``Cache-Control: no-store`` on every page except static files and the public key set: pages show student records
  and carry tokens; the browser's cache and history must not keep them.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from lti_app.settings import _INSECURE_DEV_SECRET, Settings, SettingsError

log = logging.getLogger(__name__)
_CACHE_SECONDS = 60
"""How long a process keeps the list of learned framing origins. The launch that learns an origin needs no wait: its
page token carries the origin (``Viewer.frame_origin``); an administrator's change reaches every process within this."""


def _origin(url: str) -> str | None:
    from lti_app.services.platforms.framing import origin_of_url

    return origin_of_url(url)


def practice_origins(settings: Settings) -> list[str]:
    """The practice LMS's own origin (dev/demo/test only). Its course page, when ``CASELOAD_PRACTICE_LMS_PAGE_URL``
    puts it on another host, is learned like a real LMS's: from a launch, or from an administrator."""
    origin = _origin(settings.practice_url) if settings.practice_enabled else None
    return [origin] if origin else []


def frame_ancestors() -> list[str]:
    """Origins allowed to embed Caseload on this response (see the module docstring), 'self' not included."""
    cache: dict[str, Any] = current_app.extensions.setdefault("caseload.frame_cache", {})
    now = time.monotonic()
    if cache.get("at", -1e9) + _CACHE_SECONDS > now:
        known: list[str] = cache["origins"]
    else:
        from lti_app.db import get_session
        from lti_app.services.platforms.framing import all_known_origins

        try:
            known = all_known_origins(get_session())
        except Exception:  # noqa: BLE001 - headers must not fail a response; fall back to the configured origins
            log.warning("framing origins could not be read; this response allows only the configured ones")
            known = []
        else:
            cache.update(at=now, origins=known)
    settings = current_app.config["CASELOAD"]
    origins = set(known) | {o for o in (_origin(x) for x in settings.extra_frame_ancestors) if o}
    origins.update(practice_origins(settings))
    origins.update(g.get("frame_ancestors_extra", ()))
    viewer: Any = g.get("viewer")
    if viewer is not None and viewer.frame_origin:
        origins.add(str(viewer.frame_origin))
    return sorted(origins)


def allow_framing_by(*origins: str | None) -> None:
    """Let this one response be framed by ``origins`` too (already vetted by the caller: the page of a validated launch,
    or the page that opened a valid registration link)."""
    extra = set(g.get("frame_ancestors_extra", ()))
    extra.update(o for o in origins if o)
    g.frame_ancestors_extra = extra


def invalidate_frame_cache(app: Flask | None = None) -> None:
    (app or current_app).extensions.pop("caseload.frame_cache", None)


def _loopback(host: str | None) -> bool:
    text = (host or "").strip().strip("[]").lower()
    if text in ("localhost", "") or text.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def uses_dev_secret(settings: Settings) -> bool:
    return settings.secret_key == _INSECURE_DEV_SECRET


def refuse_dev_secret_on(host: str, settings: Settings) -> None:
    """Refuse to listen on ``host`` when it is reachable from other machines while the built-in development secret
    signs page tokens: anyone who has read Caseload's source can mint an administrator's token with it. Called by
    ``config/gunicorn.conf.py`` for each bind address, and by the app for its base URL."""
    if uses_dev_secret(settings) and not _loopback(host):
        raise SettingsError(
            f"Caseload is using its built-in development secret and would be reachable on {host!r}: anyone could "
            "sign a page token with that secret. Set CASELOAD_SECRET_KEY (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))') or serve on 127.0.0.1 / localhost only.")


def _refuse_non_loopback_request() -> Any:
    """With the development secret, answer only requests from this machine to a server bound to this machine."""
    from lti_app.errors import render_error

    environ = request.environ
    bound = environ.get("SERVER_NAME") if str(environ.get("SERVER_SOFTWARE", "")).startswith("Werkzeug") else None
    if _loopback(request.remote_addr) and (bound is None or _loopback(bound)):
        return None
    return render_error(503, "This Caseload server is using its built-in development secret, so it answers only on "
                             "this machine (127.0.0.1). Its administrator must set CASELOAD_SECRET_KEY before "
                             "serving it to others.", title="Caseload is not configured for this network")


class QueryStringRedactor(logging.Filter):
    """Request lines logged by the development server (``werkzeug``) keep their path but lose their query string,
    where page tokens and LMS login hints travel: no token reaches a log line. (gunicorn's access log format in
    ``config/gunicorn.conf.py`` logs the path only.)"""

    _QUERY = re.compile(r"\?[^\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is left to logging's own error handling
            return True
        if "?" in message:
            record.msg, record.args = self._QUERY.sub("?[query omitted]", message), ()
        return True


def _redact_request_lines() -> None:
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, QueryStringRedactor) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(QueryStringRedactor())


def _refuse_control_characters() -> Any:
    """Refuse (422, naming the field) a query or form value holding a control character, before any view reads it.

    PostgreSQL cannot store NUL in text at all (the driver raises, which was a 500 wherever a form reached the
    database unchecked), and the other C0/C1 controls are invisible on a page: never typed, only pasted or forged. One
    check here covers every form and filter, present and future; tab, line feed and carriage return stay allowed.
    Webhook bodies are verified byte for byte by their own endpoints and are not forms. Multipart bodies (the CSV
    upload) are left to their view, which sets its own size limit before parsing and checks the file line by line."""
    from lti_app.domain.casework_rules import has_control_characters
    from lti_app.errors import render_error

    if request.blueprint == "webhooks" or request.endpoint == "static":
        return None
    values = list(request.args.items(multi=True))
    if request.mimetype == "application/x-www-form-urlencoded":
        values += list(request.form.items(multi=True))
    for name, value in values:
        if has_control_characters(name) or has_control_characters(value):
            field = name if not has_control_characters(name) else "(unnamed)"
            return render_error(422, f"The field \u201c{field[:60]}\u201d contains a control character (an invisible "
                                     "character such as NUL, often pasted from another program). Remove it and "
                                     "send the form again; nothing was saved.", title="This form could not be saved")
    return None


def init_app(app: Flask) -> None:
    settings: Settings = app.config["CASELOAD"]
    _redact_request_lines()
    refuse_dev_secret_on(urlsplit(settings.base_url).hostname or "", settings)
    if uses_dev_secret(settings):
        app.before_request(_refuse_non_loopback_request)
    app.before_request(_refuse_control_characters)

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html" and "Content-Security-Policy" not in resp.headers:
            ancestors = " ".join(["'self'", *frame_ancestors()])
            resp.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"
            )
        if request.endpoint != "static" and ("Cache-Control" not in resp.headers or request.path.startswith(
                ("/lti/login", "/lti/launch", "/lti/register", "/panels", "/casework", "/admin"))):
            resp.headers["Cache-Control"] = "no-store"
        return resp

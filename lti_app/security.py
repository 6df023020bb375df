"""Response headers: a CSP whose frame-ancestors are the registered platforms, no referrer, no sniffing."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from sqlalchemy import select

_CACHE_SECONDS = 60


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def frame_ancestors() -> list[str]:
    """Origins allowed to embed Caseload: every registered platform's issuer and login URL origin."""
    cache: dict[str, Any] = current_app.extensions.setdefault("caseload.frame_cache", {})
    now = time.monotonic()
    if cache.get("at", -1e9) + _CACHE_SECONDS > now:
        return cache["origins"]  # type: ignore[no-any-return]
    from lti_app.db import get_session
    from lti_app.models import Platform

    settings = current_app.config["CASELOAD"]
    origins: set[str] = set(settings.extra_frame_ancestors)
    try:
        rows = get_session().execute(select(Platform.issuer, Platform.auth_login_url)).all()
    except Exception:  # noqa: BLE001 - headers must not fail a response; fall back to 'self' only
        rows = []
    for issuer, login in rows:
        for url in (issuer, login):
            o = _origin(url or "")
            if o:
                origins.add(o)
    if settings.practice_enabled:
        o = _origin(settings.practice_url)
        if o:
            origins.add(o)
    result = sorted(origins)
    cache.update(at=now, origins=result)
    return result


def invalidate_frame_cache(app: Flask | None = None) -> None:
    (app or current_app).extensions.pop("caseload.frame_cache", None)


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if resp.mimetype == "text/html" and "Content-Security-Policy" not in resp.headers:
            ancestors = " ".join(["'self'", *frame_ancestors()])
            resp.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"
            )
        if request.path.startswith(("/panels", "/casework", "/admin", "/lti/launch")):
            resp.headers["Cache-Control"] = "no-store"
        return resp

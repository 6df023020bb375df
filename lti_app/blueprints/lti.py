"""LTI endpoints: OIDC login, launch, and Caseload's public keys. Thin: the work is in lti_app.lti and
services.launch.

Framing (docs/design-notes.md, "Framing origins"): every page of the launch flow must be framable by the LMS page that
hosts it. Before an id_token exists the login knows only the platform, so its platform-storage page is shown only when
the LMS page that started the login (its ``Origin`` or ``Referer``) is one the platform is known to use; otherwise the
login redirects at once. After a validated launch, the origins the launch names (``return_url``, Canvas's API domain)
are stored for the platform and carried in the page token.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, jsonify, make_response, redirect, render_template, request, url_for

from lti_app.auth import (
    BINDING_FIELD,
    COOKIE_MODE,
    REPLAY_PARAM,
    STORAGE_MODE,
    TOKEN_PARAM,
    bind,
    browser_secret_from_cookie,
    issue_token,
    new_browser_secret,
    set_binding_cookie,
    storage_key,
)
from lti_app.db import get_session
from lti_app.errors import render_error
from lti_app.lti.adapter import NeedsPlatformStorageCheck, read_state, state_cookie_name, validate_launch
from lti_app.lti.adapter import login as oidc_login
from lti_app.lti.context import LaunchContext
from lti_app.lti.errors import LaunchError
from lti_app.lti.registry_cache import registry_cache
from lti_app.security import allow_framing_by, invalidate_frame_cache
from lti_app.services.launch.flow import record_launch
from lti_app.services.platforms import framing, keys

log = logging.getLogger(__name__)
bp = Blueprint("lti", __name__)

_DESTINATIONS = {
    "panel": "/panels/course",
    "student_card": "/panels/student-card",
    "casework": "/casework/",
    "admin": "/admin/",
}


def _requesting_page_origin() -> str | None:
    """The origin of the page that sent this request into Caseload's frame: ``Origin`` on a POST, else the
    ``Referer`` (LMS pages send at least their origin cross-site). None when the browser sent neither."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return framing.normalise_origin(origin)
    return framing.origin_of_url(request.headers.get("Referer"))


def _platform_origins(platform_id: int) -> list[str]:
    settings = current_app.config["CASELOAD"]
    configured = {o for o in (framing.normalise_origin(x) for x in settings.extra_frame_ancestors) if o}
    return sorted(set(framing.known_origins(get_session(), platform_id)) | configured)


def _login_storage_origins(platform: Any, target: str) -> list[str]:
    """Where the login's platform-storage page may post the state: Canvas's named frame lives on its login host;
    ``_parent`` is the LMS page, whose origin is the login request's when that is already known for the platform,
    else every origin the platform is known to use. Empty (no storage page) when the page that started the login is
    not one the platform is known to use: it could not show the page anyway."""
    known = _platform_origins(platform.id)
    page = _requesting_page_origin()
    if page is not None and page not in known:
        log.info("login for platform %s from a page origin not (yet) known for it: no platform-storage page",
                 platform.id)
        return []
    if target != "_parent":
        login = framing.origin_of_url(platform.auth_login_url)
        return [login] if login else []
    return [page] if page is not None else known


@bp.route("/lti/login", methods=["GET", "POST"])
def login() -> Any:
    session = get_session()
    try:
        response = oidc_login(session, _login_storage_origins)
    except LaunchError as exc:
        session.rollback()
        log.info("login refused: %s", exc.reason)
        return render_error(exc.status, exc.reason, title="Caseload could not start the launch")
    session.commit()
    return response


def _launch_page_origins(ctx: LaunchContext) -> list[str]:
    """The LMS page origins a validated launch names: ``launch_presentation.return_url`` and, for Canvas,
    ``$Canvas.api.domain`` (https, or the return URL's scheme for the same host)."""
    origins: list[str] = []
    returned = framing.origin_of_url(ctx.return_url)
    if returned:
        origins.append(returned)
    if ctx.lms_family == "canvas" and ctx.canvas_api_domain:
        scheme = "https"
        if returned and returned.split("://", 1)[1] == ctx.canvas_api_domain.lower():
            scheme = returned.split("://", 1)[0]
        api = framing.origin_of_host(ctx.canvas_api_domain, scheme=scheme)
        if api and api not in origins:
            origins.append(api)
    return origins


@bp.post("/lti/launch")
def launch() -> Any:
    session = get_session()
    try:
        ctx = validate_launch(session)
        outcome = record_launch(session, ctx)
        page_origins = _launch_page_origins(ctx)
        # Origins a launch of this process already vouched for are known: no need to read the platform's origins.
        registry = registry_cache()
        generation = registry.generation
        learned = ([] if registry.origins_known(ctx.platform_id, page_origins)
                   else framing.learn(session, ctx.platform_id, page_origins, "launch"))
    except NeedsPlatformStorageCheck as check:
        session.rollback()  # nothing is written until the state is confirmed
        origins = _platform_origins(read_state(check.state))
        if check.target != "_parent":
            origins = [check.origin]
        return render_template("lti/storage_launch.html", target=check.target, key=f"state_{check.state}",
                               state=check.state, origins=origins, id_token=request.form["id_token"])
    except LaunchError as exc:
        session.rollback()
        log.info("launch refused: %s", exc.reason)
        return render_error(exc.status, exc.reason, title="Caseload could not verify this launch")
    session.commit()
    registry.note_origins_known(ctx.platform_id, page_origins, generation)
    if learned:
        invalidate_frame_cache()
    allow_framing_by(*page_origins)
    if outcome.course_id is not None and ctx.nrps_url:
        from lti_app.services.roster.reconcile import request_course_sync

        request_course_sync(outcome.course_id, trigger="launch")
    if outcome.destination not in _DESTINATIONS:
        template = "lti/designer.html" if outcome.destination == "designer" else "lti/staff_only.html"
        return render_template(template)
    return _bound_start(outcome.viewer, _DESTINATIONS[outcome.destination], page_origins[0] if page_origins else "")


def _bound_start(viewer: Any, destination: str, frame_origin: str) -> Any:
    """The first page of a launch, with the page token bound to this browser (lti_app.auth): by a partitioned cookie
    where the launch's state cookie came back, else by a secret kept in the LMS's platform storage."""
    state = request.form.get("state", "")
    cookie_works = bool(state) and request.cookies.get(state_cookie_name(state)) == state
    target = request.form.get("lti_storage_target", "")
    if cookie_works or not target:
        secret = browser_secret_from_cookie() or new_browser_secret()
        bound = dataclasses.replace(viewer, binding=bind(COOKIE_MODE, secret), frame_origin=frame_origin)
        response = make_response(redirect(f"{destination}?{urlencode({TOKEN_PARAM: issue_token(bound)})}", code=303))
        set_binding_cookie(response, secret)
        return response
    secret = new_browser_secret()
    platform_origins = _platform_origins(viewer.platform_id)
    if target == "_parent":
        origins = [frame_origin] if frame_origin else platform_origins
    else:
        origins = [o for o in [framing.origin_of_url(_auth_login_url(viewer.platform_id))] if o]
    bound = dataclasses.replace(viewer, binding=bind(STORAGE_MODE, secret), frame_origin=frame_origin,
                                storage_target=target, storage_origin=" ".join(origins))
    return render_template("lti/storage_bind.html", target=target, key=storage_key(bound), secret=secret,
                           origins=origins, token=issue_token(bound), binding_field=BINDING_FIELD,
                           action=f"{destination}?{REPLAY_PARAM}=get")


def _auth_login_url(platform_id: int) -> str:
    from lti_app.models import Platform

    platform = get_session().get(Platform, platform_id)
    return platform.auth_login_url if platform is not None else ""


@bp.get("/lti/jwks")
@bp.get("/.well-known/jwks.json")
def jwks() -> Any:
    session = get_session()
    body = keys.jwks(session)
    session.commit()
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/lti/")
def about() -> Any:
    """Where an admin who opens the tool URL directly lands: what to configure in the LMS."""
    base = request.host_url.rstrip("/")
    return render_template("lti/about.html", urls={
        "login": base + url_for("lti.login"), "launch": base + url_for("lti.launch"),
        "jwks": base + url_for("lti.jwks")})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

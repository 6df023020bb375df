"""LTI endpoints: OIDC login, launch, and Caseload's public keys. Thin: the work is in lti_app.lti and
services.launch."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, redirect, render_template, request, url_for

from lti_app.auth import TOKEN_PARAM, issue_token
from lti_app.db import get_session
from lti_app.errors import render_error
from lti_app.lti.adapter import NeedsPlatformStorageCheck, validate_launch
from lti_app.lti.adapter import login as oidc_login
from lti_app.lti.errors import LaunchError
from lti_app.services.launch.flow import record_launch
from lti_app.services.platforms import keys

log = logging.getLogger(__name__)
bp = Blueprint("lti", __name__)

_DESTINATIONS = {
    "panel": "/panels/course",
    "student_card": "/panels/student-card",
    "casework": "/casework/",
    "admin": "/admin/",
}


@bp.route("/lti/login", methods=["GET", "POST"])
def login() -> Any:
    session = get_session()
    try:
        response = oidc_login(session)
    except LaunchError as exc:
        session.rollback()
        log.info("login refused: %s", exc.reason)
        return render_error(exc.status, exc.reason, title="Caseload could not start the launch")
    session.commit()
    return response


@bp.post("/lti/launch")
def launch() -> Any:
    session = get_session()
    try:
        ctx = validate_launch(session)
        outcome = record_launch(session, ctx)
    except NeedsPlatformStorageCheck as check:
        session.rollback()  # nothing is written until the state is confirmed
        return render_template("lti/storage_launch.html", target=check.target, key=f"state_{check.state}",
                               state=check.state, origin=check.origin, id_token=request.form["id_token"])
    except LaunchError as exc:
        session.rollback()
        log.info("launch refused: %s", exc.reason)
        return render_error(exc.status, exc.reason, title="Caseload could not verify this launch")
    session.commit()
    if outcome.course_id is not None and ctx.nrps_url:
        from lti_app.services.roster.reconcile import request_course_sync

        request_course_sync(outcome.course_id, trigger="launch")
    if outcome.destination in _DESTINATIONS:
        target = f"{_DESTINATIONS[outcome.destination]}?{TOKEN_PARAM}={issue_token(outcome.viewer)}"
        return redirect(target, code=303)
    template = "lti/designer.html" if outcome.destination == "designer" else "lti/staff_only.html"
    return render_template(template)


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

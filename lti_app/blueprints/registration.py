"""Registration helpers: the Canvas developer-key JSON at /lti/config/canvas.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, make_response, render_template, request

from lti_app.db import get_session
from lti_app.errors import render_error
from lti_app.services.platforms import framing
from lti_app.services.platforms.canvas_config import developer_key
from lti_app.services.platforms.dynamic_registration import INVITE_PARAM, RegistrationFailed, register

bp = Blueprint("registration", __name__)


@bp.get("/lti/config/canvas.json")
def canvas_json() -> Any:
    return jsonify(developer_key(current_app.config["CASELOAD"].base_url))


@bp.get("/lti/register")
def dynamic_registration() -> Any:
    """LTI Dynamic Registration 1.0, started by the LMS (Moodle 4.x, Canvas)."""
    from lti_app.security import allow_framing_by, invalidate_frame_cache

    session = get_session()
    # The LMS administrator's page that opened the link in its frame (Moodle's and Canvas's registration dialogs).
    page_origin = framing.origin_of_url(request.headers.get("Referer"))
    try:
        result = register(session, current_app.config["CASELOAD"].base_url,
                          request.args.get("openid_configuration", ""), request.args.get("registration_token"),
                          request.args.get(INVITE_PARAM), page_origin=page_origin)
    except RegistrationFailed as exc:
        session.rollback()
        if exc.status != 403:  # a valid link: let the administrator read why, inside the LMS's dialog
            allow_framing_by(page_origin)
        return render_error(exc.status, exc.reason, title="Caseload could not complete the registration")
    session.commit()
    invalidate_frame_cache()
    allow_framing_by(page_origin)
    base = current_app.config["CASELOAD"].base_url.rstrip("/")
    family = "canvas" if result.platform.lms == "canvas" else "moodle" if result.platform.lms == "moodle" else None
    response = make_response(render_template(
        "registration/done.html", platform=result.platform, deployment_id=result.deployment_id,
        webhook_url=f"{base}/webhooks/{family}/{result.platform.name}" if family else None,
        webhook_secret=result.webhook_secret))
    response.headers["Cache-Control"] = "no-store"  # the webhook secret is shown once
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

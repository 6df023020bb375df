"""Registration helpers: the Canvas developer-key JSON at /lti/config/canvas.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request

from lti_app.db import get_session
from lti_app.errors import render_error
from lti_app.services.platforms.canvas_config import developer_key
from lti_app.services.platforms.dynamic_registration import INVITE_PARAM, RegistrationFailed, register

bp = Blueprint("registration", __name__)


@bp.get("/lti/config/canvas.json")
def canvas_json() -> Any:
    return jsonify(developer_key(current_app.config["CASELOAD"].base_url))


@bp.get("/lti/register")
def dynamic_registration() -> Any:
    """LTI Dynamic Registration 1.0, started by the LMS (Moodle 4.x, Canvas)."""
    session = get_session()
    try:
        result = register(session, current_app.config["CASELOAD"].base_url,
                          request.args.get("openid_configuration", ""), request.args.get("registration_token"),
                          request.args.get(INVITE_PARAM))
    except RegistrationFailed as exc:
        session.rollback()
        return render_error(exc.status, exc.reason, title="Caseload could not complete the registration")
    session.commit()
    from lti_app.security import invalidate_frame_cache

    invalidate_frame_cache()
    return render_template("registration/done.html", platform=result.platform, deployment_id=result.deployment_id)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

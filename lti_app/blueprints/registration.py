"""Registration helpers: the Canvas developer-key JSON at /lti/config/canvas.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from lti_app.services.canvas_config import developer_key

bp = Blueprint("registration", __name__)


@bp.get("/lti/config/canvas.json")
def canvas_json() -> Any:
    return jsonify(developer_key(current_app.config["CASELOAD"].base_url))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""``/healthz``: liveness plus a database round trip, for load balancers and uptime checks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text

from lti_app.db import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    try:
        get_session().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - report, never raise, from a health check
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": "ok"})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

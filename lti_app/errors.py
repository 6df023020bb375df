"""Error pages that say what happened and what to do, with a reference id to quote. Never a stack trace."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_TITLES = {
    400: "Caseload could not use this request",
    401: "Please open Caseload from your course",
    403: "You do not have access to this",
    404: "Not found",
    405: "Not allowed",
    413: "That was too large",
    422: "Please check what you entered",
    429: "Too many requests",
    503: "Caseload is briefly unavailable",
}


def _wants_json() -> bool:
    return request.path.startswith(("/webhooks/", "/api/")) or (
        request.accept_mimetypes.best == "application/json"
    )


def render_error(status: int, reason: str, title: str | None = None, **extra: Any) -> tuple[Any, int]:
    ref = secrets.token_hex(4)
    if status >= 500:
        log.error("error ref=%s status=%s path=%s", ref, status, request.path)
    else:
        log.info("refused ref=%s status=%s path=%s reason=%s", ref, status, request.path, reason)
    if _wants_json():
        return jsonify({"error": title or _TITLES.get(status, "Error"), "reason": reason, "reference": ref}), status
    return (
        render_template("error.html", status=status, title=title or _TITLES.get(status, "Something went wrong"),
                        reason=reason, reference=ref, **extra),
        status,
    )


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        code = exc.code or 500
        reason = exc.description or ""
        if code == 413:
            limit = app.config["CASELOAD"].max_body_bytes
            reason = f"The request body is larger than the {limit:,} bytes Caseload accepts."
        resp, status = render_error(code, reason)
        return resp, status

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _db_down(_exc: Exception) -> Any:
        log.error("database unavailable: %s", type(_exc).__name__)
        resp, status = render_error(503, "The database is not reachable right now. Please try again shortly.")
        resp = app.make_response((resp, status))
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s", request.path)
        return render_error(500, "Something unexpected happened inside Caseload. Quote the reference below "
                                 "to your district's Caseload administrator.")

"""Pushed roster events: ``POST /webhooks/canvas/<platform>`` (Canvas Live Events, signed JWT bodies) and
``POST /webhooks/moodle/<platform>`` (the Caseload companion plugin, HMAC-signed JSON).

Answers (JSON): 202 when the event is stored (``accepted``), was already stored (``duplicate``) or is of a type
Caseload does not use (``ignored``, stored for the record); 200 ``{"status": "ok", "platform": …}`` to the Moodle
plugin's signed "Test connection" (nothing stored); 4xx with an ``error`` title that says what was refused ("Event
refused: …", never the page wording "open Caseload from your course") and a ``reason`` (nothing stored); 413 over
``CASELOAD_MAX_BODY_BYTES``; 503 with ``Retry-After`` when the database or the key set is unreachable, so the LMS
retries. These endpoints take no cookies and no CSRF token: the signature is the authentication.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from lti_app.db import engine
from lti_app.errors import render_error
from lti_app.services.roster import inbox
from lti_app.services.roster.webhooks import Receipt, WebhookRefused, receive_canvas, receive_moodle

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _answer(receipt: Receipt) -> Response:
    if receipt.pong is not None:
        return jsonify({"status": "ok", "platform": receipt.pong.platform, "lms": receipt.pong.lms,
                        "message": receipt.pong.message()})
    if receipt.event_id is not None and not receipt.ignored:
        inbox.kick()
    body: dict[str, Any] = {"status": receipt.status, "event_type": receipt.event_type}
    if receipt.ignored:
        body["reason"] = receipt.ignored
    resp = jsonify(body)
    resp.status_code = 202
    return resp


REFUSAL_TITLES = {
    400: "Event refused: Caseload cannot read it",
    401: "Event refused: the signature was not accepted",
    403: "Event refused: this sender is not accepted for this platform",
    404: "Event refused: no such platform in Caseload",
    409: "Event refused: the platform is not set up for pushed events",
    503: "Event not stored: Caseload cannot store events right now, send it again later",
}
"""Titles of webhook refusals: they are read by an LMS administrator in a task log, not by a person in a page."""


def _refused(exc: WebhookRefused) -> Any:
    body, status = render_error(exc.status, exc.reason, title=REFUSAL_TITLES.get(exc.status, "Event refused"))
    if status == 503:
        body.headers["Retry-After"] = "30"
    return body, status


def _body() -> bytes:
    # Flask enforces MAX_CONTENT_LENGTH (413) while reading, also for chunked bodies.
    return request.get_data(cache=False)


@bp.post("/canvas/<platform>")
def canvas(platform: str) -> Any:
    try:
        receipt = receive_canvas(engine(), platform, _body())
    except WebhookRefused as exc:
        return _refused(exc)
    return _answer(receipt)


@bp.post("/moodle/<platform>")
def moodle(platform: str) -> Any:
    try:
        receipt = receive_moodle(engine(), platform, _body(), request.headers.get("X-Caseload-Timestamp"),
                                 request.headers.get("X-Caseload-Signature"))
    except WebhookRefused as exc:
        return _refused(exc)
    return _answer(receipt)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""The alerts inbox, each person's alert settings, and the one-click unsubscribe link of alert e-mail.

Answers: ``GET /alerts/`` the inbox (without a launch: a page saying how to open it from the LMS, since e-mail links
land here); ``POST /alerts/read`` mark read (303 back); ``GET /alerts/<id>/open`` mark read and go to the student
(404 for someone else's alert); ``GET|POST /alerts/settings``; ``GET /alerts/unsubscribe/<token>`` a confirmation
page and ``POST`` the same URL (RFC 8058 one-click: the mail program posts ``List-Unsubscribe=One-Click``; no
launch and no CSRF token, the signed token is the authority) — 400 for a damaged link. Work is in
``services/alerts``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, request

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer, token_from_request
from lti_app.blueprints import navigation
from lti_app.db import get_session
from lti_app.domain import alerts as rules
from lti_app.errors import render_error
from lti_app.ids import parse_id
from lti_app.services.alerts import delivery, inbox

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

DONE = {"read": "Marked as read.", "settings": "Your alert settings are saved."}


@bp.get("/")
def inbox_page() -> Any:
    if not token_from_request():
        # An e-mail link, opened outside the LMS: Caseload pages need a launch, so say how to get there.
        return render_template("alerts/outside.html"), 200
    return _inbox()


@require_viewer
def _inbox() -> Any:
    viewer = current_viewer()
    session = get_session()
    unread_only = request.args.get("show") == "unread"
    items = inbox.list_alerts(session, viewer, unread_only=unread_only)
    unread = inbox.unread_count(session, viewer.person_id)
    session.commit()  # the access log rows
    return render_template("alerts/inbox.html", items=items, unread=unread, unread_only=unread_only,
                           done=DONE.get(request.args.get("done", "")))


@bp.post("/read")
@require_viewer
def mark_read() -> Any:
    viewer = current_viewer()
    session = get_session()
    if request.form.get("all"):
        inbox.mark_read(session, viewer, None)
    else:
        ids = [i for i in (parse_id(v) for v in request.form.getlist("alert")) if i is not None]
        if not ids:
            return render_error(400, "Choose an alert to mark as read.", title="Nothing to mark")
        inbox.mark_read(session, viewer, ids)
    session.commit()
    return redirect(app_url("alerts.inbox_page", done="read"), code=303)


@bp.get("/<int:alert_id>/open")
@require_viewer
def open_alert(alert_id: int) -> Any:
    session = get_session()
    endpoint, values = inbox.open_alert(session, current_viewer(), alert_id)
    session.commit()
    return redirect(app_url(endpoint, **values), code=303)


@bp.route("/settings", methods=["GET", "POST"])
@require_viewer
def settings_page() -> Any:
    viewer = current_viewer()
    session = get_session()
    error = None
    if request.method == "POST":
        try:
            inbox.save_preferences(session, viewer, request.form.to_dict())
        except inbox.PreferencesInvalid as exc:
            error = str(exc)
        else:
            session.commit()
            return redirect(app_url("alerts.inbox_page", done="settings"), code=303)
    prefs = inbox.read_preferences(session, viewer.person_id)
    smtp = bool(current_app.config["CASELOAD"].smtp_url)
    return render_template("alerts/settings.html", prefs=prefs, kinds=rules.CHOOSABLE_KINDS,
                           labels=rules.KIND_LABELS, smtp=smtp, error=error), (400 if error else 200)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    session = get_session()
    try:
        person_id, kinds = delivery.read_unsubscribe_token(token)
    except delivery.UnsubscribeInvalid as exc:
        return render_template("alerts/unsubscribe.html", error=str(exc), done=False, kinds=[],
                               labels=rules.KIND_LABELS), 400
    if request.method == "POST":
        try:
            delivery.unsubscribe(session, token)
        except delivery.UnsubscribeInvalid as exc:
            session.rollback()
            return render_template("alerts/unsubscribe.html", error=str(exc), done=False, kinds=[],
                                   labels=rules.KIND_LABELS), 400
        session.commit()
        return render_template("alerts/unsubscribe.html", error=None, done=True, kinds=kinds,
                               labels=rules.KIND_LABELS)
    return render_template("alerts/unsubscribe.html", error=None, done=False, kinds=kinds, token=token,
                           labels=rules.KIND_LABELS)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def _alerts_header() -> dict[str, Any]:
        # The header's unread count comes from the same read as its links (navigation.header_facts: one statement).
        return {"alerts_unread": navigation.unread_alerts, "local_time": clock.local}

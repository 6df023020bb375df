"""The practice LMS pages (dev/demo/test only): a fake course page with Caseload in an iframe, and the
platform endpoints (auth, token, JWKS, NRPS). Served on the practice site (``localhost``) so the tool, on
``127.0.0.1``, is cross-site as inside a real LMS."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from lti_app.db import get_session
from lti_app.demo import alerts as demo_alerts
from lti_app.demo import practice_platform as practice
from lti_app.demo import practice_quizzes
from lti_app.errors import render_error
from lti_app.ids import parse_id
from lti_app.services.alerts import job as alerts_job
from lti_app.services.platforms import keys

bp = Blueprint("practice", __name__, url_prefix="/practice")


@bp.before_request
def _only_in_practice_mode() -> None:
    if not current_app.config["CASELOAD"].practice_enabled:
        abort(404)


def _csp(resp: Any) -> Any:
    settings = current_app.config["CASELOAD"]
    tool = "{0.scheme}://{0.netloc}".format(urlsplit(settings.base_url))
    page = "{0.scheme}://{0.netloc}".format(urlsplit(practice.page_url(settings)))
    platform = "{0.scheme}://{0.netloc}".format(urlsplit(settings.practice_url))
    # The authorization page (on the platform's host) runs in the tool's frame on the course page, which may be on a
    # host of its own.
    resp.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-src 'self' {tool} {platform}; "
        f"form-action 'self' {tool}; frame-ancestors 'self' {page}; base-uri 'none'; object-src 'none'")
    # Like a real LMS, the practice pages tell the tool which page they are (the browsers' default policy: the origin
    # only, cross-site); Caseload's own pages send no referrer at all.
    resp.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return resp


@bp.get("/")
def page() -> Any:
    settings = current_app.config["CASELOAD"]
    wanted = urlsplit(practice.page_url(settings))
    if request.host != wanted.netloc:
        # Always show the LMS page on the practice site, so the tool's iframe is cross-site.
        return redirect(practice.urls(settings)["page"])
    session = get_session()
    platform = practice.get_platform(session)
    if platform is None:
        return render_error(404, "The practice LMS is not set up yet. Run `caseload demo` first.")
    people = practice.personas(session, platform)
    links = [(p, practice.login_url(settings, platform, p)) for p in people]
    change = demo_alerts.next_change(session, platform.id)
    quizzes = practice_quizzes.overview(session, platform)
    return _csp(current_app.make_response(render_template("practice/page.html", links=links,
                                                          tool_url=settings.base_url, change=change,
                                                          quizzes=quizzes, duration=practice_quizzes.duration,
                                                          closes_at=practice_quizzes.moment,
                                                          changed=request.args.get("changed", "")[:200],
                                                          alerts_run=request.args.get("alerts_run", "")[:300])))


@bp.post("/schedule-change")
def schedule_change() -> Any:
    """The practice LMS changes its roster: a plan student joins a teacher's section (``demo/alerts.py``)."""
    session = get_session()
    platform = practice.get_platform(session)
    person_id, section_id = parse_id(request.form.get("person_id")), parse_id(request.form.get("section_id"))
    if platform is None or person_id is None or section_id is None or not demo_alerts.enrol(
            session, platform.id, person_id, section_id):
        session.rollback()
        return render_error(400, "The practice LMS could not make that enrolment (reload the page and try again).")
    session.commit()
    return redirect(url_for("practice.page", changed=request.form.get("label", "")[:200]), code=303)


@bp.post("/run-alerts")
def run_alerts() -> Any:
    """Run Caseload's alerts job now: what Celery beat does every minute (or cron with ``caseload alerts run``)."""
    report = alerts_job.run(get_session(), current_app.config["CASELOAD"])
    return redirect(url_for("practice.page", alerts_run=report.summary()), code=303)


@bp.get("/auth")
def auth() -> Any:
    session = get_session()
    try:
        redirect_uri, id_token, state = practice.authorize(session, current_app.config["CASELOAD"],
                                                           request.args.to_dict())
    except practice.PracticeError as exc:
        return render_error(exc.status, exc.reason, title="The practice LMS refused the login")
    return _csp(current_app.make_response(render_template("practice/autopost.html", action=redirect_uri,
                                                          id_token=id_token, state=state)))


@bp.get("/jwks")
def jwks() -> Any:
    platform = practice.get_platform(get_session())
    if platform is None:
        abort(404)
    return jsonify(practice.jwks(platform))


@bp.post("/token")
def token() -> Any:
    session = get_session()
    try:
        body = practice.issue_access_token(session, current_app.config["CASELOAD"], request.form.to_dict(),
                                           keys.jwks(session))
    except practice.PracticeError as exc:
        session.rollback()
        return jsonify({"error": exc.reason}), exc.status
    session.commit()
    return jsonify(body)


@bp.get("/nrps/<context_id>")
def nrps(context_id: str) -> Any:
    session = get_session()
    platform = practice.get_platform(session)
    if platform is None:
        abort(404)
    try:
        practice.check_bearer(platform, request.headers.get("Authorization", ""))
        offset = max(0, request.args.get("offset", 0, type=int) or 0)
        limit = min(500, max(1, request.args.get("limit", 100, type=int) or 100))
        body, next_url = practice.memberships(session, current_app.config["CASELOAD"], platform, context_id,
                                              offset, limit)
    except practice.PracticeError as exc:
        return jsonify({"error": exc.reason}), exc.status
    resp = jsonify(body)
    resp.mimetype = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    if next_url:
        resp.headers["Link"] = f'<{next_url}>; rel="next"'
    return resp


@bp.post(practice_quizzes.SERVICE_PATH.removeprefix("/practice") + practice_quizzes.ENDPOINT)
def webservice() -> Any:
    """The practice LMS's Moodle-style web service (``practice_quizzes``): the token and parameters travel in the
    POST body, never in a logged URL; errors are HTTP 200 with Moodle's exception body, as Moodle answers."""
    session = get_session()
    platform = practice.get_platform(session)
    if platform is None:
        abort(404)
    form = practice_quizzes.unflatten(request.form.items(multi=True))
    try:
        body = practice_quizzes.handle(session, platform, form)
        session.commit()
    except practice_quizzes.WsError as exc:
        session.rollback()
        body = exc.body()
    except IntegrityError:  # a concurrent save made the same user's override first: Moodle's one-per-user rule
        session.rollback()
        body = practice_quizzes.WsError("invalid_parameter_exception", "invalidparameter",
                                        "Invalid parameter value detected (an override for this user or group "
                                        "already exists)").body()
    return jsonify(body)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

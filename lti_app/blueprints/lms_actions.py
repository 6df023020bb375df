"""Accommodations applied in the LMS: thin views over ``services/lms_actions``.

- ``GET /lms/admin`` (administrators): each Canvas/Moodle platform's connection, health, scopes, the switch,
  "Test connection", "Preview", "Apply now".
- ``GET /lms/admin/platforms/<id>/preview``: what switching on would change, where, for whom (reads the LMS,
  writes nothing).
- ``GET /lms/report``: the verification report — administrators their platforms' students, case managers their
  caseload; a teacher gets their course's counts only. Every student shown is written to the access log.
- ``GET /lms/students/<id>/ledger``: the student's ledger (the access policy decides; logged).
- ``GET /lms/courses/<id>/ledger``: the course's ledger (administrators).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from lti_app.auth import Viewer, app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain.access import Action
from lti_app.models import Course, Platform, Student
from lti_app.services.access import policy as access
from lti_app.services.access import roles
from lti_app.services.lms_actions import admin, connections, oauth, report

log = logging.getLogger(__name__)
bp = Blueprint("lms_actions", __name__, url_prefix="/lms")

NOTICES = {
    "on": "Applying accommodations is on for this LMS. Caseload applies them now and keeps them applied.",
    "off": "Applying accommodations is off for this LMS: Caseload writes nothing to it (what was applied stays).",
    "tested": "The connection works.",
    "queued": "Every course with a plan student was queued; the report shows the result as it comes in.",
}


def _admin_platforms() -> list[int]:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_admin(session, viewer):
        abort(403, description="This page is for Caseload administrators (LMS administrators, or school or district "
                               "administrator grants).")
    return roles.visible_platform_ids(session, viewer.platform_id, viewer.person_id)


def _platform(platform_id: int) -> Platform:
    if platform_id not in _admin_platforms():
        abort(404, description="There is no such platform among those you administer.")
    platform = get_session().get(Platform, platform_id)
    if platform is None:
        abort(404, description="There is no such platform.")
    return platform


def _back(**args: Any) -> Response:
    return redirect(app_url("lms_actions.admin_page", **args), code=303)


@bp.get("/admin")
@require_viewer
def admin_page() -> Any:
    cards = admin.overview(get_session(), _admin_platforms())
    return render_template("lms/admin.html", cards=cards, notice=NOTICES.get(request.args.get("notice", "")),
                           problem=request.args.get("problem", "")[:500], redirect_uri=_redirect_uri())


@bp.post("/admin/platforms/<int:platform_id>/switch")
@require_viewer
def switch(platform_id: int) -> Any:
    _platform(platform_id)
    on = request.form.get("on") == "1"
    try:
        admin.switch(get_session(), current_viewer(), platform_id, on)
    except admin.SwitchRefused as exc:
        get_session().rollback()
        return _back(problem=str(exc))
    if on:  # "Caseload applies them now": every course with a plan student, as "Apply now" does
        try:
            admin.apply_now(get_session(), platform_id)
        except Exception:  # noqa: BLE001 - the broker is down: it is on, and the nightly sweep applies it
            get_session().rollback()
            log.warning("could not queue the LMS application of platform %s", platform_id, exc_info=True)
    return _back(notice="on" if on else "off")


@bp.post("/admin/platforms/<int:platform_id>/test")
@require_viewer
def test(platform_id: int) -> Any:
    _platform(platform_id)
    conn = connections.connection_for(get_session(), platform_id)
    if conn is None:
        return _back(problem="This LMS has no connection yet.")
    ok, detail = admin.test_connection(get_session(), conn)
    return _back(notice="tested") if ok else _back(problem=detail)


@bp.post("/admin/platforms/<int:platform_id>/apply")
@require_viewer
def apply_now(platform_id: int) -> Any:
    _platform(platform_id)
    conn = connections.connection_for(get_session(), platform_id)
    if conn is None or not conn.enabled:
        return _back(problem="Switch applying on first.")
    admin.apply_now(get_session(), platform_id)
    return _back(notice="queued")


def _redirect_uri() -> str:
    return current_app.config["CASELOAD"].base_url + url_for("lms_actions.canvas_callback")


@bp.post("/admin/platforms/<int:platform_id>/canvas")
@require_viewer
def canvas_connect(platform_id: int) -> Any:
    """Save the developer key, then show the link that opens Canvas's authorization in a new window.

    The form posts inside the LMS frame, where the page token's browser binding (partitioned cookie or platform
    storage) is present; a form posted to a new window would arrive without it and be refused. Canvas's login and
    authorization pages refuse to be framed, so the step in Canvas happens in a window of its own, from a plain link;
    the callback needs no page token (its signed ``state`` says who asked, for which platform)."""
    platform = _platform(platform_id)
    session = get_session()
    fields = {k: request.form.get(k, "").strip() or None for k in ("api_base_url", "client_id", "client_secret")}
    try:
        url = oauth.start(session, platform, current_viewer().person_id, _redirect_uri(), **fields)
    except connections.ConnectionInvalid as exc:
        session.rollback()
        return _back(problem=str(exc))
    session.commit()
    return render_template("lms/authorize.html", platform=platform, authorize_url=url)


@bp.post("/admin/platforms/<int:platform_id>/moodle")
@require_viewer
def moodle_connect(platform_id: int) -> Any:
    platform = _platform(platform_id)
    session = get_session()
    try:
        conn = connections.save_moodle(session, platform, request.form.get("api_base_url", ""),
                                       request.form.get("token", ""))
    except connections.ConnectionInvalid as exc:
        session.rollback()
        return _back(problem=str(exc))
    ok, detail = admin.test_connection(session, conn)
    return _back(notice="tested") if ok else _back(problem=detail)


@bp.get("/oauth/canvas/callback")
def canvas_callback() -> Any:
    """Canvas sends the administrator's browser back here (outside the LMS frame, without a page token: the
    signed ``state`` says who asked, for which platform)."""
    try:
        done = oauth.finish(get_session(), request.args.get("state", ""), request.args.get("code", ""),
                            request.args.get("error", ""), _redirect_uri())
    except oauth.AuthorizationFailed as exc:
        return render_template("lms/authorized.html", ok=False, message=str(exc)), 400
    return render_template("lms/authorized.html", ok=True, platform=done.platform, connection=done.connection,
                           message="")


@bp.get("/admin/platforms/<int:platform_id>/preview")
@require_viewer
def preview(platform_id: int) -> Any:
    platform = _platform(platform_id)
    session = get_session()
    result = admin.preview(session, platform_id)
    viewer = current_viewer()
    access.record_many(session, viewer, dict.fromkeys(result.students, "administrator"), "view",
                       f"LMS preview of platform {platform_id}")
    session.commit()
    return render_template("lms/preview.html", platform=platform, preview=result)


def _report_scope(viewer: Viewer) -> tuple[str, dict[str, Any]]:
    session = get_session()
    if roles.is_admin(session, viewer):
        return "administrator", {"platform_ids": roles.visible_platform_ids(session, viewer.platform_id,
                                                                            viewer.person_id)}
    if roles.is_case_manager(session, viewer.person_id):
        return "caseload (case manager)", {"student_ids": report.caseload_student_ids(session, viewer.person_id)}
    return "", {}


@bp.get("/report")
@require_viewer
def verification() -> Any:
    viewer = current_viewer()
    session = get_session()
    basis, scope = _report_scope(viewer)
    if not basis:
        if viewer.course_id is not None and (viewer.has_role("teacher") or viewer.has_role("ta")):
            line = report.course_line(session, viewer.course_id)
            course = session.get(Course, viewer.course_id)
            return render_template("lms/course_line.html", line=line, course=course)
        abort(403, description="The verification report is for case managers and administrators; teachers see "
                               "their course's line on the course panel.")
    found = report.lines(session, **scope)
    gaps_only = request.args.get("gaps") == "1"
    shown = [r for r in found if r.gaps] if gaps_only else found
    # The scope above already keeps to the viewer's platforms or caseload; each student shown is still decided by the
    # access policy, so the log holds the basis it gave (and a refusal, were there one, is logged and left out).
    decisions = access.check_many(session, viewer, access.casework_facts(session, {r.student.id for r in shown}),
                                  Action.VIEW_RECORD, "LMS verification report", log_action="view")
    shown = [r for r in shown if decisions[r.student.id].allowed]
    session.commit()
    return render_template("lms/report.html", lines=shown, total=len(found), gaps=sum(1 for r in found if r.gaps),
                           gaps_only=gaps_only, basis=basis)


@bp.get("/students/<int:student_id>/ledger")
@require_viewer
def student_ledger(student_id: int) -> Any:
    session = get_session()
    decision = access.authorize(session, current_viewer(), student_id, Action.VIEW_RECORD, "LMS ledger")
    if decision.relationship == "teacher":
        session.commit()
        abort(403, description="The ledger of changes made in the LMS is for case managers and administrators.")
    student = session.get(Student, student_id)
    rows = report.ledger_for_student(session, student_id)
    session.commit()
    return render_template("lms/ledger.html", rows=rows, student=student, course=None, basis=decision.basis,
                           value_text=report.value_text)


@bp.get("/courses/<int:course_id>/ledger")
@require_viewer
def course_ledger(course_id: int) -> Any:
    session = get_session()
    course = session.get(Course, course_id)
    if course is None or course.platform_id not in _admin_platforms():
        abort(404, description="There is no such course among those you administer.")
    rows = report.ledger_for_course(session, course_id)
    access.record_many(session, current_viewer(), {r.student_id: "administrator" for r in rows if r.student_id},
                       "view", f"LMS ledger of course {course_id}")
    session.commit()
    return render_template("lms/ledger.html", rows=rows, student=None, course=course, basis="administrator",
                           value_text=report.value_text)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

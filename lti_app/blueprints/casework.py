"""The case manager's home inside the LMS: the caseload with deadlines, acknowledgements and questions, and the
caseload-wide view of service minutes owed (page and CSV)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, request

from lti_app import clock
from lti_app.auth import app_url_by_id, current_viewer, require_viewer
from lti_app.blueprints.downloads import csv_response
from lti_app.db import get_session
from lti_app.services.access import roles
from lti_app.services.casework import caseload as caseload_service
from lti_app.services.casework import service_minutes

bp = Blueprint("casework", __name__, url_prefix="/casework")


@bp.get("/")
@require_viewer
def home() -> Any:
    viewer = current_viewer()
    session = get_session()
    grants = roles.grant_roles(session, viewer.person_id)  # read once: the support check and the caseload's
    if not grants & roles.SUPPORT_GRANTS:
        abort(403, description="The caseload is for case managers and support staff. Ask your Caseload "
                               "administrator for a case-manager grant if you need one.")
    sort = request.args.get("sort", "deadline")
    rows = caseload_service.caseload(session, viewer, sort, grants=grants)
    session.commit()
    today = clock.today()
    urgency = [r.urgency(today) for r in rows]
    counts = {"students": len(rows), "overdue": urgency.count("overdue"), "soon": urgency.count("soon"),
              "unacknowledged": sum(1 for r in rows if r.acknowledged < r.teachers),
              "questions": sum(r.open_questions for r in rows),
              "window": current_app.config["CASELOAD"].deadline_window_days}
    # Each row's links and urgency worked out here, once: for 200 students the template's per-row app_url calls
    # were a good part of the page's rendering time (issue #11's benchmark).
    student_url = app_url_by_id("workspace.student", "student_id")
    plan_url = app_url_by_id("plans.plan_home", "student_id")
    services_url = app_url_by_id("workspace.services", "student_id")
    shown = [(r, u, student_url(r.student_id), plan_url(r.student_id), services_url(r.student_id))
             for r, u in zip(rows, urgency, strict=True)]
    return render_template("casework/home.html", rows=rows, shown=shown, counts=counts, today=today, sort=sort)


def _owed(context: str) -> tuple[service_minutes.OwedView, bool]:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_support_staff(session, viewer.person_id):
        abort(403, description="The services-owed view is for case managers. Ask your Caseload administrator for a "
                               "case-manager grant if you need one.")
    every = request.args.get("all") == "1"
    view = service_minutes.services_owed(session, viewer, clock.today(), every_service=every, context=context)
    session.commit()  # the access log rows of every student shown
    return view, every


@bp.get("/services-owed")
@require_viewer
def services_owed() -> Any:
    """Minutes owed across the caseload (compensatory services), one row per service, most owed first."""
    view, every = _owed("services owed")
    return render_template("casework/services_owed.html", view=view, every=every, today=clock.today(),
                           labels=service_minutes.SERVICE_LABELS, periods=service_minutes.PERIOD_LABELS)


@bp.get("/services-owed.csv")
@require_viewer
def services_owed_csv() -> Any:
    view, every = _owed("services owed (CSV)")
    return csv_response(service_minutes.owed_csv_rows(view),
                        f"services-owed-{clock.today().isoformat()}{'-all' if every else ''}.csv")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

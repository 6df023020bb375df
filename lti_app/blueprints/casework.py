"""The case manager's home inside the LMS: the caseload with deadlines, acknowledgements and questions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, request

from lti_app import clock
from lti_app.auth import current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.services.access import roles
from lti_app.services.casework import caseload as caseload_service

bp = Blueprint("casework", __name__, url_prefix="/casework")


@bp.get("/")
@require_viewer
def home() -> Any:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_support_staff(session, viewer.person_id):
        abort(403, description="The caseload is for case managers and support staff. Ask your Caseload "
                               "administrator for a case-manager grant if you need one.")
    sort = request.args.get("sort", "deadline")
    rows = caseload_service.caseload(session, viewer, sort)
    session.commit()
    today = clock.today()
    counts = {"students": len(rows), "overdue": sum(1 for r in rows if r.urgency(today) == "overdue"),
              "soon": sum(1 for r in rows if r.urgency(today) == "soon"),
              "unacknowledged": sum(1 for r in rows if r.acknowledged < r.teachers),
              "questions": sum(r.open_questions for r in rows),
              "window": current_app.config["CASELOAD"].deadline_window_days}
    return render_template("casework/home.html", rows=rows, counts=counts, today=today, sort=sort)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

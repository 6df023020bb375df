"""Compliance deadlines: the case manager's list (``/casework/deadlines``), a school's list for school and district
administrators, a student's meeting and evaluation dates (the deadline inputs), and the reporting calendar.
Thin views: rules in ``domain/deadlines.py``, work and access logging in ``services/deadlines.py``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, redirect, render_template, request

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain.deadlines import KIND_LABELS, LATE_REASON_LABELS
from lti_app.services.access import roles
from lti_app.services.casework import deadlines as service

bp = Blueprint("deadlines", __name__, url_prefix="/casework")

DONE = {"inputs": "Dates saved; the deadlines below are recomputed.", "period": "Reporting period saved.",
        "closure": "Closure saved."}


def _done() -> str | None:
    return DONE.get(request.args.get("done", ""))


def _form() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in ("t", "csrf_token")}


@bp.get("/deadlines")
@require_viewer
def caseload_deadlines() -> Any:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_support_staff(session, viewer.person_id):
        abort(403, description="Deadlines are listed for case managers (their caseload) and, per school, for "
                               "administrators. Ask your Caseload administrator for a case-manager grant if you "
                               "need one.")
    today = clock.today()
    listing = service.caseload_deadlines(session, viewer, today)
    session.commit()
    return render_template("goals/deadlines.html", listing=listing, today=today, kinds=KIND_LABELS,
                           title="My deadlines", school=None, schools=[], is_admin=roles.is_admin(session, viewer))


@bp.get("/deadlines/school")
@require_viewer
def school_deadlines() -> Any:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_admin(session, viewer):
        abort(403, description="School deadlines are for school and district administrators.")
    allowed = service.admin_schools(session, viewer)
    schools = service.known_schools(session, service.admin_platform(session, viewer)) if allowed is None else allowed
    school = request.args.get("school") or (schools[0] if len(schools) == 1 else "")
    today = clock.today()
    listing = service.school_deadlines(session, viewer, school, today) if school else None
    session.commit()
    return render_template("goals/deadlines.html", listing=listing, today=today, kinds=KIND_LABELS,
                           title=f"Deadlines · {school}" if school else "Deadlines by school", school=school,
                           schools=schools, is_admin=True)


def _student_page(student_id: int, errors: list[str] | None = None, form: dict[str, str] | None = None,
                  form_plan: int | None = None, status: int = 200) -> Any:
    session = get_session()
    today = clock.today()
    data = service.student_deadlines(session, current_viewer(), student_id, today)
    session.commit()
    return render_template("goals/student_deadlines.html", data=data, student=data.student, today=today,
                           errors=errors or [], form=form or {}, form_plan=form_plan, done=_done(),
                           labels=service.INPUT_LABELS, current_tab="goals.goals_home", kinds=KIND_LABELS,
                           late_reasons=service.LATE_REASONS, reason_labels=LATE_REASON_LABELS), status


@bp.get("/students/<int:student_id>/deadlines")
@require_viewer
def student_deadlines(student_id: int) -> Any:
    return _student_page(student_id)


@bp.post("/students/<int:student_id>/plans/<int:plan_id>/deadlines")
@require_viewer
def save_inputs(student_id: int, plan_id: int) -> Any:
    session = get_session()
    try:
        service.update_inputs(session, current_viewer(), student_id, plan_id, _form(), clock.today())
    except service.InputsInvalid as exc:
        session.rollback()
        return _student_page(student_id, [p.message for p in exc.problems], _form(), plan_id, 422)
    session.commit()
    return redirect(app_url("deadlines.student_deadlines", student_id=student_id, done="inputs") + f"#plan-{plan_id}",
                    code=303)


@bp.route("/calendar", methods=["GET", "POST"])
@require_viewer
def calendar() -> Any:
    viewer = current_viewer()
    session = get_session()
    if not roles.is_admin(session, viewer):
        abort(403, description="The reporting calendar is kept by school and district administrators.")
    allowed = service.admin_schools(session, viewer)
    errors: list[str] = []
    form: dict[str, str] = {}
    kind = ""
    if request.method == "POST":
        form, kind = _form(), request.form.get("kind", "")
        try:
            if kind == "period":
                service.add_period(session, viewer, form.get("name", ""), form.get("starts_on", ""),
                                   form.get("ends_on", ""), form.get("report_due_on", ""), form.get("school", ""))
            elif kind == "closure":
                service.add_closure(session, viewer, form.get("name", ""), form.get("starts_on", ""),
                                    form.get("ends_on", ""), form.get("school", ""))
            else:
                abort(400, description="Choose whether you are adding a reporting period or a closure.")
        except service.CalendarInvalid as exc:
            session.rollback()
            errors = [str(exc)]
        else:
            session.commit()
            return redirect(app_url("deadlines.calendar", done=kind), code=303)
    entries = service.calendar_entries(session, None if allowed is None else (allowed[0] if allowed else ""))
    schools = service.known_schools(session, service.admin_platform(session, viewer)) if allowed is None else allowed
    return render_template("goals/calendar.html", entries=entries, schools=schools,
                           district=roles.is_district_admin(session, viewer.person_id),
                           errors=errors, form=form, kind=kind, done=_done()), 422 if errors else 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

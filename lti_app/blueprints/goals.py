"""Goals & progress: the student workspace tab (``goals.goals_home``) with a chart per goal, goal forms, data
points and progress reports. Thin views: rules in ``domain/goals.py`` and ``domain/progress_chart.py``, work and
access logging in ``services/goals.py``.

Forms post to their own URL and redirect (303) with a ``done`` code; a form with problems re-renders with the
messages and what was typed (422), having written nothing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain import goals as rules
from lti_app.domain.deadlines import KIND_LABELS
from lti_app.ids import parse_id
from lti_app.models import Student
from lti_app.services.casework import goals as goal_service

bp = Blueprint("goals", __name__, url_prefix="/casework/students/<int:student_id>/goals")

DONE = {"goal": "Goal added.", "goal_edit": "Goal saved.", "point": "Data point recorded.",
        "point_removed": "Data point removed (kept in its history).", "point_corrected": "Data point corrected.",
        "draft": "Progress report draft saved.",
        "final": "Progress report made final."}
LABELS = {"areas": rules.AREA_LABELS, "status": rules.GOAL_STATUS_LABELS, "ratings": rules.RATING_LABELS,
          "kinds": {k.value: v for k, v in KIND_LABELS.items()}}


def _form() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in ("t", "csrf_token")}


def _render(template: str, status: int = 200, **context: Any) -> Any:
    done = DONE.get(request.args.get("done", ""))
    return render_template(template, labels=LABELS, done=done, today=clock.today(),
                           current_tab="goals.goals_home", **context), status


def _home(student_id: int, errors: list[str] | None = None, form: dict[str, str] | None = None, form_name: str = "",
          status: int = 200) -> Any:
    session = get_session()
    page = goal_service.goals_page(session, current_viewer(), student_id, clock.today())
    session.commit()
    plan_options = [(p.id, f"{p.plan_type} plan" + ("" if p.status == "active" else f" ({p.status})"))
                    for p in page.plans]
    return _render("goals/home.html", status, page=page, student=page.student, errors=errors or [], form=form or {},
                   form_name=form_name, plan_options=plan_options)


@bp.get("")
@require_viewer
def goals_home(student_id: int) -> Any:
    return _home(student_id)


@bp.post("")
@require_viewer
def create_goal(student_id: int) -> Any:
    session = get_session()
    try:
        goal = goal_service.create_goal(session, current_viewer(), student_id, _form(), clock.today())
    except rules.Invalid as exc:
        session.rollback()
        return _home(student_id, [p.message for p in exc.problems], _form(), "goal-new", 422)
    session.commit()
    return redirect(app_url("goals.goals_home", student_id=student_id, done="goal") + f"#goal-{goal.id}", code=303)


@bp.route("/<int:goal_id>/edit", methods=["GET", "POST"])
@require_viewer
def edit_goal(student_id: int, goal_id: int) -> Any:
    session = get_session()
    viewer = current_viewer()
    errors: list[str] = []
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            goal_service.update_goal(session, viewer, student_id, goal_id, _form(), clock.today())
        except rules.Invalid as exc:
            session.rollback()
            errors, form = [p.message for p in exc.problems], _form()
        else:
            session.commit()
            return redirect(app_url("goals.goals_home", student_id=student_id, done="goal_edit") + f"#goal-{goal_id}",
                            code=303)
    goal = goal_service.goal_of(session, viewer, student_id, goal_id, "edit", "view", f"edit goal {goal_id}")
    student = session.get(Student, student_id)
    session.commit()
    if not form:
        form = {"area": goal.area, "description": goal.description, "baseline": str(goal.baseline.normalize()),
                "target": str(goal.target.normalize()), "unit": goal.unit, "measurement_method": goal.measurement_method,
                "baseline_on": goal.baseline_on.isoformat(), "target_on": goal.target_on.isoformat(),
                "status": goal.status}
    return _render("goals/goal_form.html", 422 if errors else 200, goal=goal, student=student, errors=errors,
                   form=form, form_name="goal-edit")


@bp.post("/<int:goal_id>/points")
@require_viewer
def add_point(student_id: int, goal_id: int) -> Any:
    session = get_session()
    try:
        goal_service.add_point(session, current_viewer(), student_id, goal_id, _form(), clock.today())
    except rules.Invalid as exc:
        session.rollback()
        return _home(student_id, [p.message for p in exc.problems], _form(), f"point-{goal_id}", 422)
    session.commit()
    return redirect(app_url("goals.goals_home", student_id=student_id, done="point") + f"#goal-{goal_id}", code=303)


@bp.post("/<int:goal_id>/points/<int:point_id>/delete")
@require_viewer
def delete_point(student_id: int, goal_id: int, point_id: int) -> Any:
    """Soft removal: a reason and a ticked confirmation, kept in the history (never a hard delete)."""
    session = get_session()
    try:
        goal_service.delete_point(session, current_viewer(), student_id, goal_id, point_id, _form())
    except rules.Invalid as exc:
        session.rollback()
        return _home(student_id, [p.message for p in exc.problems], _form(), f"remove-point-{point_id}", 422)
    session.commit()
    return redirect(app_url("goals.goals_home", student_id=student_id, done="point_removed") + f"#goal-{goal_id}",
                    code=303)


@bp.post("/<int:goal_id>/points/<int:point_id>/correct")
@require_viewer
def correct_point(student_id: int, goal_id: int, point_id: int) -> Any:
    """A correction is a new revision with who, when and why; the old value stays in the history."""
    session = get_session()
    try:
        goal_service.correct_point(session, current_viewer(), student_id, goal_id, point_id, _form(), clock.today())
    except rules.Invalid as exc:
        session.rollback()
        return _home(student_id, [p.message for p in exc.problems], _form(), f"correct-point-{point_id}", 422)
    session.commit()
    return redirect(app_url("goals.goals_home", student_id=student_id, done="point_corrected") + f"#goal-{goal_id}",
                    code=303)


def _report_form() -> tuple[dict[int, str], dict[int, str]]:
    ratings: dict[int, str] = {}
    comments: dict[int, str] = {}
    for key, value in request.form.items():
        prefix, _, raw_id = key.partition("-")
        goal_id = parse_id(raw_id)
        if goal_id is None:
            continue
        if prefix == "rating":
            ratings[goal_id] = value
        elif prefix == "comment":
            comments[goal_id] = value
    return ratings, comments


@bp.route("/reports/<int:plan_id>/<int:period_id>", methods=["GET", "POST"])
@require_viewer
def report(student_id: int, plan_id: int, period_id: int) -> Any:
    session = get_session()
    viewer = current_viewer()
    errors: list[str] = []
    status = 200
    typed: dict[str, str] = {}
    if request.method == "POST":
        finalize = request.form.get("action") == "finalize"
        ratings, comments = _report_form()
        try:
            goal_service.save_report(session, viewer, student_id, plan_id, period_id, ratings, comments,
                                     request.form.get("narrative", ""), finalize)
        except rules.Invalid as exc:
            session.rollback()
            errors, status, typed = [p.message for p in exc.problems], 422, _form()
        except goal_service.ReportFinal as exc:
            session.rollback()
            errors, status = [str(exc)], 409
        else:
            session.commit()
            return redirect(app_url("goals.report", student_id=student_id, plan_id=plan_id, period_id=period_id,
                                    done="final" if finalize else "draft"), code=303)
    page = goal_service.report_page(session, viewer, student_id, plan_id, period_id)
    session.commit()
    return _render("goals/report.html", status, page=page, student=page.student, errors=errors, typed=typed)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""Plans and accommodations editor for case managers: thin views over ``services/plans.py``.

Every page works without JavaScript (forms post and redirect with a ``done`` code); the app token travels in
links and forms (``app_url``, ``auth_fields``), CSRF is checked by ``require_viewer`` on every POST.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain import catalogue
from lti_app.errors import render_error
from lti_app.ids import parse_id
from lti_app.services.casework import plans
from lti_app.services.casework.plans import PlanConflict, PlanInvalid

bp = Blueprint("plans", __name__, url_prefix="/casework/students/<int:student_id>/plans")

DONE = {"created": "Plan created. Add its accommodations, then activate it.",
        "draft": "Draft started from the version in force.", "added": "Accommodation added to the draft.",
        "edited": "Accommodation updated.", "removed": "Accommodation removed from the draft.",
        "moved": "Order changed.", "summary": "Summary saved.",
        "discarded": "Draft discarded. The version in force is unchanged.",
        "activated": "Version activated. Teachers will see it as needing their acknowledgement.",
        "dates": "Plan dates saved.", "assigned": "Case manager changed.",
        "lms_rule": "What is applied in the LMS is saved in the draft; activating the version applies it."}


def _done() -> str | None:
    return DONE.get(request.args.get("done", ""))


def _form(*names: str) -> dict[str, str]:
    return {n: request.form.get(n, "") for n in names}


def _int(name: str) -> int:
    found = parse_id(request.form.get(name))
    return -1 if found is None else found


KEPT_LABELS = {"text": "Accommodation", "summary": "Version summary", "category": "Category",
               "applies_to": "Applies to", "subjects": "Subjects", "time_multiplier": "Time multiplier",
               "extra_attempts": "Extra attempts", "extra_minutes": "Extra minutes", "multiplier": "Time multiplier"}


def _conflict(exc: PlanConflict, student_id: int, plan_id: int) -> Any:
    """A stale tab (the draft was activated or discarded elsewhere): say so, say where the plan stands now, keep what
    the person typed on the page (nothing is lost), and give the ways back (issue #13)."""
    kept = [(label, request.form.get(name, "").strip()) for name, label in KEPT_LABELS.items()
            if request.form.get(name, "").strip()]
    now_lines: list[str] = []
    ways_back = [("Open the plan as it is now", app_url("plans.plan_home", student_id=student_id))]
    try:
        home = plans.plan_home(get_session(), current_viewer(), student_id)
    except (PlanInvalid, PlanConflict, HTTPException):
        home = None
    card = next((c for c in home.cards if c.plan.id == plan_id), None) if home else None
    if card is not None:
        if card.active is not None:
            when = card.active.activated_at
            now_lines.append(f"Version {card.active.version_no} is in force"
                             + (f" since {clock.local(when).strftime('%Y-%m-%d %H:%M %Z')}" if when else "") + ".")
        else:
            now_lines.append("No version of this plan is in force.")
        if card.draft is not None:
            now_lines.append(f"Draft version {card.draft.version_no} is open: changes go there.")
            ways_back.insert(0, ("Open the current draft", app_url("plans.draft", student_id=student_id,
                                                                   plan_id=plan_id)))
        else:
            now_lines.append("There is no open draft: start a new version from the plan page to make changes.")
    return render_error(409, str(exc), title="This plan changed", now_lines=now_lines, kept=kept,
                        ways_back=ways_back)


def _common() -> dict[str, Any]:
    return {"categories": catalogue.CATEGORY_LABELS, "applies_labels": catalogue.APPLIES_TO_LABELS,
            "plan_types": plans.PLAN_TYPE_LABELS, "mult": plans.multiplier_text}


@bp.get("")
@require_viewer
def plan_home(student_id: int) -> Any:
    home = plans.plan_home(get_session(), current_viewer(), student_id)
    return render_template("plans/home.html", home=home, student=home.student, decision=home.decision, done=_done(),
                           errors=[], **_common())


def _home_with_errors(student_id: int, errors: list[str]) -> Any:
    home = plans.plan_home(get_session(), current_viewer(), student_id)
    return render_template("plans/home.html", home=home, student=home.student, decision=home.decision, done=None,
                           errors=errors, **_common()), 422


# ------------------------------------------------------------------------------------------------ new plan
def _new_page(student_id: int, form: dict[str, str], errors: list[str], status: int = 200) -> Any:
    page = plans.new_plan_page(get_session(), current_viewer(), student_id)
    return render_template("plans/new.html", page=page, student=page.student, decision=page.decision, form=form,
                           errors=errors, **_common()), status


@bp.get("/new")
@require_viewer
def new_plan(student_id: int) -> Any:
    return _new_page(student_id, {}, [])


@bp.post("/new")
@require_viewer
def create_plan(student_id: int) -> Any:
    f = _form("plan_type", "effective_on", "end_on", "annual_review_due", "reevaluation_due", "case_manager_id")
    try:
        plan = plans.create_plan(get_session(), current_viewer(), student_id, **f)
    except PlanInvalid as exc:
        return _new_page(student_id, f, [p.message for p in exc.problems], 422)
    return redirect(app_url("plans.draft", student_id=student_id, plan_id=plan.id, done="created"), code=303)


# ---------------------------------------------------------------------------------------------- plan details
@bp.post("/<int:plan_id>/dates")
@require_viewer
def update_dates(student_id: int, plan_id: int) -> Any:
    f = _form("effective_on", "end_on", "annual_review_due", "reevaluation_due")
    try:
        plans.update_details(get_session(), current_viewer(), student_id, plan_id, **f)
    except PlanInvalid as exc:
        return _home_with_errors(student_id, [p.message for p in exc.problems])
    return redirect(app_url("plans.plan_home", student_id=student_id, done="dates") + f"#plan-{plan_id}", code=303)


@bp.post("/<int:plan_id>/case-manager")
@require_viewer
def assign(student_id: int, plan_id: int) -> Any:
    try:
        plans.assign_case_manager(get_session(), current_viewer(), student_id, plan_id,
                                  request.form.get("case_manager_id", ""))
    except PlanInvalid as exc:
        return _home_with_errors(student_id, [p.message for p in exc.problems])
    return redirect(app_url("plans.plan_home", student_id=student_id, done="assigned") + f"#plan-{plan_id}", code=303)


# ------------------------------------------------------------------------------------------------ the draft
@bp.post("/<int:plan_id>/draft")
@require_viewer
def start_draft(student_id: int, plan_id: int) -> Any:
    try:
        plans.start_draft(get_session(), current_viewer(), student_id, plan_id)
    except PlanInvalid as exc:
        return _home_with_errors(student_id, [p.message for p in exc.problems])
    return redirect(app_url("plans.draft", student_id=student_id, plan_id=plan_id, done="draft"), code=303)


def _draft_page(student_id: int, plan_id: int, errors: list[str] | None = None, form: dict[str, str] | None = None,
                status: int = 200, done: str | None = None) -> Any:
    view = plans.view_version(get_session(), current_viewer(), student_id, plan_id, None, "plan draft")
    return render_template("plans/draft.html", view=view, student=view.student, decision=view.decision, done=done,
                           errors=errors or [], form=form or {}, catalogue=catalogue.grouped(),
                           in_draft=plans.catalogue_codes_in(view.version),
                           **_common()), status


@bp.get("/<int:plan_id>/draft")
@require_viewer
def draft(student_id: int, plan_id: int) -> Any:
    return _draft_page(student_id, plan_id, done=_done())


def _after_edit(student_id: int, plan_id: int, done: str, anchor: str = "") -> Any:
    return redirect(app_url("plans.draft", student_id=student_id, plan_id=plan_id, done=done) + anchor, code=303)


ITEM_FIELDS = ("category", "text", "applies_to", "subjects", "time_multiplier", "extra_attempts")


@bp.post("/<int:plan_id>/draft/add")
@require_viewer
def add_item(student_id: int, plan_id: int) -> Any:
    session, viewer = get_session(), current_viewer()
    f = _form("code", *ITEM_FIELDS)
    try:
        if request.form.get("source") == "catalogue":
            plans.add_from_catalogue(session, viewer, student_id, plan_id, _int("version_id"), f["code"])
        else:
            plans.add_free_text(session, viewer, student_id, plan_id, _int("version_id"),
                                **{k: f[k] for k in ITEM_FIELDS})
    except PlanInvalid as exc:
        return _draft_page(student_id, plan_id, [p.message for p in exc.problems], f, 422)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "added", "#accommodations")


@bp.post("/<int:plan_id>/draft/items/<int:item_id>")
@require_viewer
def edit_item(student_id: int, plan_id: int, item_id: int) -> Any:
    f = _form(*ITEM_FIELDS)
    try:
        plans.edit_item(get_session(), current_viewer(), student_id, plan_id, item_id, **f)
    except PlanInvalid as exc:
        return _draft_page(student_id, plan_id, [p.message for p in exc.problems], status=422)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "edited", f"#item-{item_id}")


@bp.post("/<int:plan_id>/draft/items/<int:item_id>/remove")
@require_viewer
def remove_item(student_id: int, plan_id: int, item_id: int) -> Any:
    try:
        plans.remove_item(get_session(), current_viewer(), student_id, plan_id, item_id)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "removed", "#accommodations")


@bp.post("/<int:plan_id>/draft/items/<int:item_id>/move")
@require_viewer
def move_item(student_id: int, plan_id: int, item_id: int) -> Any:
    try:
        plans.move_item(get_session(), current_viewer(), student_id, plan_id, item_id,
                        "up" if request.form.get("direction") == "up" else "down")
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "moved", f"#item-{item_id}")


@bp.post("/<int:plan_id>/draft/summary")
@require_viewer
def save_summary(student_id: int, plan_id: int) -> Any:
    try:
        plans.set_summary(get_session(), current_viewer(), student_id, plan_id, _int("version_id"),
                          request.form.get("summary", ""))
    except PlanInvalid as exc:
        return _draft_page(student_id, plan_id, [p.message for p in exc.problems], status=422)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "summary", "#summary")


@bp.post("/<int:plan_id>/draft/lms-rule")
@require_viewer
def save_lms_rule(student_id: int, plan_id: int) -> Any:
    """The structured rule applied in the LMS (extra time, attempts, reduced choices, window guard)."""
    f = _form("time_kind", "multiplier", "extra_minutes", "extra_attempts")
    try:
        if request.form.get("action") == "remove":
            plans.remove_lms_rule(get_session(), current_viewer(), student_id, plan_id, _int("version_id"))
        else:
            plans.set_lms_rule(get_session(), current_viewer(), student_id, plan_id, _int("version_id"),
                               **f, reduce_choices=request.form.get("reduce_choices") == "1",
                               window_guard=request.form.get("window_guard") == "1")
    except PlanInvalid as exc:
        return _draft_page(student_id, plan_id, [p.message for p in exc.problems], status=422)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return _after_edit(student_id, plan_id, "lms_rule", "#lms-rule")


@bp.post("/<int:plan_id>/draft/discard")
@require_viewer
def discard(student_id: int, plan_id: int) -> Any:
    try:
        plans.discard_draft(get_session(), current_viewer(), student_id, plan_id, _int("version_id"))
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return redirect(app_url("plans.plan_home", student_id=student_id, done="discarded") + f"#plan-{plan_id}",
                    code=303)


# --------------------------------------------------------------------------------------------- activation
def _confirm_page(student_id: int, plan_id: int, errors: list[str] | None = None, summary: str | None = None,
                  status: int = 200) -> Any:
    view = plans.view_version(get_session(), current_viewer(), student_id, plan_id, None, "activation check")
    return render_template("plans/activate.html", view=view, student=view.student, decision=view.decision,
                           errors=errors or [], summary=view.version.summary if summary is None else summary,
                           **_common()), status


@bp.get("/<int:plan_id>/activate")
@require_viewer
def confirm_activate(student_id: int, plan_id: int) -> Any:
    return _confirm_page(student_id, plan_id)


@bp.post("/<int:plan_id>/activate")
@require_viewer
def activate(student_id: int, plan_id: int) -> Any:
    summary = request.form.get("summary", "")
    try:
        plans.activate(get_session(), current_viewer(), student_id, plan_id, _int("version_id"), summary)
    except PlanInvalid as exc:
        return _confirm_page(student_id, plan_id, [p.message for p in exc.problems], summary, 422)
    except PlanConflict as exc:
        return _conflict(exc, student_id, plan_id)
    return redirect(app_url("plans.plan_home", student_id=student_id, done="activated") + f"#plan-{plan_id}",
                    code=303)


# ---------------------------------------------------------------------------------------------- history
@bp.get("/<int:plan_id>/history")
@require_viewer
def history(student_id: int, plan_id: int) -> Any:
    plan, entries, names, decision = plans.history(get_session(), current_viewer(), student_id, plan_id)
    return render_template("plans/history.html", plan=plan, student=plan.student, entries=entries, names=names,
                           decision=decision, **_common())


@bp.get("/<int:plan_id>/versions/<int:version_id>")
@require_viewer
def version(student_id: int, plan_id: int, version_id: int) -> Any:
    view = plans.view_version(get_session(), current_viewer(), student_id, plan_id, version_id)
    return render_template("plans/version.html", view=view, student=view.student, decision=view.decision,
                           **_common())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

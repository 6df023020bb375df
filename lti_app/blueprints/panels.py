"""Teacher panels: the course panel, the student card, notes, acknowledgements and questions. Thin views:
rules in domain.access, work in services.panel / notes / questions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, jsonify, redirect, render_template, request

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain.access import Action
from lti_app.ids import parse_id
from lti_app.models import Plan, PlanVersion, Student
from lti_app.services.access import policy as access
from lti_app.services.access.students import student_for_person
from lti_app.services.casework import notes, panel, questions
from lti_app.services.casework.notes import NOTE_TYPE_LABELS, TIER_LABELS, NoteInvalid
from lti_app.services.casework.panel import CATEGORY_LABELS, PLAN_TYPES
from lti_app.services.lms_actions import report

bp = Blueprint("panels", __name__, url_prefix="/panels")

DONE = {"ack": "Acknowledged. Thank you.", "note": "Note saved.", "question": "Question sent to the case manager.",
        "answer": "Answer sent.", "edit": "Note updated (the previous text is kept as a revision)."}


def _done() -> str | None:
    message = DONE.get(request.args.get("done", ""))
    tier = request.args.get("tier", "")
    if message and request.args.get("done") in ("note", "edit") and tier in TIER_LABELS:
        # Where the note went (issue #13): the tier it was saved in, in words, with who may read it.
        message += f" Saved as: {TIER_LABELS[tier]}."
    return message


@bp.get("/course")
@require_viewer
def course() -> Any:
    viewer = current_viewer()
    session = get_session()
    view = panel.course_panel(session, viewer, category=request.args.get("category", ""),
                              plan_type=request.args.get("plan_type", ""), needs_ack=bool(request.args.get("needs_ack")),
                              query=request.args.get("q", "")[:100],
                              section_id=parse_id(request.args.get("section", "")))
    # The course's line of the verification report (issue #12), only where the LMS applies accommodations (the
    # panel's own statement said so) and the teacher has plan students: counts, no names.
    lms_line = (report.course_line(session, view.course.id, switched_on=True)
                if view.course.lms_applies and view.total_with_plans else None)
    template = "panels/print.html" if request.args.get("print") else "panels/course.html"
    page = render_template(template, view=view, categories=CATEGORY_LABELS, plan_types=PLAN_TYPES, done=_done(),
                           problems=[], lms_line=lms_line)
    # Rendered before the commit, so the header's read (grants, unread alerts) runs in the panel's transaction and one
    # COMMIT ends both (a commit first would open a second transaction for it: one more round trip on every launch).
    # Nothing is sent before the access log rows are committed; a failed commit is an error page, not this one.
    session.commit()
    return page


@bp.post("/ack")
@require_viewer
def ack() -> Any:
    viewer = current_viewer()
    session = get_session()
    items = []
    for raw in request.form.getlist("item"):
        parts = [parse_id(x) for x in raw.split(":")]
        if len(parts) != 3 or any(p is None for p in parts):
            # parse_id: ids out of an integer column's range are a 400 here, never a database error (500)
            abort(400, description="The acknowledgement form is malformed. Reload the page and try again.")
        sid, vid, sec = (int(p) for p in parts if p is not None)
        items.append((sid, vid, sec))
    if len(items) > 500:
        abort(400, description="Too many acknowledgements in one form. Reload the page and try again.")
    if not items:
        abort(400, description="Nothing was selected to acknowledge.")
    made, problems = panel.acknowledge(session, viewer, items)
    if problems:
        session.rollback()
        view = panel.course_panel(session, viewer)
        session.commit()
        return render_template("panels/course.html", view=view, categories=CATEGORY_LABELS, plan_types=PLAN_TYPES,
                               done=None, problems=problems), 409
    session.commit()
    # The confirmation goes beside what was acknowledged: the student's row, or the counts above "Acknowledge all".
    where = f"#row-{items[0][0]}-{items[0][2]}" if len(items) == 1 else "#counts"
    return redirect(app_url("panels.course", done="ack") + where, code=303)


@bp.get("/student-card")
@require_viewer
def student_card() -> Any:
    viewer = current_viewer()
    if viewer.student_person_id is None:
        abort(404, description="This card launch did not say which student it is about.")
    student_id = student_for_person(get_session(), viewer.student_person_id)
    get_session().commit()
    if student_id is None:
        return render_template("panels/no_plan.html")
    return redirect(app_url("panels.student", student_id=student_id), code=303)


def _student_page(student_id: int, opened: int | None = None, errors: list[str] | None = None,
                  form: dict[str, str] | None = None, status: int = 200, result_at: str = "") -> Any:
    """The student card; ``result_at`` names the heading of the form the errors concern, so the page shows them beside
    it (caseload.js moves every ``data-result`` message there, focuses it and scrolls it into view)."""
    viewer = current_viewer()
    session = get_session()
    decision = access.authorize(session, viewer, student_id, Action.VIEW_RECORD, "student card")
    student = session.get(Student, student_id)
    if student is None:
        abort(404, description=access.NOT_VISIBLE)
    plans = [p for p in student.plans if p.status == "active"]
    versions = {p.id: next((v for v in p.versions if v.status == "active"), None) for p in plans}
    note_decision = access.check(session, viewer, student_id, Action.VIEW_NOTES, "student notes")
    visible = notes.visible_notes(session, viewer, student_id, note_decision, opened) if note_decision.allowed else []
    my_questions = questions.for_student(session, viewer, student_id)
    draft = notes.load_draft(session, viewer, student_id)
    viewers = access.who_viewed(session, student_id) if decision.relationship in ("case_manager", "admin") else None
    session.commit()
    return render_template("panels/student.html", student=student, plans=plans, versions=versions,
                           decision=decision, notes=visible, note_tiers=note_decision.note_tiers,
                           categories=CATEGORY_LABELS, note_types=NOTE_TYPE_LABELS, tiers=TIER_LABELS,
                           questions=my_questions, draft=draft, errors=errors or [], form=form or {},
                           done=_done(), max_chars=notes.MAX_NOTE_CHARS,
                           today=clock.today().isoformat(), who_viewed=viewers, result_at=result_at), status


@bp.get("/student/<int:student_id>")
@require_viewer
def student(student_id: int) -> Any:
    return _student_page(student_id)


@bp.post("/student/<int:student_id>/notes")
@require_viewer
def add_note(student_id: int) -> Any:
    viewer = current_viewer()
    session = get_session()
    f = request.form
    try:
        notes.create(session, viewer, student_id, f.get("note_type", ""), f.get("recorded_on", ""), f.get("body", ""),
                     f.get("visibility", "team"))
    except NoteInvalid as exc:
        session.rollback()
        notes_form = {k: f.get(k, "") for k in ("note_type", "recorded_on", "body", "visibility")}
        return _student_page(student_id, errors=[str(exc)], form=notes_form, status=422, result_at="add-note")
    session.commit()
    return redirect(app_url("panels.student", student_id=student_id, done="note", tier=f.get("visibility", "team"))
                    + "#add-note", code=303)


@bp.post("/notes/<int:note_id>/edit")
@require_viewer
def edit_note(note_id: int) -> Any:
    viewer = current_viewer()
    session = get_session()
    f = request.form
    revision_no = f.get("revision_no", "") or "0"
    if not (revision_no.isascii() and revision_no.isdigit()) or len(revision_no) > 9:
        abort(400, description="The note form came back incomplete. Reload the page and edit the note again.")
    try:
        note = notes.edit(session, viewer, note_id, f.get("note_type", ""), f.get("recorded_on", ""), f.get("body", ""),
                          f.get("visibility", "team"), int(revision_no))
    except NoteInvalid as exc:
        session.rollback()
        from lti_app.models import CaseNote

        existing = session.get(CaseNote, note_id)
        if existing is None:
            abort(404)
        return _student_page(existing.student_id, errors=[str(exc)], status=422, result_at="notes-h")
    session.commit()
    return redirect(app_url("panels.student", student_id=note.student_id, done="edit", tier=note.visibility)
                    + "#notes-h", code=303)


@bp.post("/notes/<int:note_id>/open")
@require_viewer
def open_note(note_id: int) -> Any:
    session = get_session()
    note = notes.open_restricted(session, current_viewer(), note_id)
    session.commit()
    return _student_page(note.student_id, opened=note.id)


@bp.post("/student/<int:student_id>/draft")
@require_viewer
def draft(student_id: int) -> Any:
    session = get_session()
    notes.save_draft(session, current_viewer(), student_id, request.form.get("body", ""))
    session.commit()
    return jsonify({"saved": True})


@bp.post("/student/<int:student_id>/question")
@require_viewer
def ask(student_id: int) -> Any:
    session = get_session()
    try:
        questions.ask(session, current_viewer(), student_id, request.form.get("body", ""))
    except NoteInvalid as exc:
        session.rollback()
        return _student_page(student_id, errors=[str(exc)], status=422, result_at="q-h")
    session.commit()
    return redirect(app_url("panels.student", student_id=student_id, done="question") + "#q-h", code=303)


@bp.get("/questions")
@require_viewer
def question_queue() -> Any:
    session = get_session()
    viewer = current_viewer()
    status = "answered" if request.args.get("status") == "answered" else "open"
    items = questions.queue(session, viewer, status)
    session.commit()
    return render_template("panels/questions.html", items=items, status=status, done=_done(), errors=[])


@bp.post("/questions/<int:question_id>/answer")
@require_viewer
def answer(question_id: int) -> Any:
    session = get_session()
    viewer = current_viewer()
    try:
        questions.answer(session, viewer, question_id, request.form.get("body", ""))
    except NoteInvalid as exc:
        session.rollback()
        items = questions.queue(session, viewer)
        session.commit()
        return render_template("panels/questions.html", items=items, status="open", done=None,
                               errors=[str(exc)]), 422
    session.commit()
    return redirect(app_url("panels.question_queue", done="answer"), code=303)


def current_version(plan: Plan) -> PlanVersion | None:
    return next((v for v in plan.versions if v.status == "active"), None)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

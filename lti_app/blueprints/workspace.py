"""The case manager's student workspace: one page per tab (overview, services, notes & timeline, contacts &
meetings, who viewed this record). Thin views: rules in ``domain/``, work in ``services/service_minutes.py`` and
``services/casework_log.py``; every page read and every change goes through the access policy and the access log.

Forms post to their own URL and redirect (303) to the tab with a ``done`` code; a form with problems re-renders the
tab with the messages and what was typed (422), having written nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request
from sqlalchemy import select

from lti_app import clock
from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session
from lti_app.domain.access import Action, Decision
from lti_app.domain.casework_rules import REFERRAL_TRANSITIONS, CaseworkInvalid
from lti_app.models import Contact, CrisisEntry, Meeting, Plan, Referral, ServiceRequirement, ServiceSession, Student
from lti_app.services.access import policy as access
from lti_app.services.casework import casework_access, casework_log, evidence, service_minutes
from lti_app.services.casework import deadlines as deadline_service
from lti_app.services.casework.notes import NOTE_TYPE_LABELS

bp = Blueprint("workspace", __name__, url_prefix="/casework/students/<int:student_id>")

DONE = {"service": "Service added.", "session": "Session logged.", "service_end": "Service end date saved.",
        "contact": "Contact recorded.", "contact_edit": "Contact updated.", "follow_up": "Follow-up marked as done.",
        "meeting": "Meeting saved.", "meeting_edit": "Meeting updated.", "referral": "Referral recorded.",
        "referral_status": "Referral status changed.", "crisis": "Crisis entry recorded.",
        "session_edit": "Session corrected.", "session_removed": "Session removed (kept in its history).",
        "contact_removed": "Contact removed (kept in its history).",
        "meeting_removed": "Meeting removed (kept in its history)."}
LABELS = {"services": service_minutes.SERVICE_LABELS, "attendance": service_minutes.ATTENDANCE_LABELS,
          "kinds": service_minutes.KIND_LABELS,
          "periods": service_minutes.PERIOD_LABELS, "methods": casework_log.METHOD_LABELS,
          "directions": casework_log.DIRECTION_LABELS, "meetings": casework_log.MEETING_LABELS,
          "meeting_status": casework_log.MEETING_STATUS_LABELS, "referrals": casework_log.REFERRAL_LABELS,
          "referral_status": casework_log.REFERRAL_STATUS_LABELS, "note_types": NOTE_TYPE_LABELS,
          "late_reasons": dict(deadline_service.LATE_REASONS)}


def _done() -> str | None:
    return DONE.get(request.args.get("done", ""))


def _student(student_id: int) -> Student:
    student = get_session().get(Student, student_id)
    if student is None:
        abort(404, description=access.NOT_VISIBLE)
    return student


def _page(template: str, student_id: int, context: str, build: Callable[[Decision], dict[str, Any]],
          errors: list[str] | None = None, form: dict[str, str] | None = None, form_name: str = "",
          status: int = 200) -> Any:
    """Authorize and log the read, build the tab's data, commit the log row, render."""
    viewer = current_viewer()
    session = get_session()
    decision = casework_access.authorize(session, viewer, student_id, Action.VIEW_CASEWORK, f"workspace: {context}")
    student = _student(student_id)
    data = build(decision)
    session.commit()
    may_edit = decision.relationship == "case_manager"
    current_tab = "workspace." + template.split("/")[-1].removesuffix(".html")
    return render_template(template, student=student, decision=decision, may_edit=may_edit, done=_done(),
                           current_tab=current_tab,
                           errors=errors or [], form=form or {}, form_name=form_name, labels=LABELS,
                           today=clock.today(), **data), status


def _form() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in ("t", "csrf_token")}


# ---------------------------------------------------------------------------------------------------- pages


@bp.get("")
@require_viewer
def student(student_id: int) -> Any:
    session = get_session()
    today = clock.today()

    def build(decision: Decision) -> dict[str, Any]:
        plans = list(session.scalars(select_plans(student_id)))
        services = service_minutes.services_for(session, student_id, today, periods=2, recent_sessions=0)
        contacts = casework_log.contacts_for(session, student_id)
        meetings = casework_log.meetings_for(session, student_id)
        referrals = casework_log.referrals_for(session, student_id)
        return {"plans": plans, "services": services,
                "follow_ups": [c for c in contacts if c.follow_up_on and not c.follow_up_done],
                "upcoming": sorted((m for m in meetings if m.status == "scheduled"), key=lambda m: m.meets_on),
                "open_referrals": [r for r in referrals if r.status in ("pending", "accepted")],
                "last_contact": contacts[0] if contacts else None}

    return _page("workspace/student.html", student_id, "overview", build)


def select_plans(student_id: int) -> Any:
    return select(Plan).where(Plan.student_id == student_id).order_by(Plan.status, Plan.effective_on.desc(), Plan.id)


def _services_page(student_id: int, **kw: Any) -> Any:
    session = get_session()
    viewer = current_viewer()

    def build(decision: Decision) -> dict[str, Any]:
        services = service_minutes.services_for(session, student_id, clock.today(), recent_sessions=None)
        plans = list(session.scalars(select_plans(student_id)))
        loggable = {s.id for s in services if decision.relationship == "case_manager" or s.provider_id == viewer.person_id}
        return {"services": services, "plans": plans, "loggable": loggable,
                "history": evidence.history(session, student_id, ["service_session"]),
                "totals": service_minutes.student_totals(services),
                "providers": service_minutes.providers(session) if decision.relationship == "case_manager" else []}

    return _page("workspace/services.html", student_id, "services", build, **kw)


@bp.get("/services")
@require_viewer
def services(student_id: int) -> Any:
    return _services_page(student_id)


@bp.get("/timeline")
@require_viewer
def timeline(student_id: int) -> Any:
    session = get_session()
    viewer = current_viewer()
    kind = request.args.get("kind", "")

    def build(decision: Decision) -> dict[str, Any]:
        entries = casework_log.timeline(session, viewer, student_id, decision)
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.kind] = counts.get(e.kind, 0) + 1
        if kind:
            entries = [e for e in entries if e.kind == kind]
        return {"entries": entries, "kind": kind, "kind_counts": counts}

    return _page("workspace/timeline.html", student_id, "timeline", build)


def _contacts_page(student_id: int, opened: int | None = None, **kw: Any) -> Any:
    session = get_session()

    def build(decision: Decision) -> dict[str, Any]:
        return {"contacts": casework_log.contacts_for(session, student_id),
                "meetings": casework_log.meetings_for(session, student_id),
                "removed_contacts": casework_log.contacts_for(session, student_id, removed=True),
                "removed_meetings": casework_log.meetings_for(session, student_id, removed=True),
                "history": evidence.history(session, student_id, ["contact", "meeting"]),
                "referrals": casework_log.referrals_for(session, student_id),
                "crisis": casework_log.crisis_for(session, student_id, decision, opened),
                "transitions": casework_log_transitions()}

    return _page("workspace/contacts.html", student_id, "contacts and meetings", build, **kw)


def casework_log_transitions() -> dict[str, list[str]]:
    """The states a referral may move to, the usual next step first."""
    order = ["accepted", "done", "declined", "pending"]
    return {k: sorted(v, key=order.index) for k, v in REFERRAL_TRANSITIONS.items()}


@bp.get("/contacts")
@require_viewer
def contacts(student_id: int) -> Any:
    return _contacts_page(student_id)


@bp.get("/viewers")
@require_viewer
def viewers(student_id: int) -> Any:
    session = get_session()

    def build(decision: Decision) -> dict[str, Any]:
        if decision.relationship not in ("case_manager", "admin"):
            return {"events": None}
        return {"events": access.who_viewed(session, student_id, limit=500)}

    return _page("workspace/viewers.html", student_id, "who viewed this record", build)


# ---------------------------------------------------------------------------------------------------- changes


def _change(student_id: int, anchor: str, done: str, write: Callable[[], object],
            again: Callable[..., Any], form_name: str) -> Any:
    """Run one write; on a form problem roll back everything (nothing half-written) and re-render the tab (422)."""
    session = get_session()
    try:
        write()
    except CaseworkInvalid as exc:
        session.rollback()
        return again(student_id, errors=exc.messages, form=_form(), form_name=form_name, status=422)
    session.commit()
    return redirect(app_url(f"workspace.{anchor.split('#')[0]}", student_id=student_id, done=done)
                    + ("#" + anchor.split("#")[1] if "#" in anchor else ""), code=303)


def _owned(model: type, row_id: int, student_id: int) -> Any:
    """The row, if it belongs to the student in the URL (a mismatched pair is a 404, not a write elsewhere)."""
    row = get_session().get(model, row_id)
    if row is None or row.student_id != student_id:
        abort(404, description="There is no such entry on this student's record.")
    return row


@bp.post("/services")
@require_viewer
def add_service(student_id: int) -> Any:
    return _change(student_id, "services#services-h", "service",
                   lambda: service_minutes.add_requirement(get_session(), current_viewer(), student_id, request.form),
                   _services_page, "service")


@bp.post("/services/<int:requirement_id>/sessions")
@require_viewer
def log_session(student_id: int, requirement_id: int) -> Any:
    _owned(ServiceRequirement, requirement_id, student_id)
    return _change(student_id, f"services#service-{requirement_id}", "session",
                   lambda: service_minutes.log_session(get_session(), current_viewer(), requirement_id, request.form),
                   _services_page, f"session-{requirement_id}")


@bp.post("/services/<int:requirement_id>/end")
@require_viewer
def end_service(student_id: int, requirement_id: int) -> Any:
    _owned(ServiceRequirement, requirement_id, student_id)
    return _change(student_id, f"services#service-{requirement_id}", "service_end",
                   lambda: service_minutes.end_requirement(get_session(), current_viewer(), requirement_id, request.form),
                   _services_page, f"end-{requirement_id}")


@bp.post("/sessions/<int:session_id>/correct")
@require_viewer
def correct_session(student_id: int, session_id: int) -> Any:
    row = _owned(ServiceSession, session_id, student_id)
    return _change(student_id, f"services#service-{row.requirement_id}", "session_edit",
                   lambda: service_minutes.correct_session(get_session(), current_viewer(), session_id, request.form),
                   _services_page, f"correct-session-{session_id}")


@bp.post("/sessions/<int:session_id>/remove")
@require_viewer
def remove_session(student_id: int, session_id: int) -> Any:
    row = _owned(ServiceSession, session_id, student_id)
    return _change(student_id, f"services#service-{row.requirement_id}", "session_removed",
                   lambda: service_minutes.remove_session(get_session(), current_viewer(), session_id, request.form),
                   _services_page, f"remove-session-{session_id}")


@bp.post("/contacts/<int:contact_id>/remove")
@require_viewer
def remove_contact(student_id: int, contact_id: int) -> Any:
    _owned(Contact, contact_id, student_id)
    return _change(student_id, "contacts#contacts-h", "contact_removed",
                   lambda: casework_log.remove_contact(get_session(), current_viewer(), contact_id, request.form),
                   _contacts_page, f"remove-contact-{contact_id}")


@bp.post("/meetings/<int:meeting_id>/remove")
@require_viewer
def remove_meeting(student_id: int, meeting_id: int) -> Any:
    _owned(Meeting, meeting_id, student_id)
    return _change(student_id, "contacts#meetings-h", "meeting_removed",
                   lambda: casework_log.remove_meeting(get_session(), current_viewer(), meeting_id, request.form),
                   _contacts_page, f"remove-meeting-{meeting_id}")


@bp.post("/contacts")
@require_viewer
def add_contact(student_id: int) -> Any:
    return _change(student_id, "contacts#contacts-h", "contact",
                   lambda: casework_log.create_contact(get_session(), current_viewer(), student_id, request.form),
                   _contacts_page, "contact")


@bp.post("/contacts/<int:contact_id>/edit")
@require_viewer
def edit_contact(student_id: int, contact_id: int) -> Any:
    _owned(Contact, contact_id, student_id)
    return _change(student_id, f"contacts#contact-{contact_id}", "contact_edit",
                   lambda: casework_log.update_contact(get_session(), current_viewer(), contact_id, request.form),
                   _contacts_page, f"contact-{contact_id}")


@bp.post("/contacts/<int:contact_id>/follow-up-done")
@require_viewer
def follow_up_done(student_id: int, contact_id: int) -> Any:
    _owned(Contact, contact_id, student_id)
    return _change(student_id, f"contacts#contact-{contact_id}", "follow_up",
                   lambda: casework_log.complete_follow_up(get_session(), current_viewer(), contact_id),
                   _contacts_page, f"contact-{contact_id}")


@bp.post("/meetings")
@require_viewer
def add_meeting(student_id: int) -> Any:
    return _change(student_id, "contacts#meetings-h", "meeting",
                   lambda: casework_log.create_meeting(get_session(), current_viewer(), student_id, request.form),
                   _contacts_page, "meeting")


@bp.post("/meetings/<int:meeting_id>/edit")
@require_viewer
def edit_meeting(student_id: int, meeting_id: int) -> Any:
    _owned(Meeting, meeting_id, student_id)
    return _change(student_id, f"contacts#meeting-{meeting_id}", "meeting_edit",
                   lambda: casework_log.update_meeting(get_session(), current_viewer(), meeting_id, request.form),
                   _contacts_page, f"meeting-{meeting_id}")


@bp.post("/referrals")
@require_viewer
def add_referral(student_id: int) -> Any:
    return _change(student_id, "contacts#referrals-h", "referral",
                   lambda: casework_log.create_referral(get_session(), current_viewer(), student_id, request.form),
                   _contacts_page, "referral")


@bp.post("/referrals/<int:referral_id>/status")
@require_viewer
def referral_status(student_id: int, referral_id: int) -> Any:
    _owned(Referral, referral_id, student_id)
    return _change(student_id, f"contacts#referral-{referral_id}", "referral_status",
                   lambda: casework_log.change_referral(get_session(), current_viewer(), referral_id, request.form),
                   _contacts_page, f"referral-{referral_id}")


@bp.post("/crisis")
@require_viewer
def add_crisis(student_id: int) -> Any:
    return _change(student_id, "contacts#crisis-h", "crisis",
                   lambda: casework_log.create_crisis(get_session(), current_viewer(), student_id, request.form),
                   _contacts_page, "crisis")


@bp.post("/crisis/<int:entry_id>/open")
@require_viewer
def open_crisis(student_id: int, entry_id: int) -> Any:
    _owned(CrisisEntry, entry_id, student_id)
    session = get_session()
    entry = casework_log.open_crisis(session, current_viewer(), entry_id)
    session.commit()
    return _contacts_page(student_id, opened=entry.id)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # The tab bar (templates/casework/_tabs.html) shows a tab only when its endpoint is registered.
    app.jinja_env.globals.setdefault("current_app", current_app)

"""Administration inside the LMS: platforms and deployments, and the district access log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, redirect, render_template, request
from sqlalchemy import select

from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session, utcnow
from lti_app.models import AccessEvent, Deployment, Person, Platform, Student
from lti_app.services import roles

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE = 100


def _require_admin() -> None:
    if not roles.is_admin(get_session(), current_viewer()):
        abort(403, description="These pages are for Caseload administrators (LMS administrators or people with a "
                               "school or district administrator grant).")


@bp.get("/")
@require_viewer
def home() -> Any:
    _require_admin()
    session = get_session()
    platforms = session.scalars(select(Platform).order_by(Platform.name)).all()
    only_denied = request.args.get("denied") == "1"
    stmt = (select(AccessEvent, Person.name, Student.given_name, Student.family_name)
            .outerjoin(Person, Person.id == AccessEvent.actor_id)
            .outerjoin(Student, Student.id == AccessEvent.student_id)
            .order_by(AccessEvent.at.desc(), AccessEvent.id.desc()).limit(PAGE))
    if only_denied:
        stmt = stmt.where(AccessEvent.allowed.is_(False))
    events = session.execute(stmt).all()
    return render_template("admin/home.html", platforms=platforms, events=events, only_denied=only_denied)


@bp.post("/deployments/<int:deployment_id>/<action>")
@require_viewer
def deployment(deployment_id: int, action: str) -> Any:
    _require_admin()
    session = get_session()
    dep = session.get(Deployment, deployment_id)
    if dep is None or action not in ("approve", "disable"):
        abort(404, description="There is no such deployment.")
    dep.status = "active" if action == "approve" else "disabled"
    dep.approved_at = utcnow() if action == "approve" else dep.approved_at
    session.commit()
    return redirect(app_url("admin.home"), code=303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

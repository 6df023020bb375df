"""Administration inside the LMS (``/admin``): platforms and deployments, role grants, the district access log,
"who may see records", the record of disclosures, CSV import, record export and retention.

Only administrators (LMS institution administrators, school or district administrator grants:
``services.roles.is_admin``) reach these pages; everyone else gets a readable 403. The one exception is the
record export form, which the access policy decides (a student's case manager may export their student's record).
Views stay thin: the rules and every write are in ``services/`` (grants, importer, export, retention, audit_log).
Messages after a POST travel as a fixed ``notice`` code in the redirect (an LMS iframe may not keep a cookie).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, make_response, redirect, render_template, request
from sqlalchemy import func, or_, select
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app import clock
from lti_app.auth import Viewer, app_url, current_viewer, require_viewer
from lti_app.blueprints import navigation
from lti_app.blueprints.downloads import csv_response
from lti_app.db import get_session, utcnow
from lti_app.domain.access import Action
from lti_app.domain.vocab import AdminAction
from lti_app.errors import render_error
from lti_app.ids import parse_id
from lti_app.models import Deployment, Disclosure, Person, Plan, Platform, RoleGrant, Student
from lti_app.services.access import audit_log, grants, roles
from lti_app.services.access import policy as access
from lti_app.services.casework import export, importer, retention
from lti_app.services.platforms.dynamic_registration import issue_registration_link, recent_invites

bp = Blueprint("admin", __name__, url_prefix="/admin")

NOTICES = {
    "approved": "The deployment is approved: launches from it are accepted.",
    "disabled": "The deployment is disabled: launches from it are refused.",
    "granted": "The grant is recorded. It takes effect on the person's next page.",
    "revoked": "The grant is revoked. It takes effect on the person's next page; the grant stays in the history.",
    "restricted_on": "Restricted-note access is on for this grant (a new grant replaced the old one).",
    "restricted_off": "Restricted-note access is off for this grant (a new grant replaced the old one).",
    "purged": "The records were purged. The change log lists what was removed.",
    "nothing_to_purge": "No record was due for purging: nothing was changed.",
    "frame_origin_added": "The origin is allowed: that LMS's pages may show Caseload in their frame.",
    "frame_origin_removed": "The origin is removed: that LMS's pages may no longer show Caseload (a later launch "
                            "from it can add it again).",
}
PAGE = 50


def _admin() -> Viewer:
    viewer = current_viewer()
    if not roles.is_admin(get_session(), viewer):
        abort(403, description="These pages are for Caseload administrators (LMS administrators, or people with a "
                               "school or district administrator grant). Ask your district's Caseload administrator "
                               "if you need access.")
    return viewer


DISTRICT_ONLY = ("This page is district-wide (every platform's students), so it is for district administrators. An "
                 "LMS or school administrator reaches the students of the platform they launched from; ask your "
                 "district's Caseload administrator for a district administrator grant if you need more.")


def _district_admin() -> Viewer:
    """District-wide pages (the district access log, who may see records, disclosures, the change log, retention):
    a district administrator grant, never an LMS administrator role alone (issue #14: an administrator of one
    registered platform must not read or purge another platform's students)."""
    viewer = _admin()
    if not roles.is_district_admin(get_session(), viewer.person_id):
        abort(403, description=DISTRICT_ONLY)
    return viewer


@bp.context_processor
def _admin_scope() -> dict[str, Any]:
    def district_admin() -> bool:
        viewer = g.get("viewer")
        return viewer is not None and roles.is_district_admin(get_session(), viewer.person_id)

    return {"district_admin": district_admin}


def _granter(viewer: Viewer) -> grants.Granter:
    granter = grants.granter_for(get_session(), viewer)
    if granter is None:  # an admin by launch role only cannot be None; kept for safety
        abort(403, description="You may not change grants.")
    return granter


def _may_purge(viewer: Viewer) -> bool:
    """Purging is district-wide and irreversible: district administrators only (an LMS administrator's launch role
    is one platform's authority, and the purge reaches every platform's students)."""
    return roles.is_district_admin(get_session(), viewer.person_id)


def _notice() -> str | None:
    return NOTICES.get(request.args.get("notice", ""))


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1 or int(raw) > 100_000:
        abort(400, description="The page number must be a whole number from 1.")
    return int(raw)


@bp.before_request
def _upload_limit() -> None:
    """The import page accepts files up to CASELOAD_IMPORT_MAX_BYTES (the rest of the app keeps the smaller
    CASELOAD_MAX_BODY_BYTES); set before anything reads the body (Flask 3.1 per-request limit)."""
    if request.endpoint == "admin.import_upload":
        request.max_content_length = current_app.config["CASELOAD"].import_max_bytes


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Any:
    settings = current_app.config["CASELOAD"]
    if request.endpoint == "admin.import_upload":
        limit = settings.import_max_bytes
        return render_error(413, f"The file is larger than the {limit / 1_000_000:g} MB Caseload accepts for an "
                                 "import. Nothing was imported. Split the file (for example one file per school) and "
                                 "import each part.")
    return render_error(413, f"The request body is larger than the {settings.max_body_bytes:,} bytes Caseload accepts.")


# ------------------------------------------------------------------------------------------------------ overview
@bp.get("/")
@require_viewer
def home() -> Any:
    viewer = _admin()
    session = get_session()
    from lti_app.services.access.roles import visible_platform_ids

    platform_ids = visible_platform_ids(session, viewer.platform_id, viewer.person_id)
    platforms = session.scalars(select(Platform).where(Platform.id.in_(platform_ids)).order_by(Platform.name)).all()
    years = current_app.config["CASELOAD"].retention_years
    district = roles.is_district_admin(session, viewer.person_id)
    # A platform's administrator counts their platform's records and grants only (issue #14); the district-wide
    # figures (disclosures, retention, imports) are on district-only pages.
    students = select(Student.id) if district else roles.platform_student_ids(viewer.platform_id)
    grant_count = select(func.count(RoleGrant.id)).where(RoleGrant.revoked_at.is_(None))
    if not district:
        grant_count = grant_count.join(Person, Person.id == RoleGrant.person_id).where(
            Person.platform_id == viewer.platform_id)
    counts = {
        "grants": session.scalar(grant_count) or 0,
        "disclosures": (session.scalar(select(func.count(Disclosure.id))) or 0) if district else 0,
        "students": session.scalar(select(func.count()).select_from(students.subquery())) or 0,
        "active_plans": session.scalar(select(func.count(Plan.id)).where(Plan.status == "active",
                                                                         Plan.student_id.in_(students))) or 0,
        "retention_due": retention.due_count(session, retention.cutoff(clock.today(), years)) if district else 0,
    }
    last_import = audit_log.changes(session, "import.", page_size=1).rows if district else []
    pending = sum(1 for p in platforms for d in p.deployments if d.status == "pending")
    invites = recent_invites(session) if district else None
    from lti_app.services.platforms import framing

    frame_origins = {p.id: framing.list_origins(session, p) for p in platforms}
    may_rotate = {p.id for p in platforms if district or (viewer.has_role("admin") and viewer.platform_id == p.id)}
    return render_template("admin/home.html", platforms=platforms, counts=counts, pending=pending,
                           webhook_urls={p.id: _webhook_url(p) for p in platforms}, may_rotate=may_rotate,
                           last_import=last_import[0] if last_import else None, notice=_notice(), years=years,
                           invites=invites, now=utcnow(), frame_origins=frame_origins)


@bp.post("/platforms/<int:platform_id>/frame-origins")
@require_viewer
def frame_origins(platform_id: int) -> Any:
    """Allow or stop an LMS page origin framing Caseload (district administrators: the CSP is installation-wide)."""
    from lti_app.security import invalidate_frame_cache
    from lti_app.services.platforms import framing

    viewer = _admin()
    session = get_session()
    if not roles.is_district_admin(session, viewer.person_id):
        abort(403, description="Only district administrators can change which LMS pages may show Caseload.")
    platform = session.get(Platform, platform_id)
    if platform is None:
        abort(404, description="There is no such platform.")
    change = request.form.get("change", "")
    if change not in ("add", "remove"):
        abort(400, description="Choose whether to add or remove the origin.")
    fn = framing.add_origin if change == "add" else framing.remove_origin
    try:
        fn(session, platform, request.form.get("origin", ""), actor_id=viewer.person_id, via="web")
    except framing.FramingInvalid as exc:
        session.rollback()
        return render_error(422, str(exc))
    session.commit()
    invalidate_frame_cache()
    return redirect(app_url("admin.home", notice=f"frame_origin_{'added' if change == 'add' else 'removed'}",
                            _anchor=f"platform-{platform.id}"), code=303)


REGISTRATION_LINK_HOURS = {"24": 24, "72": 72, "168": 168}


@bp.post("/registration-links")
@require_viewer
def registration_link() -> Any:
    """A one-time Dynamic Registration link, shown once (district administrators: a platform is installation-wide)."""
    viewer = _admin()
    if not roles.is_district_admin(get_session(), viewer.person_id):
        abort(403, description="Only district administrators can create registration links: a registered LMS can "
                               "launch Caseload for the whole installation.")
    hours = REGISTRATION_LINK_HOURS.get(request.form.get("hours", "72"))
    if hours is None:
        abort(400, description="Choose how long the link stays valid: 1, 3 or 7 days.")
    session = get_session()
    url, invite = issue_registration_link(session, current_app.config["CASELOAD"].base_url, hours=hours,
                                          label=request.form.get("label", "").strip() or None,
                                          actor_id=viewer.person_id, via="web")
    session.commit()
    response = make_response(render_template("admin/registration_link.html", url=url, invite=invite))
    response.headers["Cache-Control"] = "no-store"  # the link is a secret shown once
    return response


@bp.post("/platforms/<int:platform_id>/webhook-secret")
@require_viewer
def webhook_secret(platform_id: int) -> Any:
    """A new webhook secret for a Moodle platform's companion plugin, shown once (only its encrypted form is kept;
    the old one stops working at once, so every event is then refused until the plugin has the new one, and the
    plugin keeps those events queued). District administrators, or the LMS administrator of that platform."""
    from lti_app.services.platforms.registry import PlatformInvalid, configure_webhooks

    viewer = _admin()
    session = get_session()
    platform = session.get(Platform, platform_id)
    district = roles.is_district_admin(session, viewer.person_id)
    own = viewer.has_role("admin") and viewer.platform_id == platform_id
    if platform is None or not (district or own):
        abort(404, description="There is no such platform that you administer (a new secret is made by a district "
                               "administrator or by the LMS administrator of that platform).")
    if platform.lms != "moodle":
        abort(400, description="Only Moodle platforms use a webhook secret (Canvas signs its Live Events).")
    try:
        _, secret = configure_webhooks(session, platform.name, new_secret=True)
    except PlatformInvalid as exc:
        abort(400, description=str(exc))
    audit_log.record_admin(session, viewer.person_id, "web", "platform.webhook_secret", target_type="platform",
                           target_id=platform.id, summary=f"New webhook secret for {platform.name}")
    session.commit()
    response = make_response(render_template("admin/webhook_secret.html", platform=platform, secret=secret,
                                             webhook_url=_webhook_url(platform)))
    response.headers["Cache-Control"] = "no-store"  # the secret is shown once
    return response


def _webhook_url(platform: Platform) -> str | None:
    if platform.lms not in ("canvas", "moodle"):
        return None
    return f"{current_app.config['CASELOAD'].base_url.rstrip('/')}/webhooks/{platform.lms}/{platform.name}"


@bp.app_context_processor
def _administration_entry() -> dict[str, Any]:
    """The "Administration" entry of the tool's header, on every page, for anyone ``roles.is_admin`` lets in (a
    Moodle site administrator launching from an activity lands on the course panel, and Moodle has no account
    navigation placement, so this is their way in). Evaluated lazily: a page that does not show it pays nothing."""
    def administration_url() -> str | None:
        viewer = g.get("viewer")
        if viewer is None:
            return None
        if not navigation.viewer_is_admin():  # roles.is_admin, from the header's one read of the grants
            return None
        return app_url("admin.home")

    return {"administration_url": administration_url}


@bp.post("/deployments/<int:deployment_id>/<action>")
@require_viewer
def deployment(deployment_id: int, action: str) -> Any:
    """Approve or disable a deployment (LTI Core 1.3 §3.1.3), through the platform service, and log it."""
    viewer = _admin()
    session = get_session()
    from lti_app.services.access.roles import visible_platform_ids
    from lti_app.services.platforms.registry import set_deployment_status

    dep = session.get(Deployment, deployment_id)
    if dep is None or action not in ("approve", "disable") or dep.platform_id not in visible_platform_ids(
            session, viewer.platform_id, viewer.person_id):
        abort(404, description="There is no such deployment on a platform you administer.")
    status = "active" if action == "approve" else "disabled"
    set_deployment_status(session, dep.platform.name, dep.deployment_id, status)
    audit_log.record_admin(session, viewer.person_id, "web",
                           (AdminAction.DEPLOYMENT_APPROVE if action == "approve" else AdminAction.DEPLOYMENT_DISABLE).value,
                           target_type="deployment", target_id=dep.id,
                           summary=f"Deployment {dep.deployment_id} of {dep.platform.name} {status}")
    session.commit()
    return redirect(app_url("admin.home", notice="approved" if action == "approve" else "disabled"), code=303)


# -------------------------------------------------------------------------------------------------------- grants
def _grants_page(granter: grants.Granter, error: str | None = None, status: int = 200,
                 form: dict[str, str] | None = None) -> Any:
    session = get_session()
    query = request.values.get("q", "").strip()
    person_id = parse_id(request.values.get("person") or request.values.get("person_id"))
    chosen = None
    if person_id is not None:
        person = session.get(Person, person_id)
        if person is not None and granter.reaches(person.platform_id) and person.kind == "staff":
            chosen = person
    results = grants.search_staff(session, query, granter.platform_ids) if query else []
    return render_template(
        "admin/grants.html", active=grants.list_grants(session, granter.platform_ids),
        history=grants.list_grants(session, granter.platform_ids, active=False, limit=200), query=query,
        results=results, chosen=chosen, granter=granter, role_labels=grants.ROLE_LABELS, error=error,
        notice=_notice(), form=form or {}), status


@bp.get("/grants")
@require_viewer
def grants_page() -> Any:
    return _grants_page(_granter(_admin()))


@bp.post("/grants")
@require_viewer
def grant_add() -> Any:
    granter = _granter(_admin())
    person_id = parse_id(request.form.get("person_id"))
    if person_id is None:
        abort(400, description="Choose a staff member first (search by name, then 'Choose').")
    try:
        grants.add_grant(get_session(), granter, person_id, request.form.get("role", ""),
                         can_see_restricted=request.form.get("can_see_restricted") == "on",
                         school=request.form.get("school"))
    except grants.GrantNotFound as exc:
        abort(404, description=str(exc))
    except grants.GrantInvalid as exc:
        get_session().rollback()
        return _grants_page(granter, str(exc), 422, dict(request.form))
    return redirect(app_url("admin.grants_page", notice="granted"), code=303)


@bp.post("/grants/<int:grant_id>/revoke")
@require_viewer
def grant_revoke(grant_id: int) -> Any:
    granter = _granter(_admin())
    try:
        grants.revoke_grant(get_session(), granter, grant_id)
    except grants.GrantNotFound as exc:
        abort(404, description=str(exc))
    except grants.GrantInvalid as exc:
        get_session().rollback()
        return _grants_page(granter, str(exc), 422)
    return redirect(app_url("admin.grants_page", notice="revoked"), code=303)


@bp.post("/grants/<int:grant_id>/restricted")
@require_viewer
def grant_restricted(grant_id: int) -> Any:
    granter = _granter(_admin())
    allowed = request.form.get("allowed") == "1"
    try:
        grants.set_restricted(get_session(), granter, grant_id, allowed)
    except grants.GrantNotFound as exc:
        abort(404, description=str(exc))
    except grants.GrantInvalid as exc:
        get_session().rollback()
        return _grants_page(granter, str(exc), 422)
    return redirect(app_url("admin.grants_page", notice="restricted_on" if allowed else "restricted_off"), code=303)


# ------------------------------------------------------------------------------------------- logs and listings
@bp.get("/access-log")
@require_viewer
def access_log() -> Any:
    _district_admin()
    session = get_session()
    page = _page_arg()
    error = None
    try:
        flt = audit_log.AccessFilter.from_args(request.args)
        result = audit_log.access_log(session, flt, page)
    except audit_log.FilterInvalid as exc:
        error, flt, result = str(exc), audit_log.AccessFilter(), audit_log.Page((), 1, 0)
    return render_template("admin/access_log.html", flt=flt, result=result, actions=audit_log.access_actions(session),
                           error=error, args=dict(request.args)), (400 if error else 200)


@bp.get("/who-may-see")
@require_viewer
def who_may_see() -> Any:
    _district_admin()
    rows = grants.who_may_see(get_session())
    if request.args.get("format") == "csv":
        return csv_response([["name", "email", "platform", "positions", "basis"]] + [
            [r.name, r.email or "", r.platform, "; ".join(r.positions), "; ".join(r.bases)] for r in rows],
            f"who-may-see-records-{clock.today()}.csv")
    return render_template("admin/who_may_see.html", rows=rows, today=clock.today())


@bp.get("/disclosures")
@require_viewer
def disclosures() -> Any:
    _district_admin()
    page = _page_arg()
    rows, total = export.list_disclosures(get_session(), limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("admin/disclosures.html", rows=rows, page=audit_log.Page(tuple(rows), page, total, PAGE))


@bp.get("/changes")
@require_viewer
def changes() -> Any:
    _district_admin()
    return render_template("admin/changes.html", result=audit_log.changes(get_session(), page=_page_arg()))


# --------------------------------------------------------------------------------------------------------- import
IMPORT_DISTRICT_ONLY = ("Imports are for district administrators: an import writes district-wide records (students "
                        "are matched by SIS id across every platform, duplicates are checked against every stored "
                        "record, and the report names what already exists), so one platform's administrator cannot "
                        "run one. Ask your district's Caseload administrator to import the file, or for a district "
                        "administrator grant.")


def _importer() -> Viewer:
    """The import page, template and upload: district administrators only (issue #14; see IMPORT_DISTRICT_ONLY)."""
    viewer = _admin()
    if not roles.is_district_admin(get_session(), viewer.person_id):
        abort(403, description=IMPORT_DISTRICT_ONLY)
    return viewer


@bp.get("/imports")
@require_viewer
def imports() -> Any:
    _importer()
    return render_template("admin/imports.html", columns=importer.COLUMNS, history=audit_log.changes(
        get_session(), "import.", page_size=20).rows, max_mb=current_app.config["CASELOAD"].import_max_bytes / 1e6)


@bp.get("/imports/template.csv")
@require_viewer
def import_template() -> Any:
    _importer()
    # Public column names and fictional examples: a cache may keep it.
    return csv_response([importer.COLUMN_NAMES, [c.example for c in importer.COLUMNS]], "caseload-import-template.csv",
                        private=False)


@bp.post("/imports")
@require_viewer
def import_upload() -> Any:
    viewer = _importer()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("admin/imports.html", columns=importer.COLUMNS, history=(), error="Choose a CSV file "
                               "to import.", max_mb=current_app.config["CASELOAD"].import_max_bytes / 1e6), 400
    data = upload.read()
    dry_run = request.form.get("mode", "dry_run") != "apply"
    report = importer.run_import(get_session(), data, filename=upload.filename, dry_run=dry_run,
                                 skip_bad_rows=request.form.get("skip_bad_rows") == "on", actor_id=viewer.person_id,
                                 via="web")
    # A file the database cannot hold (control characters) is a bad request whatever the mode: 400, nothing written.
    status = 400 if report.refused else 422 if (report.blocked and not dry_run) else 200
    return render_template("admin/import_report.html", report=report, shown_errors=report.errors[:500],
                           shown_warnings=report.warnings[:200]), status


# ------------------------------------------------------------------------------------------------------ retention
def _before_arg() -> tuple[dt.date, str | None]:
    years = current_app.config["CASELOAD"].retention_years
    default = retention.cutoff(clock.today(), years)
    raw = (request.values.get("before") or "").strip()
    if not raw:
        return default, None
    try:
        before = dt.date.fromisoformat(raw)
    except ValueError:
        return default, f"{raw[:30]!r} is not a date written YYYY-MM-DD; showing the policy cutoff instead."
    if before > default:
        return default, (f"{before} is later than the retention policy allows ({years} years after departure, so "
                         f"departed before {default}); showing the policy cutoff instead.")
    return before, None


@bp.get("/retention")
@require_viewer
def retention_page() -> Any:
    viewer = _district_admin()
    before, error = _before_arg()
    result = retention.run(get_session(), before, dry_run=True)
    return render_template("admin/retention.html", result=result, error=error, notice=_notice(),
                           may_purge=_may_purge(viewer), years=current_app.config["CASELOAD"].retention_years,
                           labels=retention.LABELS, history=audit_log.changes(get_session(), "retention.",
                                                                                  page_size=10).rows)


@bp.post("/retention")
@require_viewer
def retention_apply() -> Any:
    viewer = _district_admin()
    if not _may_purge(viewer):
        abort(403, description="Purging records is for district administrators.")
    before, error = _before_arg()
    if error or request.form.get("confirm") != "on":
        abort(400, description=error or "Tick the box that confirms no request to inspect these records is "
                                        "outstanding, then purge again.")
    result = retention.run(get_session(), before, dry_run=False, actor_id=viewer.person_id, via="web")
    return redirect(app_url("admin.retention_page", before=before.isoformat(),
                            notice="purged" if result.applied else "nothing_to_purge"), code=303)


# ------------------------------------------------------------------------------------------- students and export
@bp.get("/students")
@require_viewer
def students() -> Any:
    """Find a student's record to export (names and SIS ids only; opening the export form is logged). District
    administrators search every student; other administrators the students of the platform they launched from."""
    viewer = _admin()
    query = request.args.get("q", "").strip()[:100]
    rows: list[Student] = []
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = select(Student).where(or_(
            func.lower(Student.given_name + " " + Student.family_name).like(pattern, escape="\\"),
            func.lower(func.coalesce(Student.preferred_name, "")).like(pattern, escape="\\"),
            func.lower(func.coalesce(Student.sis_id, "")) == query.lower()))
        if not roles.is_district_admin(get_session(), viewer.person_id):
            stmt = stmt.where(Student.id.in_(roles.platform_student_ids(viewer.platform_id)))
        rows = list(get_session().scalars(stmt.order_by(Student.family_name, Student.given_name, Student.id).limit(50)))
    return render_template("admin/students.html", query=query, rows=rows)


def _services_owed(context: str) -> tuple[Any, bool, Viewer]:
    from lti_app.services.casework.services_owed_admin import admin_services_owed

    viewer = _admin()
    every = request.args.get("all") == "1"
    view = admin_services_owed(get_session(), viewer, clock.today(), every_service=every, context=context)
    get_session().commit()  # the access log rows of every student decided
    return view, every, viewer


@bp.get("/services-owed")
@require_viewer
def services_owed() -> Any:
    """Minutes owed (compensatory services) across the students this administrator may see: the case managers'
    *Services owed*, for the district or the platform."""
    from lti_app.services.casework import service_minutes

    view, every, viewer = _services_owed("services owed (administration)")
    if roles.is_district_admin(get_session(), viewer.person_id):
        reach = "every platform of the district"
    else:
        reach = "the students with an account on the platform you launched from"
    return render_template("admin/services_owed.html", view=view, every=every, reach=reach,
                           periods=service_minutes.PERIOD_LABELS)


@bp.get("/services-owed.csv")
@require_viewer
def services_owed_csv() -> Any:
    from lti_app.services.casework import service_minutes

    view, every, _viewer = _services_owed("services owed (administration, CSV)")
    return csv_response(service_minutes.owed_csv_rows(view),
                        f"services-owed-district-{clock.today().isoformat()}{'-all' if every else ''}.csv")


def _export_form(student_id: int, error: str | None = None, status: int = 200) -> Any:
    """The export form. Logged once: an allowed opening as a ``view`` of the record ("export form"); a refusal as
    a refused ``export`` with its basis (it was logged as an allowed view before, then refused)."""
    session = get_session()
    viewer = current_viewer()
    decision = access.decide_only(session, viewer, student_id, Action.EXPORT)
    if decision is None or not decision.allowed:
        basis = decision.basis if decision is not None else "no such student record"
        access.record(session, viewer, student_id if decision is not None else None, Action.EXPORT.value, False,
                      basis, "export form" + ("" if decision is not None else f" (student id {student_id})"))
        session.commit()
        if decision is None or decision.relationship == "none":
            abort(404, description=access.NOT_VISIBLE)
        abort(403, description="Exports of a student's record are made by the student's case manager or an "
                               "administrator.")
    access.record(session, viewer, student_id, Action.VIEW_RECORD.value, True, decision.basis, "export form")
    student = session.get(Student, student_id)
    session.commit()  # the view of the form is in the access log
    back = "admin.students" if roles.is_admin(session, viewer) else "casework.home"
    return render_template("admin/export_form.html", student=student, legal_bases=export.LEGAL_BASES, back=back,
                           may_restricted=decision.may_read_tier("restricted"), error=error,
                           form=dict(request.form)), status


@bp.get("/students/<int:student_id>/export")
@require_viewer
def export_form(student_id: int) -> Any:
    return _export_form(student_id)


@bp.post("/students/<int:student_id>/export")
@require_viewer
def export_record(student_id: int) -> Any:
    viewer = current_viewer()
    form = request.form
    req = export.ExportRequest(fmt=form.get("format", "html"), leaves_school=form.get("leaves_school") == "yes",
                               recipient=form.get("recipient", ""), purpose=form.get("purpose", ""),
                               legal_basis=form.get("legal_basis", ""),
                               include_restricted=form.get("include_restricted") == "on")
    try:
        result = export.export_student(get_session(), viewer, student_id, req)
    except export.ExportInvalid as exc:
        get_session().rollback()
        return _export_form(student_id, str(exc), 422)
    record = result.record
    if req.fmt == "json":
        name = record["student"]["sis_id"] or f"student-{student_id}"
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:60]
        resp = Response(json.dumps(record, indent=2, ensure_ascii=False), mimetype="application/json")
        resp.headers["Content-Disposition"] = f"attachment; filename=caseload-record-{safe}-{clock.today()}.json"
    else:
        resp = Response(render_template("admin/export_record.html", record=record, disclosure_id=result.disclosure_id))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

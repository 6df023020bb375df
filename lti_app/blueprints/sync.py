"""Sync health for administrators (``/admin/sync``): is the roster flowing in, and what to do when it is not.

Per platform: when the last webhook event arrived, how many events were applied / are waiting / are parked,
the last reconciliations and what they changed, the parked events with their last error and a retry button,
and "Sync now" per course; for a platform with an LMS accommodations connection, its work backlog (connection
health, courses waiting or failing and since when, the last change applied, the last error in words). Admins
only (``services.roles.is_admin``); a district administrator sees every platform, other admins the platform they
launched from. The page shows counts, course titles and error texts, never a student's record.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, redirect, render_template, request
from werkzeug.wrappers import Response

from lti_app.auth import app_url, current_viewer, require_viewer
from lti_app.db import get_session

bp = Blueprint("sync", __name__, url_prefix="/admin/sync")

NOTICES = {
    "retried": "The event was put back in the queue; it is applied within a minute (or now, without a broker).",
    "retried_all": "All parked events of the platform were put back in the queue.",
    "synced": "The roster sync finished.",
    "sync_failed": "The roster sync failed: see the course's last result below.",
    "queued": "The roster sync was queued; reload this page in a minute to see its result.",
    "pulled": "The OneRoster pull finished.",
    "pull_failed": "The OneRoster pull failed: see the last OneRoster result below.",
}


def _admin_platform_ids() -> list[int]:
    from lti_app.services.access.roles import is_admin, visible_platform_ids

    viewer = current_viewer()
    session = get_session()
    if not is_admin(session, viewer):
        abort(403, description="Sync health is for school and district administrators. Ask your Caseload "
                               "administrator for an administrator grant if you need it.")
    return visible_platform_ids(session, viewer.platform_id, viewer.person_id)


def _back(**notice: Any) -> Response:
    return redirect(app_url("sync.health", **notice), code=303)


@bp.get("")
@require_viewer
def health() -> Any:
    from lti_app.services.lms_actions.backlog import backlogs
    from lti_app.services.roster.health import sync_health

    platform_ids = _admin_platform_ids()
    platforms = sync_health(get_session(), platform_ids)
    lms = backlogs(get_session(), list(platform_ids))
    code = request.args.get("notice", "")
    notice = NOTICES.get(code)
    counts = None
    if code == "synced":
        counts = {k: request.args.get(k, type=int) for k in ("added", "updated", "removed")}
    return render_template("sync/health.html", platforms=platforms, lms=lms, notice=notice, notice_code=code,
                           counts=counts)


@bp.post("/events/<int:event_id>/retry")
@require_viewer
def retry_event(event_id: int) -> Response:
    from lti_app.models import InboundEvent

    platform_ids = _admin_platform_ids()
    session = get_session()
    event = session.get(InboundEvent, event_id)
    if event is None or event.platform_id not in platform_ids:
        abort(404, description="That event does not exist (or belongs to a platform you do not administer).")
    from lti_app.services.roster import inbox

    if inbox.retry_event(session, event_id):
        inbox.kick()
    return _back(notice="retried")


@bp.post("/platforms/<int:platform_id>/retry-parked")
@require_viewer
def retry_parked(platform_id: int) -> Response:
    if platform_id not in _admin_platform_ids():
        abort(404, description="That platform does not exist (or you do not administer it).")
    from lti_app.services.roster import inbox

    if inbox.requeue_failed(get_session(), platform_id):
        inbox.kick()
    return _back(notice="retried_all")


@bp.post("/courses/<int:course_id>/sync")
@require_viewer
def sync_course(course_id: int) -> Response:
    from lti_app.models import Course
    from lti_app.services.roster.reconcile import sync_course_now

    platform_ids = _admin_platform_ids()
    session = get_session()
    course = session.get(Course, course_id)
    if course is None or course.platform_id not in platform_ids:
        abort(404, description="That course does not exist (or belongs to a platform you do not administer).")
    if not course.nrps_url:
        abort(409, description="The LMS has not given Caseload a roster URL for this course yet; it arrives "
                               "with the first launch from the course.")
    outcome = sync_course_now(session, course_id)
    if outcome is None:
        return _back(notice="queued")
    if not outcome.ok:
        return _back(notice="sync_failed")
    return _back(notice="synced", added=outcome.added, updated=outcome.updated, removed=outcome.removed)


@bp.post("/platforms/<int:platform_id>/oneroster")
@require_viewer
def pull_oneroster(platform_id: int) -> Response:
    from flask import current_app

    from lti_app.services.dispatch import RECONCILE_ONEROSTER, enqueue
    from lti_app.services.roster import oneroster as reconcile_oneroster

    if platform_id not in _admin_platform_ids():
        abort(404, description="That platform does not exist (or you do not administer it).")
    if not current_app.config["CASELOAD"].eager_tasks:
        enqueue(RECONCILE_ONEROSTER, platform_id, None, "admin")
        return _back(notice="queued")
    outcome = reconcile_oneroster.pull(get_session(), platform_id, trigger="admin")
    if outcome.status == "skipped":
        abort(409, description=outcome.error or "OneRoster is not configured for this platform.")
    return _back(notice="pulled" if outcome.ok else "pull_failed")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

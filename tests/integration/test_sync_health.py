"""The sync health page (/admin/sync): admin-only, what it shows, retry and "sync now"."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select  # noqa: E402

from lti_app.models import InboundEvent, RoleGrant, SyncRun  # noqa: E402
from tests.support import factories as f  # noqa: E402
from tests.support.nrps_platform import NrpsTestPlatform, make_tool_key, member  # noqa: E402

T0 = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _event(s, plat, n, status, last_error=None, minutes=0):
    e = InboundEvent(platform_id=plat.id, source="moodle", event_type="user_enrolment_created",
                     dedupe_key=f"{plat.id}-{n}", received_at=T0 + dt.timedelta(minutes=minutes),
                     event_time=T0 + dt.timedelta(minutes=minutes),
                     payload={"schema": "caseload.moodle-event/1", "event_uid": f"uid-{plat.id}-{n}",
                              "event_name": "\\core\\event\\user_enrolment_created",
                              "event_time": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
                              "course": {"id": "4242"}, "user": {"id": str(n)},
                              "enrolment": {"status": "active", "roles": ["student"]}},
                     status=status, attempts=5 if status == "failed" else 1, last_error=last_error)
    s.add(e)
    s.flush()
    return e


@pytest.fixture
def world(db_session):
    plat = f.platform(db_session, name="moodle-district", lms="moodle")
    other = f.platform(db_session, name="canvas-district", lms="canvas")
    admin = f.person(db_session, plat, name="Marlo Vance", kind="staff")
    teacher = f.person(db_session, plat, name="Rowan Ellery", kind="staff")
    course = f.course(db_session, plat, title="Algebra I", lti_context_id="ctx-1", nrps_url="http://127.0.0.1:9/nrps")
    for i, status in enumerate(["applied", "applied", "applied", "pending", "waiting", "ignored"]):
        _event(db_session, plat, i, status, minutes=i)
    parked = _event(db_session, plat, 10, "failed", last_error="Unknown course 4242: waiting for a launch", minutes=20)
    other_parked = _event(db_session, other, 11, "failed", last_error="bad signature")
    db_session.add(SyncRun(platform_id=plat.id, course_id=course.id, kind="nrps", trigger="schedule",
                           started_at=T0, finished_at=T0, status="ok", added=12, updated=3, removed=2))
    db_session.commit()
    return {"platform": plat, "other": other, "admin": admin, "teacher": teacher, "course": course,
            "parked": parked, "other_parked": other_parked}


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_sync_health_needs_a_launch_and_an_admin(client, world, token_for):
    assert client.get("/admin/sync").status_code == 401
    teacher = token_for(world["teacher"], roles=("teacher",))
    resp = client.get("/admin/sync", query_string={"t": teacher})
    assert resp.status_code == 403
    assert "administrator" in resp.get_data(as_text=True)


def test_admin_sees_event_counts_last_event_last_reconciliation_and_parked_events(client, world, token_for):
    resp = client.get("/admin/sync", query_string={"t": token_for(world["admin"], roles=("admin",))})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<dt>Events applied</dt><dd>3</dd>" in html
    assert "<dt>Waiting</dt><dd>2</dd>" in html
    assert '<span class="badge badge-danger">1</span>' in html  # parked
    # Last event received (the parked one, 20 minutes after T0), in district time: 09:50 UTC is 03:50 in Chicago.
    assert "Nov 20, 2026, 3:50 AM CST" in html
    assert "+12 · ~3 · −2" in html
    assert "Unknown course 4242: waiting for a launch" in html
    assert f"/admin/sync/events/{world['parked'].id}/retry" in html
    assert "bad signature" not in html  # another platform's event: not this admin's
    assert "canvas-district" not in html
    assert "never a student" in html  # the why block


def test_district_admin_sees_every_platform(client, db_session, world, token_for):
    db_session.add(RoleGrant(person_id=world["admin"].id, role="district_admin"))
    db_session.commit()
    html = client.get("/admin/sync", query_string={"t": token_for(world["admin"], roles=("teacher",))}).get_data(
        as_text=True)
    assert "canvas-district" in html and "bad signature" in html


def test_retry_button_requeues_a_parked_event(client, db_session, world, token_for):
    token = token_for(world["admin"], roles=("admin",))
    page = client.get("/admin/sync", query_string={"t": token}).get_data(as_text=True)
    event_id = world["parked"].id

    resp = client.post(f"/admin/sync/events/{event_id}/retry", data={"t": token, "csrf_token": _csrf(page)})

    assert resp.status_code == 303
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["notice"] == ["retried"]
    db_session.expire_all()
    event = db_session.get(InboundEvent, event_id)
    # Re-queued and tried again at once: the course is still unknown, so it waits for its next retry.
    assert (event.status, event.attempts) == ("waiting", 1)


def test_retry_without_csrf_token_is_refused(client, db_session, world, token_for):
    token = token_for(world["admin"], roles=("admin",))
    resp = client.post(f"/admin/sync/events/{world['parked'].id}/retry", data={"t": token})
    assert resp.status_code == 400
    db_session.expire_all()
    assert db_session.get(InboundEvent, world["parked"].id).status == "failed"


def test_admin_cannot_retry_another_platforms_event(client, world, token_for):
    token = token_for(world["admin"], roles=("admin",))
    page = client.get("/admin/sync", query_string={"t": token}).get_data(as_text=True)
    resp = client.post(f"/admin/sync/events/{world['other_parked'].id}/retry",
                       data={"t": token, "csrf_token": _csrf(page)})
    assert resp.status_code == 404


def test_sync_now_reconciles_the_course_and_reports_the_diff(client, db_session, world, token_for):
    jwks = make_tool_key(db_session)
    with NrpsTestPlatform(world["platform"].client_id, jwks) as lms:
        world["platform"].auth_token_url = lms.token_url
        world["course"].nrps_url = lms.nrps_url("ctx-1")
        db_session.commit()
        lms.set_members("ctx-1", [member("s1"), member("s2"), member("t1", ["Instructor"])])
        token = token_for(world["admin"], roles=("admin",))
        page = client.get("/admin/sync", query_string={"t": token}).get_data(as_text=True)
        resp = client.post(f"/admin/sync/courses/{world['course'].id}/sync",
                           data={"t": token, "csrf_token": _csrf(page)})
    assert resp.status_code == 303
    follow = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "The roster sync finished. 3 added, 0 updated, 0 removed." in follow
    run = db_session.scalars(select(SyncRun).where(SyncRun.trigger == "admin")).one()
    assert (run.status, run.added) == ("ok", 3)

"""Issue #14, items 2-4 through HTTP: the administration entry and the webhook set-up an LMS administrator needs,
roles and tenancy, and the access gaps found by trying every role against every record."""

from __future__ import annotations

import datetime as dt
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.models import AccessEvent, Acknowledgement, AdminEvent, CaseNote, Plan, RoleGrant
from tests.support import admin_world
from tests.support import factories as f


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    return admin_world.build(db_session)


def _text(resp: Any) -> str:
    return " ".join(unescape(resp.get_data(as_text=True)).split())


def _post(client: Any, app: Any, path: str, token: str, **data: Any) -> Any:
    return client.post(path, data={"t": token, "csrf_token": admin_world.csrf_for(app, token), **data})


def _events(db_session: Any, actor: Any, action: str | None = None) -> list[AccessEvent]:
    db_session.expire_all()
    stmt = select(AccessEvent).where(AccessEvent.actor_id == actor.id).order_by(AccessEvent.id)
    if action:
        stmt = stmt.where(AccessEvent.action == action)
    return list(db_session.scalars(stmt))


# ------------------------------------------------------------------------------------ administration entry
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_a_moodle_site_admin_in_an_activity_reaches_administration_from_the_header(client, world, token_for):
    # Moodle sends a site administrator Instructor + Administrator from an activity: they land on the course panel.
    token = token_for(world["lms_admin"], course=world["algebra"], roles=("admin", "teacher"))
    admin_card = client.get(f"/panels/student/{world['ava'].id}", query_string={"t": token}).get_data(as_text=True)
    assert '>Administration</a>' in admin_card and 'href="/admin/?t=' in admin_card
    assert client.get("/admin/", query_string={"t": token}).status_code == 200
    teacher_card = client.get(f"/panels/student/{world['ava'].id}",
                              query_string={"t": token_for(world["teacher"], course=world["algebra"])})
    assert teacher_card.status_code == 200 and ">Administration</a>" not in teacher_card.get_data(as_text=True)
    school_admin = client.get("/panels/questions", query_string={"t": token_for(world["school_admin"])})
    assert ">Administration</a>" in school_admin.get_data(as_text=True)


# ------------------------------------------------------------------------------ webhook URL and secret
def test_platform_admin_sees_the_webhook_url_and_makes_a_new_secret_shown_once(app, client, db_session, world,
                                                                              token_for):
    token = token_for(world["lms_admin"], roles=("admin",))
    home = _text(client.get("/admin/", query_string={"t": token}))
    assert "http://127.0.0.1:5000/webhooks/moodle/moodle-district" in home
    assert "none yet" in home and "New webhook secret" in home
    resp = _post(client, app, f"/admin/platforms/{world['platform'].id}/webhook-secret", token)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    secret = unescape(resp.get_data(as_text=True)).split('id="webhook-secret" class="registration-url" type="text" '
                                                         'readonly value="', 1)[1].split('"', 1)[0]
    db_session.expire_all()
    stored = db_session.get(type(world["platform"]), world["platform"].id).webhook_secret_encrypted
    assert len(secret) >= 24 and cipher().decrypt(stored) == secret and secret.encode() not in stored
    assert secret not in _text(client.get("/admin/", query_string={"t": token}))  # never shown again
    event = db_session.scalars(select(AdminEvent).where(AdminEvent.action == "platform.webhook_secret")).one()
    assert event.actor_id == world["lms_admin"].id and secret not in event.summary


def test_another_platforms_admin_and_school_admins_cannot_rotate_a_secret(app, client, db_session, world, token_for):
    other_admin = f.person(db_session, world["other"], "Quill Harrow", kind="staff")
    db_session.commit()
    for token in (token_for(other_admin, roles=("admin",)), token_for(world["school_admin"], roles=("teacher",))):
        resp = _post(client, app, f"/admin/platforms/{world['platform'].id}/webhook-secret", token)
        assert resp.status_code == 404
    db_session.expire_all()
    assert db_session.get(type(world["platform"]), world["platform"].id).webhook_secret_encrypted is None


# ------------------------------------------------------------------------------------- roles and tenancy
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_an_lms_admin_of_another_platform_cannot_open_this_platforms_student(client, db_session, world, token_for):
    other_admin = f.person(db_session, world["other"], "Quill Harrow", kind="staff")
    db_session.commit()
    resp = client.get(f"/panels/student/{world['ava'].id}", query_string={"t": token_for(other_admin,
                                                                                       roles=("admin",))})
    assert resp.status_code == 404
    (event,) = _events(db_session, other_admin)
    assert not event.allowed and "another platform" in event.basis
    # The same platform's LMS admin, and a district admin of any platform, open it.
    assert client.get(f"/panels/student/{world['ava'].id}",
                      query_string={"t": token_for(world["lms_admin"], roles=("admin",))}).status_code == 200
    world["other_staff"].kind = "staff"
    db_session.add(RoleGrant(person_id=world["other_staff"].id, role="district_admin"))
    db_session.commit()
    assert client.get(f"/panels/student/{world['ava'].id}",
                      query_string={"t": token_for(world["other_staff"], roles=("staff",))}).status_code == 200


def test_student_search_of_a_platform_admin_lists_only_their_platforms_students(client, db_session, world, token_for):
    from lti_app.models import Student

    db_session.add(Student(sis_id="S-9", given_name="Ava", family_name="Remote"))
    other_person = f.person(db_session, world["other"], "Ava Remote", sis_id="S-9")
    db_session.commit()
    assert other_person.id
    lms = _text(client.get("/admin/students", query_string={"t": token_for(world["lms_admin"], roles=("admin",)),
                                                            "q": "ava"}))
    assert "Quinlan" in lms and "Remote" not in lms
    district = _text(client.get("/admin/students", query_string={
        "t": token_for(world["district_admin"], roles=("teacher",)), "q": "ava"}))
    assert "Quinlan" in district and "Remote" in district


def test_course_level_administrator_is_course_staff_not_an_lms_admin(client, world, token_for):
    token = token_for(world["teacher2"], roles=("staff",))  # membership#Administrator maps to staff
    assert client.get("/admin/", query_string={"t": token}).status_code == 403
    assert client.get(f"/panels/student/{world['ava'].id}", query_string={"t": token}).status_code == 404


# --------------------------------------------------------------------------------------- questions queue
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_questions_follow_the_students_current_case_manager_and_every_read_is_checked(app, client, db_session,
                                                                                      world, token_for):
    cm, cm2 = world["cm"], f.person(db_session, world["platform"], "Orla Fenwick", kind="staff")
    db_session.add(RoleGrant(person_id=cm2.id, role="case_manager"))
    db_session.commit()
    question_text = "Does the reader apply to homework quizzes?"
    assert question_text in _text(client.get("/panels/questions", query_string={"t": token_for(cm)}))
    (seen,) = _events(db_session, cm)
    assert seen.allowed and seen.basis == "caseload (case manager)"
    # The student is reassigned: the open question moves with them.
    plan = db_session.get(Plan, world["plan"].id)
    plan.case_manager_id = cm2.id
    db_session.commit()
    assert question_text not in _text(client.get("/panels/questions", query_string={"t": token_for(cm)}))
    assert question_text in _text(client.get("/panels/questions", query_string={"t": token_for(cm2)}))
    question_id = db_session.scalars(select(AccessEvent.context).where(AccessEvent.actor_id == cm2.id)).first()
    assert question_id.startswith("questions queue: question ")
    qid = int(question_id.rsplit(" ", 1)[1])
    assert _post(client, app, f"/panels/questions/{qid}/answer", token_for(cm), body="Yes").status_code == 404
    assert _post(client, app, f"/panels/questions/{qid}/answer", token_for(cm2), body="Yes, always.").status_code == 303


def test_a_revoked_case_manager_grant_hides_the_queue_and_logs_refusals(client, db_session, world, token_for):
    grant = db_session.scalars(select(RoleGrant).where(RoleGrant.person_id == world["cm"].id)).one()
    grant.revoked_at = dt.datetime.now(dt.UTC)
    db_session.commit()
    html = _text(client.get("/panels/questions", query_string={"t": token_for(world["cm"])}))
    assert "Does the reader apply" not in html
    (event,) = _events(db_session, world["cm"])
    assert not event.allowed and "without an active case manager grant" in event.basis


# ------------------------------------------------------------------------------------------ acknowledgements
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_acknowledgement_for_a_section_the_teacher_does_not_teach_is_refused_and_logged(app, client, db_session,
                                                                                        world, token_for):
    p2 = f.section(db_session, world["algebra"], "102", "Period 2")
    db_session.commit()
    token = token_for(world["teacher"], course=world["algebra"])
    before = db_session.scalars(select(Acknowledgement)).all()
    resp = _post(client, app, "/panels/ack", token, item=f"{world['ava'].id}:{world['v2'].id}:{p2.id}")
    assert resp.status_code == 403 and "section where you teach the student" in _text(resp)
    refused = _events(db_session, world["teacher"], "acknowledge")[-1]
    assert not refused.allowed and f"not in section {p2.id}" in refused.basis
    db_session.expire_all()
    assert len(db_session.scalars(select(Acknowledgement)).all()) == len(before)
    p1 = world["algebra"].sections[0] if world["algebra"].sections[0].lms_section_id == "101" else \
        next(s for s in world["algebra"].sections if s.lms_section_id == "101")
    ok = _post(client, app, "/panels/ack", token, item=f"{world['ava'].id}:{world['v2'].id}:{p1.id}")
    assert ok.status_code == 303


@pytest.mark.parametrize("item", ["99999999999:1:1", "1:99999999999999999999:1", "1:1:-3", "1:²:1", "1:2",
                                  "a:b:c"])
def test_acknowledgement_ids_out_of_range_or_malformed_are_a_400_never_a_500(app, client, world, token_for, item):
    resp = _post(client, app, "/panels/ack", token_for(world["teacher"], course=world["algebra"]), item=item)
    assert resp.status_code == 400, _text(resp)


def test_acknowledgement_of_an_unknown_student_or_version_is_a_4xx(app, client, world, token_for):
    token = token_for(world["teacher"], course=world["algebra"])
    section = next(s for s in world["algebra"].sections if s.lms_section_id == "101")
    assert _post(client, app, "/panels/ack", token, item=f"987654:{world['v2'].id}:{section.id}").status_code == 404
    assert _post(client, app, "/panels/ack", token, item=f"{world['ava'].id}:987654:{section.id}").status_code == 409


# --------------------------------------------------------------------------------------------- note tiers
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_a_teacher_writes_notes_only_in_a_tier_they_can_read_back(app, client, db_session, world, token_for):
    token = token_for(world["teacher"], course=world["algebra"])
    form = {"note_type": "observation", "recorded_on": clock.today().isoformat(), "body": "Used the reader today."}
    page = client.get(f"/panels/student/{world['ava'].id}", query_string={"t": token}).get_data(as_text=True)
    assert 'value="case_team"' not in page.split('id="visibility"', 1)[1].split("</select>", 1)[0]
    for tier, words in (("case_team", "You can only write notes you can read back: choose team"),
                        ("restricted", "Only staff allowed to see restricted notes can write one")):
        resp = _post(client, app, f"/panels/student/{world['ava'].id}/notes", token, visibility=tier, **form)
        assert resp.status_code == 422 and words in _text(resp), tier
    assert _post(client, app, f"/panels/student/{world['ava'].id}/notes", token, visibility="team",
                 **form).status_code == 303
    db_session.expire_all()
    mine = db_session.scalars(select(CaseNote).where(CaseNote.author_id == world["teacher"].id)).all()
    assert [n.visibility for n in mine] == ["team"]
    # The case manager (tiers team and case team) may still write a case-team note.
    cm = token_for(world["cm"])
    assert _post(client, app, f"/panels/student/{world['ava'].id}/notes", cm, visibility="case_team",
                 **form).status_code == 303


# ------------------------------------------------------------------------ Dynamic Registration result (Moodle)
def test_moodle_registration_result_shows_the_webhook_url_and_secret_once_and_stays_open(client, db_session):
    import threading
    from http.server import ThreadingHTTPServer

    from lti_app.models import Platform
    from lti_app.services.platforms.dynamic_registration import create_invite
    from tests.integration.test_dynamic_registration import _config_url, _Handler  # the recorded-shape Moodle stub

    srv: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.posted, srv.issuer = [], None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        invite, _ = create_invite(db_session, hours=1, label="district Moodle")
        db_session.commit()
        from tests.integration.test_dynamic_registration import TOKEN

        resp = client.get("/lti/register", query_string={"invite": invite, "openid_configuration": _config_url(srv),
                                                          "registration_token": TOKEN})
    finally:
        srv.shutdown()
        srv.server_close()
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    html = unescape(resp.get_data(as_text=True))
    platform = db_session.scalars(select(Platform)).one()
    assert f"http://127.0.0.1:5000/webhooks/moodle/{platform.name}" in html
    secret = html.split('id="webhook-secret" class="registration-url" type="text" readonly value="', 1)[1].split('"')[0]
    assert cipher().decrypt(platform.webhook_secret_encrypted) == secret
    assert "data-keep-open" in html  # the frame waits for Close, so the secret can be copied
    assert "New webhook secret" in html  # where to come back to


def test_caseload_home_lists_nothing_and_logs_nothing_once_the_case_manager_grant_is_revoked(client, db_session,
                                                                                            world, token_for):
    cm = world["cm"]
    db_session.add(RoleGrant(person_id=cm.id, role="counselor"))  # still support staff: the page opens
    db_session.commit()
    assert "Ava Quinlan" in _text(client.get("/casework/", query_string={"t": token_for(cm)}))
    grant = db_session.scalars(select(RoleGrant).where(RoleGrant.person_id == cm.id,
                                                       RoleGrant.role == "case_manager")).one()
    grant.revoked_at = dt.datetime.now(dt.UTC)
    db_session.commit()
    before = len(_events(db_session, cm))
    html = _text(client.get("/casework/", query_string={"t": token_for(cm)}))
    assert "Ava Quinlan" not in html
    assert len(_events(db_session, cm)) == before  # no "caseload (case manager)" row for a revoked grant

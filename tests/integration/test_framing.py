"""Issue #14 item 1: Caseload is framable by the LMS page that really hosts it (Canvas: the district's host, not the
issuer), learned only from trusted sources; unknown origins stay refused. PostgreSQL and SQLite."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from lti_app.cli import main
from lti_app.models import AdminEvent, PlatformFrameOrigin
from tests.integration.test_dynamic_registration import TOKEN, _config_url, invite, platform_server  # noqa: F401
from tests.support import admin_world
from tests.support.lti_platform import CLAIM, new_rsa_key

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
DISTRICT = "https://district.instructure.test"


def _ancestors(resp) -> list[str]:
    csp = resp.headers["Content-Security-Policy"]
    return re.search(r"frame-ancestors ([^;]+)", csp).group(1).split()


def _stored(db_session) -> dict[str, str]:
    db_session.expire_all()
    return {o.origin: o.source for o in db_session.scalars(select(PlatformFrameOrigin))}


def _presentation(return_url: str) -> dict:
    return {CLAIM + "launch_presentation": {"document_target": "iframe", "return_url": return_url}}


@BOTH
def test_validated_launch_teaches_the_return_url_origin_and_its_pages_are_framable_by_it(client, lms, db_session):
    assert DISTRICT not in _ancestors(client.get("/lti/"))  # unknown: refused
    resp = lms.launch(client, **_presentation(DISTRICT + "/courses/7/external_tools/3"))
    assert resp.status_code == 303
    assert _stored(db_session) == {DISTRICT: "launch"}
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and DISTRICT in _ancestors(page)
    assert DISTRICT in _ancestors(client.get("/lti/"))  # every process learns it (cache invalidated here)
    assert "https://elsewhere.example.test" not in _ancestors(page)


@BOTH
def test_canvas_launch_learns_the_district_host_from_the_api_domain_custom_field(client, lms, db_session):
    from lti_app.models import Platform

    db_session.scalars(select(Platform)).one().lms = "canvas"
    db_session.commit()
    resp = lms.launch(client, **{CLAIM + "custom": {"canvas_api_domain": "District.Instructure.test",
                                                    "canvas_course_id": "$Canvas.course.id"}})
    assert resp.status_code == 303
    assert _stored(db_session) == {DISTRICT: "launch"}


def test_unsubstituted_or_malformed_origins_teach_nothing(client, lms, db_session):
    from lti_app.models import Platform

    db_session.scalars(select(Platform)).one().lms = "canvas"
    db_session.commit()
    resp = lms.launch(client, **{CLAIM + "custom": {"canvas_api_domain": "$Canvas.api.domain"},
                                 CLAIM + "launch_presentation": {"return_url": "javascript:alert(1)"}})
    assert resp.status_code == 303
    assert _stored(db_session) == {}


def test_a_refused_launch_teaches_no_origin(client, lms, db_session):
    login = lms.start_login(client)
    forged = lms.sign(lms.claims(login["nonce"], **_presentation("https://attacker.example.test/")),
                      key_pem=new_rsa_key()[1])
    resp = client.post("/lti/launch", data={"id_token": forged, "state": login["state"]})
    assert resp.status_code in (400, 401, 403)
    assert _stored(db_session) == {}
    assert "https://attacker.example.test" not in _ancestors(resp)


def _login(client, lms, referer: str | None):
    headers = {"Referer": referer} if referer else {}
    return client.get("/lti/login", headers=headers, query_string={
        "iss": lms.issuer, "login_hint": "x", "target_link_uri": lms.tool_launch_url, "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id, "lti_storage_target": "_parent"})


@BOTH
def test_login_storage_page_is_served_only_to_a_page_origin_the_platform_is_known_to_use(client, lms, db_session):
    # Before any id_token: an unknown page origin gets no HTML page (it could not be framed); the login redirects at
    # once so that a browser keeping the state cookie can still launch and teach the origin.
    unknown = _login(client, lms, DISTRICT + "/courses/7")
    assert unknown.status_code == 302 and unknown.headers["Location"].startswith(lms.issuer + "/auth?")
    lms.launch(client, **_presentation(DISTRICT + "/courses/7"))
    known = _login(client, lms, DISTRICT + "/courses/7")
    html = known.get_data(as_text=True)
    assert known.status_code == 200 and f'data-origins="{DISTRICT}"' in html
    assert DISTRICT in _ancestors(known)
    assert known.headers["Cache-Control"] == "no-store"


def test_storage_launch_check_posts_to_every_origin_the_platform_is_known_to_use(client, lms, db_session):
    lms.launch(client, **_presentation(DISTRICT + "/courses/7"))
    login = lms.start_login(client, lti_storage_target="_parent")
    client._cookies.clear()
    token = lms.sign(lms.claims(login["nonce"]))
    check = client.post("/lti/launch", data={"id_token": token, "state": login["state"], "lti_storage_target": "_parent"})
    origins = re.search(r'data-origins="([^"]*)"', check.get_data(as_text=True)).group(1).split()
    assert set(origins) == {lms.issuer, DISTRICT}


def test_registration_records_the_registering_page_origin(client, db_session, platform_server, invite):  # noqa: F811
    resp = client.get(
        "/lti/register", headers={"Referer": "https://moodle.district.example.test/admin/settings.php?section=x"},
        query_string={"invite": invite, "openid_configuration": _config_url(platform_server),
                      "registration_token": TOKEN})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert _stored(db_session) == {"https://moodle.district.example.test": "registration"}
    assert "https://moodle.district.example.test" in _ancestors(resp)


def test_refused_registration_link_is_not_framed_by_its_referer(client, db_session):
    resp = client.get("/lti/register", headers={"Referer": "https://evil.example.test/"},
                      query_string={"invite": "not-a-real-invite", "openid_configuration": "https://x.test/"})
    assert resp.status_code == 403
    assert "https://evil.example.test" not in _ancestors(resp)
    assert _stored(db_session) == {}


@BOTH
def test_cli_adds_lists_and_removes_framing_origins(runner, lms, db_session):
    add = runner.invoke(main, ["platform", "frame-origin", "add", "--name", "testlms", "HTTPS://District.Instructure.test/"])
    assert add.exit_code == 0, add.output
    listed = runner.invoke(main, ["platform", "frame-origin", "list", "--name", "testlms", "--json"])
    rows = {r["origin"]: r["source"] for r in json.loads(listed.output)}
    assert rows == {lms.issuer: "issuer", DISTRICT: "admin"}
    assert db_session.scalars(select(AdminEvent.action)).all() == ["platform.frame_origin.add"]
    for bad in ("https://*.instructure.test", "district.instructure.test", "https://x.test/path", "ftp://x.test"):
        refused = runner.invoke(main, ["platform", "frame-origin", "add", "--name", "testlms", bad])
        assert refused.exit_code != 0 and "is not an origin" in refused.output, bad
    issuer = runner.invoke(main, ["platform", "frame-origin", "remove", "--name", "testlms", lms.issuer])
    assert issuer.exit_code != 0 and "always allowed" in issuer.output
    removed = runner.invoke(main, ["platform", "frame-origin", "remove", "--name", "testlms", DISTRICT])
    assert removed.exit_code == 0, removed.output
    assert _stored(db_session) == {}
    unknown = runner.invoke(main, ["platform", "frame-origin", "list", "--name", "nope"])
    assert unknown.exit_code != 0 and "No platform named" in unknown.output


@BOTH
def test_district_admin_sets_framing_origins_on_the_admin_page(client, db_session, token_for):
    world = admin_world.build(db_session)
    token = token_for(world["district_admin"], roles=("teacher",))
    csrf = admin_world.csrf_for(client.application, token)
    plat = world["platform"]
    resp = client.post(f"/admin/platforms/{plat.id}/frame-origins",
                       data={"t": token, "csrf_token": csrf, "change": "add", "origin": DISTRICT})
    assert resp.status_code == 303
    assert _stored(db_session) == {DISTRICT: "admin"}
    home = unescape(client.get("/admin/", query_string={"t": token}).get_data(as_text=True))
    assert DISTRICT in home and "added by an administrator" in home
    bad = client.post(f"/admin/platforms/{plat.id}/frame-origins",
                      data={"t": token, "csrf_token": csrf, "change": "add", "origin": "https://*.evil.test"})
    assert bad.status_code == 422 and "is not an origin" in unescape(bad.get_data(as_text=True))
    resp = client.post(f"/admin/platforms/{plat.id}/frame-origins",
                       data={"t": token, "csrf_token": csrf, "change": "remove", "origin": DISTRICT})
    assert resp.status_code == 303 and _stored(db_session) == {}


def test_only_district_admins_change_framing_origins(client, db_session, token_for):
    world = admin_world.build(db_session)
    token = token_for(world["lms_admin"], roles=("admin",))
    csrf = admin_world.csrf_for(client.application, token)
    resp = client.post(f"/admin/platforms/{world['platform'].id}/frame-origins",
                       data={"t": token, "csrf_token": csrf, "change": "add", "origin": DISTRICT})
    assert resp.status_code == 403 and _stored(db_session) == {}

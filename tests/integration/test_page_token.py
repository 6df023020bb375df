"""Issue #14 item 5: a URL alone opens no record (the page token is bound to the launching browser), tokens stop at
an absolute lifetime, headers keep tokens out of Referer and caches, logs carry no token or PII, and the development
secret is not served beyond this machine. PostgreSQL and SQLite."""

from __future__ import annotations

import logging
import re
import time
from html import unescape

import pytest
from sqlalchemy.exc import IntegrityError

from lti_app.auth import STORAGE_MODE, bind, read_token
from tests.conftest import test_settings as settings_for
from tests.support import admin_world
from tests.support import factories as f

BOTH = pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
STORAGE_SECRET = "storage-binding-secret-" + "s" * 20


@pytest.fixture
def world(db_session):
    return admin_world.build(db_session)


def _text(resp) -> str:
    return " ".join(unescape(resp.get_data(as_text=True)).split())


def _panel_url(token: str) -> str:
    return f"/panels/course?t={token}"


@BOTH
def test_a_copied_page_url_opened_in_another_browser_is_refused_with_a_readable_page(app, client, world, token_for):
    token = token_for(world["teacher"], world["algebra"])
    mine = client.get(_panel_url(token))
    assert mine.status_code == 200 and "Ava Quinlan" in _text(mine)
    elsewhere = app.test_client().get(_panel_url(token))  # another browser: no binding cookie
    assert elsewhere.status_code == 401
    assert "Open Caseload again from your course" in _text(elsewhere) and "Ava" not in _text(elsewhere)
    forged = app.test_client()
    with app.test_request_context():
        from lti_app.auth import binding_cookie_name

        forged.set_cookie(binding_cookie_name(), "another-browser-secret-" + "z" * 20)
    assert forged.get(_panel_url(token)).status_code == 401


def test_a_token_without_a_browser_binding_is_refused(client, world, token_for):
    resp = client.get(_panel_url(token_for(world["teacher"], world["algebra"], binding="")))
    assert resp.status_code == 401 and "Ava" not in _text(resp)


@BOTH
def test_renewed_tokens_keep_the_launch_time_and_stop_at_the_absolute_lifetime(app, client, world, token_for):
    max_age = app.config["CASELOAD"].app_token_max_age
    launched = int(time.time()) - max_age + 60
    page = client.get(_panel_url(token_for(world["teacher"], world["algebra"], launched_at=launched)))
    assert page.status_code == 200
    renewed = re.search(r"[?&]t=([^&\"#]+)", page.get_data(as_text=True)).group(1)
    with app.test_request_context():
        assert read_token(unescape(renewed)).launched_at == launched  # renewal does not move the launch time
    late = client.get(_panel_url(token_for(world["teacher"], world["algebra"], launched_at=launched - 61)))
    assert late.status_code == 401
    assert f"more than {max_age / 3600:g} hours ago" in _text(late) and "Ava" not in _text(late)


def test_absolute_lifetime_setting_is_bounded_to_half_a_day():
    from lti_app.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="APP_TOKEN_MAX_AGE"):
        load_settings(environ={}, overrides={**settings_for("sqlite://"), "app_token_max_age": 86400})


def _storage_token(token_for, world):
    return token_for(world["teacher"], world["algebra"], binding=bind(STORAGE_MODE, STORAGE_SECRET),
                     storage_target="_parent", storage_origin="https://lms.example.test")


@BOTH
def test_platform_storage_binding_reads_the_secret_back_and_never_from_the_url(client, world, token_for):
    token = _storage_token(token_for, world)
    # A plain GET (a link, a copied URL) gets a page without any record that asks the LMS frame for the secret.
    unlock = client.get(_panel_url(token) + "&filter=x")
    html = unlock.get_data(as_text=True)
    assert unlock.status_code == 401 and 'data-mode="unlock"' in html and "Ava" not in html
    assert 'action="/panels/course?filter=x&amp;_caseload_replay=get"' in html
    assert 'data-origins="https://lms.example.test"' in html
    # The secret in the query string is not accepted.
    assert "Ava" not in _text(client.get(_panel_url(token) + f"&_b={STORAGE_SECRET}"))
    # The unlock page repeats the GET as a POST with the secret in its body: the page opens.
    replay = client.post("/panels/course?_caseload_replay=get", data={"t": token, "_b": STORAGE_SECRET})
    assert replay.status_code == 200 and "Ava Quinlan" in _text(replay)
    wrong = client.post("/panels/course?_caseload_replay=get", data={"t": token, "_b": "wrong-secret-" + "w" * 30})
    assert wrong.status_code == 401 and "Ava" not in _text(wrong)


def test_platform_storage_binding_repeats_a_form_post_with_its_fields(app, client, world, token_for):
    token = _storage_token(token_for, world)
    csrf = admin_world.csrf_for(app, token)
    unlock = client.post(f"/panels/student/{world['ava'].id}/notes", data={"t": token, "csrf_token": csrf,
                                                                           "body": "Quiet room <b>used</b>"})
    html = unlock.get_data(as_text=True)
    assert unlock.status_code == 401 and 'data-mode="unlock"' in html
    assert f'action="/panels/student/{world["ava"].id}/notes"' in html
    assert 'name="body" value="Quiet room &lt;b&gt;used&lt;/b&gt;"' in html  # escaped, repeated with the secret


@BOTH
def test_pages_send_no_referrer_and_are_not_stored(client, lms, world, token_for):
    page = client.get(_panel_url(token_for(world["teacher"], world["algebra"])))
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    login = client.get("/lti/login", query_string={"iss": lms.issuer, "login_hint": "x",
                                                   "target_link_uri": lms.tool_launch_url})
    assert login.headers["Cache-Control"] == "no-store" and login.headers["Referrer-Policy"] == "no-referrer"
    launch = lms.launch(client)
    assert launch.headers["Cache-Control"] == "no-store"
    static = client.get("/static/caseload.css")
    assert static.headers["Referrer-Policy"] == "no-referrer" and static.headers.get("Cache-Control") != "no-store"


@BOTH
def test_database_errors_do_not_carry_the_values_bound_to_them(db_session):
    plat = f.platform(db_session, name="district-one")
    db_session.commit()
    f.person(db_session, plat, "Quill Marrowby", email="q.marrowby@example.org")
    db_session.flush()
    from lti_app.models import Platform

    db_session.add(Platform(name="district-one", lms="moodle", issuer="https://private-issuer.example.test",
                            client_id="c", auth_login_url="x", auth_token_url="x", keyset_url="x"))
    with pytest.raises(IntegrityError) as caught:
        db_session.flush()
    db_session.rollback()
    assert "private-issuer" not in str(caught.value) and "hidden" in str(caught.value).lower()


def test_a_launch_and_its_pages_log_no_token_id_token_name_or_email(client, lms, caplog):
    caplog.set_level(logging.DEBUG)
    login = lms.start_login(client)
    id_token = lms.sign(lms.claims(login["nonce"]))
    launch = client.post("/lti/launch", data={"id_token": id_token, "state": login["state"]})
    page = client.get(launch.headers["Location"])
    assert page.status_code == 200
    token = launch.headers["Location"].split("t=", 1)[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records  # the launch is logged, by internal ids
    for secret in (token, id_token, login["state"], "Rowan", "Ellery", "rowan@example.test"):
        assert secret not in text


def test_development_server_request_lines_lose_their_query_string():
    from lti_app.security import QueryStringRedactor

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - "%s" %s -',
                               ("127.0.0.1", "GET /panels/course?t=eyJwZXJzb24.abc&x=1 HTTP/1.1", 200), None)
    QueryStringRedactor().filter(record)
    assert record.getMessage() == '127.0.0.1 - - "GET /panels/course?[query omitted] HTTP/1.1" 200 -'


def test_the_development_secret_is_refused_for_a_public_base_url(database_url):
    from lti_app import create_app
    from lti_app.settings import SettingsError

    with pytest.raises(SettingsError, match="development secret"):
        create_app({**settings_for(database_url), "env": "dev", "secret_key": "",
                    "base_url": "https://caseload.district.example.org"})


def test_the_development_secret_answers_only_this_machine(database_url):
    from lti_app import create_app

    app = create_app({**settings_for(database_url), "env": "dev", "secret_key": ""})
    try:
        remote = app.test_client().get("/lti/", environ_base={"REMOTE_ADDR": "10.20.30.40"})
        assert remote.status_code == 503 and "CASELOAD_SECRET_KEY" in _text(remote)
        # `caseload run --host 0.0.0.0`: the development server names its bind address in SERVER_NAME.
        wildcard = app.test_client().get("/lti/", base_url="http://0.0.0.0:5000/",
                                         environ_base={"SERVER_SOFTWARE": "Werkzeug/3.1"})
        assert wildcard.status_code == 503
        assert app.test_client().get("/lti/").status_code == 200
    finally:
        app.extensions["caseload.engine"].dispose()


def test_gunicorn_refuses_a_public_bind_with_the_development_secret(monkeypatch):
    import importlib.util
    import pathlib

    from lti_app.settings import SettingsError

    spec = importlib.util.spec_from_file_location("gconf", pathlib.Path(__file__).parents[2] / "config/gunicorn.conf.py")
    gconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gconf)
    monkeypatch.delenv("CASELOAD_SECRET_KEY", raising=False)
    monkeypatch.setenv("CASELOAD_ENV", "dev")
    server = type("S", (), {"cfg": type("C", (), {"bind": ["0.0.0.0:8000"]})()})()
    with pytest.raises(SettingsError, match="development secret"):
        gconf.on_starting(server)
    server.cfg.bind = ["127.0.0.1:8000", "unix:/run/caseload.sock"]
    gconf.on_starting(server)

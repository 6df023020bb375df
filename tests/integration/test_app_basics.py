"""The app starts on both databases, answers /healthz, and refuses unlaunched pages readably."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_healthz_reports_database_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}


def test_unknown_page_is_a_readable_404_with_reference(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert "reference" in body
    assert "Traceback" not in body


def test_canvas_json_is_built_from_base_url(client):
    data = client.get("/lti/config/canvas.json").get_json()
    assert data["target_link_uri"] == "http://127.0.0.1:5000/lti/launch"


def test_no_flask_cookie_session_is_kept(app, client):
    """Pages carry app tokens, webhooks carry signatures: the Flask session is the null one, and writing to it fails
    instead of quietly starting a cookie (which an LMS frame may drop anyway)."""
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/"):
        assert isinstance(session._get_current_object(), NullSession)
        with pytest.raises(RuntimeError):
            session["viewer"] = 1
    resp = client.get("/healthz")
    assert "session=" not in resp.headers.get("Set-Cookie", "")

"""Origins as CSP frame-ancestors and the page-token binding's request replay, without a database."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest

from lti_app.auth import ReplayAsGet
from lti_app.services.platforms.framing import normalise_origin, origin_of_host, origin_of_url


@pytest.mark.parametrize(("value", "origin"), [
    ("https://District.Instructure.com", "https://district.instructure.com"),
    ("https://district.instructure.com/", "https://district.instructure.com"),
    ("https://district.instructure.com:443", "https://district.instructure.com"),
    ("http://localhost:5000", "http://localhost:5000"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_origins_are_normalised_as_csp_and_browsers_compare_them(value, origin):
    assert normalise_origin(value) == origin


@pytest.mark.parametrize("value", [
    "", "district.instructure.com", "https://*.instructure.com", "https://x.test/courses", "https://x.test?q=1",
    "javascript:alert(1)", "ftp://x.test", "https://user:pw@x.test", "https://x.test 'unsafe-inline'",
    "https://a.test,https://b.test", "https://x.test;", "https://x.test:99999",
])
def test_anything_but_a_plain_origin_is_refused(value):
    assert normalise_origin(value) is None


def test_url_and_host_forms():
    assert origin_of_url("https://district.instructure.com/courses/7/external_tools/3?x=1") == \
        "https://district.instructure.com"
    assert origin_of_url(None) is None
    assert origin_of_host("District.instructure.com") == "https://district.instructure.com"
    for bad in ("$Canvas.api.domain", "a.test/path", "user@a.test", "", "a_b.test", "-a.test"):
        assert origin_of_host(bad) is None, bad


def _call(app, environ):
    seen = {}

    def inner(env, start_response):
        seen.update(env)
        return [b""]

    app.wsgi_app = inner
    ReplayAsGet(inner, 10_000)(environ, lambda *a: None)
    return seen


def test_a_replayed_get_becomes_that_get_with_token_and_secret_out_of_the_url():
    body = urlencode({"t": "token-value", "_b": "secret-value"}).encode()
    env = {"REQUEST_METHOD": "POST", "QUERY_STRING": "filter=iep&_caseload_replay=get",
           "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}
    seen = _call(type("A", (), {})(), env)
    assert seen["REQUEST_METHOD"] == "GET" and seen["QUERY_STRING"] == "filter=iep"
    assert seen["caseload.token"] == "token-value" and seen["caseload.binding"] == "secret-value"
    assert "CONTENT_TYPE" not in seen and seen["wsgi.input"].read() == b""


def test_an_ordinary_post_is_left_alone():
    body = b"t=x&_b=y"
    env = {"REQUEST_METHOD": "POST", "QUERY_STRING": "x_caseload_replay=getter",
           "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}
    seen = _call(type("A", (), {})(), env)
    assert seen["REQUEST_METHOD"] == "POST" and "caseload.token" not in seen

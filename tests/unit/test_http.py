"""The HTTP wrapper: timeouts always set, 429/5xx retried with backoff, typed errors keep status and body."""

from __future__ import annotations

import pytest
import requests

from integrations.http import HttpClient, HttpStatusError, HttpTransportError, RateLimited


class FakeSession:
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        status, headers, body = outcome
        r = requests.Response()
        r.status_code = status
        r.headers.update(headers)
        r._content = body
        return r


def client(outcomes, **kw):
    sleeps = []
    c = HttpClient(session=FakeSession(outcomes), sleep=sleeps.append, **kw)
    return c, sleeps


def test_every_call_has_a_timeout():
    c, _ = client([(200, {}, b"{}")], timeout=3)
    c.get("https://lms.example.test/x")
    assert c._session.calls[0][2]["timeout"] == 3


def test_429_then_success_honours_retry_after():
    c, sleeps = client([(429, {"Retry-After": "2"}, b""), (200, {}, b'{"ok": true}')])
    assert c.get_json("https://lms.example.test/x") == {"ok": True}
    assert sleeps == [2.0]


def test_5xx_retried_then_typed_error_with_status_and_body():
    c, sleeps = client([(503, {}, b"")] * 3 + [(502, {}, b'{"error": "bad"}')], retries=3)
    with pytest.raises(HttpStatusError) as info:
        c.get("https://lms.example.test/x")
    assert info.value.status == 502 and info.value.body_json() == {"error": "bad"}
    assert len(sleeps) == 3


def test_4xx_is_not_retried():
    c, sleeps = client([(401, {}, b'{"error": "invalid_client"}')])
    with pytest.raises(HttpStatusError) as info:
        c.post("https://lms.example.test/token", data={})
    assert info.value.status == 401 and sleeps == []


def test_rate_limited_after_retries_is_its_own_type():
    c, _ = client([(429, {}, b"")] * 2, retries=1)
    with pytest.raises(RateLimited):
        c.get("https://lms.example.test/x")


def test_transport_error_has_no_status():
    c, _ = client([requests.ConnectionError("down")] * 2, retries=1)
    with pytest.raises(HttpTransportError) as info:
        c.get("https://lms.example.test/x")
    assert info.value.status is None


DEEP = b"[" * 50_000 + b"]" * 50_000  # deeper than Python's JSON parser recurses: RecursionError, not ValueError


def test_json_nested_too_deep_is_not_json_for_every_caller():
    c, _ = client([(200, {}, DEEP)])
    with pytest.raises(HttpStatusError, match="did not answer with JSON"):
        c.get_json("https://lms.example.test/x")
    c, _ = client([(502, {}, DEEP)], retries=0)
    with pytest.raises(HttpStatusError) as info:
        c.get("https://lms.example.test/x")
    assert info.value.body_json() is None

"""Client-credentials tokens with a signed JWT client assertion (1EdTech Security Framework §4.1)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.lti_token import (  # noqa: E402
    CLIENT_ASSERTION_TYPE,
    LtiTokenClient,
    SigningKey,
    TokenCache,
    TokenRequestError,
    build_client_assertion,
)
from tests.support.nrps_platform import FakeHttp, FakeResponse  # noqa: E402

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOKEN_URL = "https://lms.example.test/login/oauth2/token"


@pytest.fixture(scope="module")
def rsa_key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return private.public_key(), SigningKey(kid="kid-1", private_pem=pem)


def _ok(token="tok-1", expires_in=3600):
    return FakeResponse(200, json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                                         "scope": NRPS}))


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_client_assertion_claims_and_header(rsa_key):
    public, key = rsa_key
    assertion = build_client_assertion(client_id="10000000000001", audience=TOKEN_URL, key=key, now=1_700_000_000)
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256" and header["kid"] == "kid-1"
    claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=TOKEN_URL, options={"verify_exp": False})
    assert claims["iss"] == claims["sub"] == "10000000000001"
    assert claims["exp"] - claims["iat"] == 300 and claims["iat"] == 1_700_000_000
    other = build_client_assertion(client_id="10000000000001", audience=TOKEN_URL, key=key, now=1_700_000_000)
    assert jwt.decode(other, public, algorithms=["RS256"], audience=TOKEN_URL,
                      options={"verify_exp": False})["jti"] != claims["jti"]


def test_token_request_form_follows_the_security_framework(rsa_key):
    public, key = rsa_key
    http = FakeHttp([_ok()])
    client = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: key,
                            audience="https://canvas.instructure.com/login/oauth2/token")
    assert client.token([NRPS]) == "tok-1"
    method, url, _headers, form = http.calls[0]
    assert (method, url) == ("POST", TOKEN_URL)
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert form["scope"] == NRPS
    claims = jwt.decode(form["client_assertion"], public, algorithms=["RS256"],
                        audience="https://canvas.instructure.com/login/oauth2/token")
    assert claims["sub"] == "cid"
    assert parse_qs(f"scope={form['scope']}")["scope"] == [NRPS]


def test_token_is_cached_until_expiry_minus_margin(rsa_key):
    _public, key = rsa_key
    clock = Clock()
    http = FakeHttp([_ok("first", 600), _ok("second", 600)])
    client = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: key, clock=clock,
                            margin_seconds=60)
    assert client.token([NRPS]) == "first"
    clock.now += 539
    assert client.token([NRPS]) == "first"
    clock.now += 1  # 540 s: inside the last minute
    assert client.token([NRPS]) == "second"
    assert len(http.calls) == 2


def test_cache_is_shared_and_keyed_by_key_id_and_scopes(rsa_key):
    _public, key = rsa_key
    cache = TokenCache()
    http = FakeHttp([_ok("a"), _ok("b"), _ok("c")])
    one = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: key, cache=cache)
    two = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: key, cache=cache)
    assert one.token([NRPS]) == two.token([NRPS]) == "a"
    assert one.token([NRPS, "https://purl.imsglobal.org/spec/lti-ags/scope/score"]) == "b"
    rotated = SigningKey(kid="kid-2", private_pem=key.private_pem)
    three = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: rotated, cache=cache)
    assert three.token([NRPS]) == "c"
    assert one.token([NRPS], fresh=False) == "a"


@pytest.mark.parametrize(("status", "error", "words"), [
    (400, "invalid_scope", "Names and Role Provisioning scope"),
    (401, "invalid_client", "signed client assertion"),
    (400, "unsupported_grant_type", "HTTP 400, unsupported_grant_type"),
])
def test_refusals_are_explained(rsa_key, status, error, words):
    _public, key = rsa_key
    http = FakeHttp([FakeResponse(status, json.dumps({"error": error}))])
    client = LtiTokenClient(http, token_url=TOKEN_URL, client_id="cid", key_provider=lambda: key)
    with pytest.raises(TokenRequestError, match=words) as info:
        client.token([NRPS])
    assert info.value.error == error and info.value.status == status


def test_answer_without_access_token_is_an_error(rsa_key):
    _public, key = rsa_key
    client = LtiTokenClient(FakeHttp([FakeResponse(200, '{"token_type": "Bearer"}')]), token_url=TOKEN_URL,
                            client_id="cid", key_provider=lambda: key)
    with pytest.raises(TokenRequestError, match="without an access_token"):
        client.token([NRPS])

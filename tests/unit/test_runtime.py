"""The faster PyJWT segment decoder gives exactly the original's results."""

from __future__ import annotations

import random

import pytest
from jwt import api_jws
from jwt.exceptions import DecodeError

from lti_app.runtime import _fast_decode_base64url_segment, speed_up_jwt_decoding

# PyJWT's own decoder, whether or not an app created earlier in this process already replaced it.
ORIGINAL = getattr(api_jws, "_caseload_original_segment_decoder",
                   api_jws.PyJWS.__dict__["_decode_base64url_segment"].__func__)


def _outcome(fn, segment: bytes):
    try:
        return ("ok", fn(segment, "payload"))
    except DecodeError as exc:
        return ("error", str(exc))


def test_same_results_as_pyjwt_on_valid_and_invalid_segments():
    assert ORIGINAL is not _fast_decode_base64url_segment
    rng = random.Random(3)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    cases = [b"", b"=", b"==", b"===", b"eyJhbGciOiJSUzI1NiJ9", b"eyJhbGciOiJSUzI1NiJ9=", b"!!!!", b"ab+/",
             b"abc", b"abcd=", b"ab==", b"a", b"abc\n", b"ab c"]
    for _ in range(2000):
        n = rng.randrange(0, 40)
        seg = bytes(rng.choice(alphabet) for _ in range(n))
        if rng.random() < 0.2:
            seg += b"=" * rng.randrange(1, 4)
        if rng.random() < 0.1:
            seg = seg[:n // 2] + bytes([rng.randrange(256)]) + seg[n // 2:]
        cases.append(seg)
    for seg in cases:
        assert _outcome(_fast_decode_base64url_segment, seg) == _outcome(ORIGINAL, seg), seg


def test_installed_once_and_tokens_still_verify():
    import jwt

    speed_up_jwt_decoding()
    assert speed_up_jwt_decoding() is False  # idempotent
    token = jwt.encode({"a": 1}, "k" * 32, algorithm="HS256")
    assert jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"a": 1}
    with pytest.raises(jwt.DecodeError):
        jwt.decode(token[:10] + "!" + token[11:], "k" * 32, algorithms=["HS256"])

"""Process-level tuning for long-running web workers.

A rendered course panel allocates thousands of short-lived objects; with CPython's default thresholds the
cyclic garbage collector runs full collections over everything the worker has imported, which showed up as
p95 spikes three times the median (bench/RESULTS.md). Freezing the start-up heap and collecting the young
generation less often removes them. Called from gunicorn's ``post_worker_init`` hook (config/gunicorn.conf.py)
and by ``caseload run``-style servers; never at import time."""

from __future__ import annotations

import binascii
import gc
import re


def tune_gc(threshold0: int = 10_000) -> None:
    """Freeze the start-up heap and collect the young generation every ``threshold0`` net allocations.

    Every ORM object a page loads leaves a small reference cycle behind (SQLAlchemy's ``InstanceState`` holds a
    weak reference whose callback is its own bound method): the teacher panel of 60 plan students leaves about 6,000
    objects per page. With 50,000 (the value until 2026-12-06) a young collection came every eight pages or so and
    freed ~50,000 objects at once, a 50 ms pause in that request (the panel's p95: 49.7–58 ms against its 50 ms
    target on the slower VM); 10,000 spreads the same work into pauses a fifth as long (panel p95 42–46 ms, caseload
    p95 54.8 against 60.1 ms; the panel's p50 +3–4 ms), bench/RESULTS.md."""
    gc.collect()
    gc.freeze()
    _, t1, t2 = gc.get_threshold()
    gc.set_threshold(threshold0, t1, t2)


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _fast_decode_base64url_segment(segment: bytes, name: str) -> bytes:
    """PyJWT 2.15's ``PyJWS._decode_base64url_segment`` with its alphabet check done by a compiled regular
    expression instead of a Python loop over every character: identical results (same padding rules, same
    refusal of non-alphabet characters, GHSA-hxm8-2xgr-2p9m), about fifty times faster on a 1 KB token."""
    from jwt.exceptions import DecodeError
    from jwt.utils import base64url_decode, base64url_encode

    padding = 0
    stripped = segment
    while stripped.endswith(b"="):
        stripped = stripped[:-1]
        padding += 1
        if padding > 2:
            raise DecodeError(f"Invalid {name} padding")
    if padding and len(segment) % 4 != 0:
        raise DecodeError(f"Invalid {name} padding")
    if len(stripped) % 4 == 1 or _BASE64URL.fullmatch(stripped) is None:
        raise DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64url_decode(stripped)
    except (TypeError, binascii.Error) as err:
        raise DecodeError(f"Invalid {name} padding") from err
    if base64url_encode(decoded) != stripped:
        raise DecodeError(f"Invalid {name} padding")
    return decoded


def speed_up_jwt_decoding() -> bool:
    """Install the faster segment decoder in PyJWT when PyJWT has the slow one (2.15.x). Every id_token and signed
    Live Event is decoded through it: the per-character loop cost several milliseconds of CPU per request
    (bench/RESULTS.md). Returns whether it was installed; idempotent."""
    from jwt import api_jws

    current = api_jws.PyJWS.__dict__.get("_decode_base64url_segment")
    function = getattr(current, "__func__", None)
    if function is None or function is _fast_decode_base64url_segment:
        return False
    code = getattr(function, "__code__", None)
    names = set(code.co_names) if code is not None else set()
    for const in code.co_consts if code is not None else ():
        names |= set(getattr(const, "co_names", ()))  # the generator expression's own code object
    if "_BASE64URL_ALPHABET" not in names:
        return False  # another PyJWT version: leave it alone
    api_jws._caseload_original_segment_decoder = function  # type: ignore[attr-defined]  # kept for the tests
    api_jws.PyJWS._decode_base64url_segment = staticmethod(_fast_decode_base64url_segment)  # type: ignore[method-assign]
    return True

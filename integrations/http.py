"""The one HTTP wrapper for calls to LMSs and SISs: a timeout on every call, typed errors, and retries with
backoff for 429 and 5xx (honouring ``Retry-After``). No Flask, no database.

Callers catch ``HttpError`` (or a subclass) and translate it into words for their own users; the error keeps
the status and body so that OAuth errors (``{"error": "invalid_client"}``) can be reported precisely.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import requests

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


class HttpError(Exception):
    """A request failed: transport error (``status`` None) or an HTTP error status."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"", url: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.url = url
        self.headers = headers or {}
        """The error response's headers (``WWW-Authenticate`` on a 401 tells an expired token from a refusal)."""

    def body_json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, RecursionError):
            return None


def response_json(response: requests.Response) -> Any:
    """``response.json()``, except that JSON nested deeper than Python's parser recurses (a ``RecursionError``) is
    the ``ValueError`` that every caller already reports as "did not answer with JSON"."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to parse") from None


class HttpTransportError(HttpError):
    """The server could not be reached or did not answer in time."""


class HttpStatusError(HttpError):
    """The server answered with a 4xx/5xx status."""


class RateLimited(HttpStatusError):
    """429 after the retries were used up."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


class HttpClient:
    """A small requests.Session wrapper; one per use case or per worker, safe to reuse across calls."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, retries: int = 3, backoff: float = 0.5,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = session or requests.Session()
        self._sleep = sleep

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        attempt = 0
        while True:
            try:
                response = self._session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                if attempt < self.retries:
                    self._pause(attempt, None)
                    attempt += 1
                    continue
                log.info("HTTP %s to %s failed: %s", method, _host(url), type(exc).__name__)
                raise HttpTransportError(f"could not reach {_host(url)} ({type(exc).__name__})", url=url) from None
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._pause(attempt, _retry_after(response.headers.get("Retry-After")))
                attempt += 1
                continue
            if response.status_code >= 400:
                cls = RateLimited if response.status_code == 429 else HttpStatusError
                raise cls(f"HTTP {response.status_code} from {_host(url)}", status=response.status_code,
                          body=response.content[:65536], url=url, headers=dict(response.headers))
            return response

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(retry_after, MAX_RETRY_AFTER)
        else:
            delay = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
        self._sleep(delay)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        response = self.get(url, **kwargs)
        try:
            return response_json(response)
        except ValueError:
            raise HttpStatusError(f"{_host(url)} did not answer with JSON", status=response.status_code,
                                  body=response.content[:65536], url=url) from None


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url

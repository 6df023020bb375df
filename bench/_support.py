"""Shared bench helpers: a fresh migrated PostgreSQL database per run, a statement counter, waiting for a server."""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("CASELOAD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    from lti_app.migrate import upgrade

    name = f"caseload_bench_{prefix}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def machine() -> str:
    """Host, CPU model, cores and Python: runs on machines of the same kind differ by up to 2x, so a figure is
    recorded with the CPU it was measured on."""
    return f"{platform.node()} · {_cpu_model()} · {os.cpu_count()} cores · Python {platform.python_version()}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class StatementCounter:
    """Counts the SQL statements an engine sends from now on (``.n``; set it to 0 to start a new count)."""

    def __init__(self, engine: Any) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.n += 1


def wait_until_healthy(base_url: str, seconds: float = 15.0) -> None:
    """Wait for a just-started server to answer ``/healthz``; fail the benchmark if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {base_url} did not become healthy within {seconds:.0f} s")

"""Benchmark: complete LTI launches (login -> launch -> first page) against gunicorn (2 workers) on PostgreSQL.

Targets (issue #2): p95 server time for login + launch < 25 ms; >= 100 complete launches/s; the platform's
JWKS fetched at most once per cache period. Server time = the login and launch requests' wall time on
loopback (the client does nothing else during them); the first page is fetched too and reported separately.

Usage: python -m bench.launch [--launches 600] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import requests

from bench._support import fresh_database, machine, pct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.lti_platform import LtiTestPlatform  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--port", type=int, default=5077)
    args = ap.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    with fresh_database("launch") as url:
        lms = LtiTestPlatform(tool_launch_url=base + "/lti/launch").start()
        env = {**os.environ, "CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": url, "CASELOAD_BASE_URL": base,
               "CASELOAD_SECRET_KEY": "bench-secret-" + "x" * 40, "CASELOAD_COOKIE_SECURE": "false",
               "CASELOAD_LOG_LEVEL": "WARNING"}
        from cryptography.fernet import Fernet

        env["CASELOAD_DATA_KEYS"] = Fernet.generate_key().decode()
        from lti_app import create_app

        app = create_app({"database_url": url, "env": "test", "data_keys": [env["CASELOAD_DATA_KEYS"]]})
        with app.app_context():
            from lti_app.db import session_scope
            from lti_app.services import keys

            with session_scope() as s:
                lms.register(s)
                keys.ensure_keys(s)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-w", "2",
                                   "-b", f"127.0.0.1:{args.port}", "--log-level", "warning", "--access-logfile", "/dev/null",
                                   "lti_app:create_app()"], env=env, cwd=ROOT)
        try:
            for _ in range(100):
                try:
                    if requests.get(base + "/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            login_launch: list[float] = []
            first_page: list[float] = []
            failures = 0
            lock = threading.Lock()

            def one(i: int) -> None:
                nonlocal failures
                s = requests.Session()
                t0 = time.perf_counter()
                r = s.get(base + "/lti/login", params={
                    "iss": lms.issuer, "login_hint": f"u{i}", "target_link_uri": lms.tool_launch_url,
                    "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id}, allow_redirects=False)
                t1 = time.perf_counter()
                q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
                token = lms.sign(lms.claims(q["nonce"], sub=f"teacher-{i}", context_id=f"course-{i % 20}"))
                t2 = time.perf_counter()
                r2 = s.post(base + "/lti/launch", data={"id_token": token, "state": q["state"]}, allow_redirects=False)
                t3 = time.perf_counter()
                ok = r2.status_code == 303
                if ok:
                    r3 = s.get(base + r2.headers["Location"])
                    ok = r3.status_code == 200
                t4 = time.perf_counter()
                with lock:
                    if not ok:
                        failures += 1
                    login_launch.append((t1 - t0) + (t3 - t2))
                    first_page.append(t4 - t3)

            for i in range(20):  # warm-up: JWKS fetch, connection pools
                one(10_000 + i)
            login_launch.clear()
            first_page.clear()
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, range(args.launches)))
            elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(10)
            lms.stop()
    print(f"machine: {machine()}  date: {dt.date.today()}")
    print(f"launches: {args.launches} (concurrency {args.concurrency}), failures: {failures}")
    print(f"complete launches/s (login + launch + first page): {args.launches / elapsed:.1f}")
    print(f"login+launch server time: p50 {pct(login_launch, 50) * 1000:.1f} ms, p95 {pct(login_launch, 95) * 1000:.1f} ms")
    print(f"first page: p50 {pct(first_page, 50) * 1000:.1f} ms, p95 {pct(first_page, 95) * 1000:.1f} ms")
    print(f"platform JWKS fetches during the whole run: {lms.jwks_fetches}")


if __name__ == "__main__":
    main()

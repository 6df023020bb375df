"""Benchmark: complete LTI launches (login -> launch -> first page) against gunicorn (2 workers) on PostgreSQL.

Targets (issue #2): p95 server time for login + launch < 25 ms; >= 100 complete launches/s; the platform's
JWKS fetched at most once per cache period. Server time = the login and launch requests' wall time on
loopback (the client does nothing else during them); the first page is fetched too and reported separately.
The load generator is a small Node program (``bench/js/launch_flows.mjs``) acting as the browser and as the
platform's authorization endpoint (it signs each id_token with the test platform's key, whose JWKS the Python test
platform serves); ``--client python`` uses requests and PyJWT instead, which cost the server a third of the cores.

Usage: python -m bench.launch [--launches 600] [--concurrency 4] [--client node|python] [--teachers 40]
                              [--tool caseload|minimal] [--setup documented|lean]
       python -m bench.launch --in-process [--launches 300] [--teachers 40] [--profile out.pstats]

``--setup documented`` (the default) runs gunicorn as the README's production section does:
``config/gunicorn.conf.py`` with its worker count (2 per core) and ``CASELOAD_THREADS=16``, the access log on
stdout (written to a file here, as journald would) and the default ``INFO`` log level. ``--setup lean`` is the
set-up of the figures before issue #10's re-measurement (2 sync workers, no access log, ``WARNING``), kept to
compare with them.

``--tool minimal`` (issue #10's yardstick) serves ``bench/minimal_tool.py`` instead — pylti1p3 and Flask, storing
nothing — with the same gunicorn set-up, platform and load generator, so both are measured on one machine.

``--teachers N`` (issue #10): the launches cycle through N teachers (20 courses), each of whom launched once
during the warm-up, so every measured launch is a *returning* teacher's — the common case, where the roster rows
exist and the launch only confirms them. ``--teachers 0`` makes every launch a different teacher's first one
(the only mode before issue #10, which the figures of issue #2 were taken with). Both modes end with the SQL
statements per complete launch, split by request, counted in-process on the same database.

``--in-process`` drives the same flows through Flask's test client in this process (no gunicorn, no sockets) and
reports the CPU time (``time.process_time``) and SQL statements per complete launch, split by request. It is the
number to compare between code versions on a shared or noisy machine, where wall-clock throughput is not.
``--profile`` also writes a cProfile of the measured launches (read it with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from bench._support import StatementCounter, fresh_database, machine, pct, wait_until_healthy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.lti_platform import CLAIM, LtiTestPlatform  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--port", type=int, default=5077)
    ap.add_argument("--client", choices=("node", "python"), default="node",
                    help="load generator: node (bench/js/launch_flows.mjs, light) or python (requests + PyJWT)")
    ap.add_argument("--teachers", type=int, default=40,
                    help="returning teachers the launches cycle through (0: every launch a new teacher's first)")
    ap.add_argument("--tool", choices=("caseload", "minimal"), default="caseload",
                    help="the tool under test: Caseload, or the minimal pylti1p3 tool that stores nothing")
    ap.add_argument("--setup", choices=("documented", "lean"), default="documented",
                    help="gunicorn as the README documents it (workers, threads, access log, INFO), or the old lean one")
    ap.add_argument("--in-process", action="store_true", help="test client in this process: CPU and statements")
    ap.add_argument("--profile", default="", help="with --in-process: write a cProfile of the measured launches")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.launches, args.teachers, args.profile, args.tool)
        return
    base = f"http://127.0.0.1:{args.port}"
    with fresh_database("launch") as url:
        lms = LtiTestPlatform(tool_launch_url=base + "/lti/launch").start()
        env = {**os.environ, "CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": url, "CASELOAD_BASE_URL": base,
               "CASELOAD_SECRET_KEY": "bench-secret-" + "x" * 40, "CASELOAD_COOKIE_SECURE": "false",
               "CASELOAD_LOG_LEVEL": "WARNING"}
        from cryptography.fernet import Fernet

        env["CASELOAD_DATA_KEYS"] = Fernet.generate_key().decode()
        flows = _Flows(url, lms, args.teachers, base, env["CASELOAD_SECRET_KEY"], env["CASELOAD_DATA_KEYS"])
        flows.register()
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{args.port}"]
        if args.setup == "documented":
            env.update(CASELOAD_THREADS="16", CASELOAD_LOG_LEVEL="INFO")  # README: production
        else:
            gunicorn += ["-w", "2", "--threads", "1", "--log-level", "warning", "--access-logfile", "/dev/null"]
        if args.tool == "minimal":
            env["MINIMAL_TOOL_CONFIG"] = _minimal_tool_config(lms, env["CASELOAD_SECRET_KEY"])
            gunicorn.append("bench.minimal_tool:create_app()")
        else:
            gunicorn.append("lti_app:create_app()")
        access_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read and closed once the server stopped
        server = subprocess.Popen(gunicorn, env=env, cwd=ROOT, stdout=access_log)
        try:
            wait_until_healthy(base, 60)  # a loaded machine imports the app slowly
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
                token = lms.sign(lms.claims(q["nonce"], **flows.who(i)))
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

            if args.client == "node":
                elapsed, failures = _node_flows(flows, base, args.launches, args.concurrency, login_launch,
                                                first_page)
            else:
                for i in flows.warm_up_indexes():  # JWKS fetch, connection pools, every returning teacher once
                    one(i)
                login_launch.clear()
                first_page.clear()
                start = time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    list(pool.map(one, range(args.launches)))
                elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(10)
            access_log.seek(0)
            logged = sum(1 for _ in access_log)
            access_log.close()
        # Statements per complete launch of the same kind, counted in-process on the same database afterwards
        # (a returning teacher of the run, or a teacher who never launched).
        # This process's registry cache is cold: one launch fills it, as the run's warm-up did in each worker.
        offset = 0 if args.teachers else 900_000
        if args.tool == "caseload":
            flows.run(range(offset + 50, offset + 51))
            flows.run(range(offset, offset + 50))
        flows.close()
        lms.stop()
    print(f"machine: {machine()}  date: {dt.date.today()}  load average: {_loadavg()}")
    setup = ("README set-up: config/gunicorn.conf.py, 2 workers per core x 16 threads, access log, INFO"
             if args.setup == "documented" else "lean set-up: 2 sync workers, no access log, WARNING")
    print(f"tool: {'minimal pylti1p3 tool (stores nothing)' if args.tool == 'minimal' else 'Caseload'}; {setup}; "
          f"access-log lines: {logged}")
    print(f"launches: {args.launches} (concurrency {args.concurrency}, {args.client} load generator, "
          f"{flows.describe()}), failures: {failures}")
    print(f"complete launches/s (login + launch + first page): {args.launches / elapsed:.1f}")
    print(f"login+launch server time: p50 {pct(login_launch, 50) * 1000:.1f} ms, p95 {pct(login_launch, 95) * 1000:.1f} ms")
    print(f"first page: p50 {pct(first_page, 50) * 1000:.1f} ms, p95 {pct(first_page, 95) * 1000:.1f} ms")
    print(f"platform JWKS fetches during the whole run: {lms.jwks_fetches}")
    print(flows.statements_line() if args.tool == "caseload" else "SQL statements per complete launch: 0 (no database)")


def _minimal_tool_config(lms: LtiTestPlatform, secret: str) -> str:
    """The minimal tool's registration: the same platform, its key set inline (pylti1p3 then fetches nothing)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"issuer": lms.issuer, "client_id": lms.client_id, "deployment_id": lms.deployment_id,
                       "auth_login_url": lms.issuer + "/auth", "auth_token_url": lms.issuer + "/token",
                       "jwks": {"keys": [k[2] for k in lms.keys]}, "private_key_pem": pem, "secret_key": secret})


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


PHASES = ("login", "launch", "first page")


class _Flows:
    """Complete launches through Flask's test client in this process, with a CPU clock and a statement counter per
    request; also who launches (``who``) and the warm-up, shared with the gunicorn mode."""

    def __init__(self, url: str, lms: LtiTestPlatform, teachers: int, base: str = "http://127.0.0.1:5077",
                 secret: str = "bench-secret-" + "x" * 40, data_key: str = "") -> None:

        from cryptography.fernet import Fernet

        from lti_app import create_app

        self.lms, self.teachers = lms, teachers
        self.app = create_app({"database_url": url, "env": "test", "base_url": base, "cookie_secure": False,
                               "secret_key": secret, "log_level": "INFO",  # the README's level
                               "data_keys": [data_key or Fernet.generate_key().decode()]})
        self.engine = self.app.extensions["caseload.engine"]
        self.statements = StatementCounter(self.engine)
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.count = dict.fromkeys(PHASES, 0)
        self.done = 0

    def register(self) -> None:
        with self.app.app_context():
            from lti_app.db import session_scope
            from lti_app.services.platforms import keys

            with session_scope() as s:
                self.lms.register(s)
                keys.ensure_keys(s)

    def who(self, i: int) -> dict[str, Any]:
        """The claims that vary per launch: the teacher, and one of 20 courses (a teacher stays in one course).
        Like Canvas and Moodle, the platform names the course page to return to (``launch_presentation``), whose
        origin the launch vouches for as a framing origin."""
        n = i % self.teachers if self.teachers else i
        course = f"course-{n % 20}"
        return {"sub": f"teacher-{n}", "context_id": course, CLAIM + "launch_presentation": {
            "document_target": "iframe", "return_url": f"{self.lms.issuer}/course/view.php?id={course}"}}

    def warm_up_indexes(self) -> range:
        """JWKS fetch, pools, template compilation; and every returning teacher's first launch."""
        return range(100_000, 100_000 + max(20, self.teachers))

    def describe(self) -> str:
        return (f"{self.teachers} returning teachers" if self.teachers
                else "every launch a new teacher")

    def reset(self) -> None:
        self.cpu, self.count, self.done = dict.fromkeys(PHASES, 0.0), dict.fromkeys(PHASES, 0), 0

    def run(self, indexes: range) -> None:
        self.reset()
        for i in indexes:
            self.one(i)

    def one(self, i: int) -> None:
        lms, statements = self.lms, self.statements
        client = self.app.test_client()
        c0, n0 = time.process_time(), statements.n
        r = client.get("/lti/login", query_string={
            "iss": lms.issuer, "login_hint": f"u{i}", "target_link_uri": lms.tool_launch_url,
            "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id})
        c1, n1 = time.process_time(), statements.n
        assert r.status_code == 302, r.status_code
        q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
        token = lms.sign(lms.claims(q["nonce"], **self.who(i)))
        c2, n2 = time.process_time(), statements.n
        r2 = client.post("/lti/launch", data={"id_token": token, "state": q["state"]})
        c3, n3 = time.process_time(), statements.n
        assert r2.status_code == 303, (r2.status_code, r2.get_data(as_text=True)[:500])
        r3 = client.get(r2.headers["Location"])
        c4, n4 = time.process_time(), statements.n
        assert r3.status_code == 200, (r3.status_code, r3.get_data(as_text=True)[-600:], r2.headers.getlist("Set-Cookie"))
        for phase, dc, dn in zip(PHASES, (c1 - c0, c3 - c2, c4 - c3), (n1 - n0, n3 - n2, n4 - n3), strict=True):
            self.cpu[phase] += dc
            self.count[phase] += dn
        self.done += 1

    def statements_line(self) -> str:
        n = max(1, self.done)
        return (f"SQL statements per complete launch ({self.describe()}): {sum(self.count.values()) / n:.1f} ("
                + ", ".join(f"{p} {self.count[p] / n:.1f}" for p in PHASES) + ")")

    def close(self) -> None:
        self.engine.dispose()


def _node_flows(flows: _Flows, base: str, launches: int, concurrency: int, login_launch: list[float],
                first_page: list[float]) -> tuple[float, int]:
    """Run the flows with the Node load generator; the platform's key signs there (same key, same claims)."""
    lms = flows.lms
    kid, pem, _ = lms.keys[-1]
    cycle = flows.teachers or launches
    claims = [lms.claims("", **flows.who(i)) for i in range(cycle)]
    # The generator cycles through ``claims``; its warm-up (one launch alone, then ``warmup`` concurrently)
    # covers every returning teacher once.
    config = {"base": base, "launches": launches, "concurrency": concurrency,
              "warmup": max(100, flows.teachers), "issuer": lms.issuer,
              "client_id": lms.client_id, "deployment_id": lms.deployment_id, "kid": kid, "private_key_pem": pem,
              "claims": claims}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(config, fh)
        path = fh.name
    try:
        out = subprocess.run(["node", os.path.join(ROOT, "bench", "js", "launch_flows.mjs"), path],
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    summary = json.loads(out.stdout)
    if summary["failures"]:
        print(f"failures, for example: {summary['examples']}")
    login_launch.extend(ms / 1000 for ms in summary["login_launch_ms"])
    first_page.extend(ms / 1000 for ms in summary["first_page_ms"])
    return float(summary["seconds"]), int(summary["failures"])


ROUNDS = 10


def in_process(launches: int, teachers: int, profile_path: str = "", tool: str = "caseload") -> None:
    """CPU time and SQL statements per complete launch (login, launch, first page), measured in this process;
    ``tool="minimal"`` drives the minimal pylti1p3 tool the same way (its CPU is the floor of the stack)."""
    import cProfile

    base = "http://127.0.0.1:5077"
    with fresh_database("launch_cpu") as url:
        lms = LtiTestPlatform(tool_launch_url=base + "/lti/launch").start()
        flows = _Flows(url, lms, teachers, base)
        flows.register()
        if tool == "minimal":
            from bench import minimal_tool

            os.environ["MINIMAL_TOOL_CONFIG"] = _minimal_tool_config(lms, "bench-secret-" + "x" * 40)
            flows.app = minimal_tool.create_app()
        flows.run(flows.warm_up_indexes())
        profiler = cProfile.Profile(time.process_time) if profile_path else None
        if profiler:
            profiler.enable()
        # Measured in rounds: on a shared machine another process inflates some rounds; the best round is the
        # figure to compare between code versions, the median says how noisy the machine was.
        rounds: list[tuple[dict[str, float], dict[str, int], int]] = []
        per_round = max(1, launches // ROUNDS)
        done = 0
        while done < launches:
            n = min(per_round, launches - done)
            flows.run(range(done, done + n))
            rounds.append((dict(flows.cpu), dict(flows.count), n))
            done += n
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_path)
        lms.stop()
        flows.close()

    def per_launch(r: tuple[dict[str, float], dict[str, int], int]) -> float:
        return sum(r[0].values()) / r[2] * 1000

    ordered = sorted(rounds, key=per_launch)
    best, median = ordered[0], ordered[len(ordered) // 2]
    print(f"machine: {machine()}  date: {dt.date.today()}  load average: {_loadavg()}")
    print(f"tool: {'minimal pylti1p3 tool (stores nothing)' if tool == 'minimal' else 'Caseload'}")
    print(f"in-process launches: {launches} in {len(rounds)} rounds, {flows.describe()}"
          f"{' (under cProfile)' if profiler else ''}")
    for label, (c, _k, n) in (("best round", best), ("median round", median)):
        print(f"CPU per complete launch, {label}: {sum(c.values()) / n * 1000:.2f} ms (" + ", ".join(
            f"{p} {c[p] / n * 1000:.2f}" for p in PHASES) + ")")
    c, k, n = best
    print(f"SQL statements per complete launch ({flows.describe()}): {sum(k.values()) / n:.1f} (" + ", ".join(
        f"{p} {k[p] / n:.1f}" for p in PHASES) + ")")


if __name__ == "__main__":
    main()

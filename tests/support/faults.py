"""Fault injection: private PostgreSQL and Redis servers that a test may stop, crash and restart, and Caseload's
production processes (gunicorn, a Celery worker, Celery beat) running against them.

Nothing here touches the machine's own PostgreSQL or Redis: each server is started from its binaries on a port of its
own, with its data under a temporary directory, and is stopped when the test ends. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], seconds: float, what: str, every: float = 0.05) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------------------------

def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb + pg_ctl) in a new temporary directory, on a free port, trust auth
    on 127.0.0.1. As root the cluster belongs to the ``postgres`` account (PostgreSQL refuses to run as root), and
    its directory is outside pytest's root-only temporary tree. ``remove()`` deletes it."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="caseload-fault-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = postgres_bin()
        assert binary is not None
        cmd = [str(binary / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done

    def init(self) -> PrivatePostgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
        self.base.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C")
        return self

    def start(self) -> None:
        opts = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
                "-c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "log"), "-w", "-t", "30", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would: ``immediate`` mode aborts every connection and skips the checkpoint
        (the next start recovers from the WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """A clean shutdown (``fast``: sessions are ended, a checkpoint is written), as an administrator's restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def alive(self) -> bool:
        return _port_open(self.port)


@dataclass
class PrivateRedis:
    """A redis-server of its own on a free port, nothing persisted: a restart after a crash is an empty broker,
    the worst case for messages that were only in Redis. ``persist``: an append-only file synced at every write
    (``appendfsync always``), so a crash loses nothing and a restart finds every queued and unacknowledged message."""

    base: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    persist: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base), "--save", "",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]),
             "--logfile", str(self.base / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _port_open(self.port), 10, "redis-server start")

    def crash(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    stop = crash


def have_servers() -> str | None:
    """Why the fault tests cannot run here, or None."""
    if postgres_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is needed to run PostgreSQL as the postgres account"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Caseload's processes
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Process:
    """One of Caseload's processes, restartable (a stand-in for the supervisor's ``Restart=always``)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Process:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        fh.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group (a Celery worker's pool children with it), as the OOM killer or a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def caseload_env(database_url: str, broker_url: str, data_key: str, secret: str, base_url: str,
                 **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELOAD_")}
    env.update({"CASELOAD_ENV": "test", "CASELOAD_DATABASE_URL": database_url, "CASELOAD_BROKER_URL": broker_url,
                "CASELOAD_SECRET_KEY": secret, "CASELOAD_DATA_KEYS": data_key, "CASELOAD_BASE_URL": base_url,
                "CASELOAD_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **extra})
    return env


def web(env: dict[str, str], port: int, log: Path, workers: int = 2, threads: int = 4) -> Process:
    return Process("web", [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-w", str(workers),
                           "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
                           "lti_app:create_app()"], env, log)


def worker(env: dict[str, str], log: Path, concurrency: int = 2) -> Process:
    return Process("worker", [sys.executable, "-m", "celery", "-A", "lti_app.celery_worker", "worker",
                              "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-heartbeat",
                              "--without-gossip", "--without-mingle"], env, log)


def beat(env: dict[str, str], base: Path, log: Path) -> Process:
    return Process("beat", [sys.executable, "-m", "celery", "-A", "lti_app.celery_worker", "beat", "--loglevel",
                            "INFO", "-s", str(base / "beat-schedule")], env, log)


def gunicorn_workers(master_pid: int) -> list[int]:
    """Pids of a gunicorn master's worker processes (its children), from /proc."""
    children: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master_pid:
                children.append(int(stat.parent.name))
    return sorted(children)


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[tuple[Process, ...]]:
    try:
        for p in processes:
            p.start()
        yield processes
    finally:
        for p in processes:
            p.stop()


def describe(processes: Any) -> str:
    """The tail of each process's log, for an assertion message."""
    return "\n".join(f"--- {p.name} (started {p.starts}x) ---\n{p.output()[-3000:]}" for p in processes)

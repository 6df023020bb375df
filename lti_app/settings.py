"""Typed settings for Caseload, read from ``CASELOAD_*`` environment variables.

Every setting is listed here once, with its type and default, so that the README table and the running
app cannot disagree. Settings are validated when the app starts: outside ``dev``/``test``/``demo`` a
missing secret stops the app with a clear message instead of running with an unsafe default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("dev", "demo", "test", "production")
DEV_TIMEZONE = "America/Chicago"
_INSECURE_DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - refused in production


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v)]
    return [part.strip() for part in str(value).split(",") if part.strip()]


@dataclass(frozen=True)
class Settings:
    """All of Caseload's settings. Field docs are shown in ``caseload settings``."""

    env: str = "dev"
    """dev | demo | test | production. ``demo`` and ``dev`` enable the practice LMS."""
    database_url: str = ""
    """SQLAlchemy URL. Empty: a SQLite file ``instance/caseload.sqlite3``."""
    secret_key: str = ""
    """Signs app tokens and CSRF tokens. Required in production (32+ characters)."""
    data_keys: list[str] = field(default_factory=list)
    """Fernet keys (url-safe base64, 32 bytes), newest first, comma separated. Encrypt note bodies,
    tool private keys and webhook secrets. Required in production."""
    broker_url: str = ""
    """Celery broker (for example ``redis://127.0.0.1:6379/0``). Empty: tasks run in-process (eager)."""
    base_url: str = "http://127.0.0.1:5000"
    """The public URL of Caseload as the LMS reaches it (https in production)."""
    timezone: str = ""
    """The district's IANA time zone (for example ``America/Chicago``): every "today", default date, deadline
    comparison and shown time is in it; instants are stored in UTC. Required in production; dev, demo and test
    use ``America/Chicago``."""
    practice_lms_url: str = ""
    """Where the practice LMS page is served (a different site from base_url so the tool's cookies are
    third-party as in a real LMS). Empty: base_url with ``127.0.0.1`` swapped for ``localhost``."""
    practice_lms: bool | None = None
    """Serve the practice LMS at ``/practice/``. Default: on in dev/demo/test, always off in production."""
    practice_lms_page_url: str = ""
    """Serve the practice LMS's course page on this origin instead (for example ``http://district.localhost:5000``),
    apart from the practice platform's issuer and login URL, as Canvas pages live on the district's host and not on
    canvas.instructure.com. Empty: the page is on practice_lms_url."""
    app_token_ttl: int = 3600
    """Seconds a page token issued after a launch stays valid (renewed on every page)."""
    app_token_max_age: int = 28800
    """Seconds after the LTI launch at which page tokens stop being renewed (at most 43200, half a day): then a new
    launch from the LMS is needed, and roles and grants are read afresh."""
    jwks_cache_seconds: int = 600
    """How long a platform's JWKS is cached before it is fetched again."""
    launch_leeway_seconds: int = 60
    """Clock leeway for id_token exp/iat checks."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (webhooks, forms); larger gets 413."""
    nrps_debounce_seconds: int = 600
    """A course's roster is pulled through NRPS on launch at most this often."""
    reconcile_interval_seconds: int = 21600
    """How often the beat schedule reconciles every course with an NRPS URL (spread over the interval) and pulls
    OneRoster deltas."""
    proxy_fix_hops: int = 0
    """Number of trusted reverse proxies setting X-Forwarded-* (1 behind one TLS proxy)."""
    log_level: str = "INFO"
    """Python logging level name."""
    cookie_secure: bool | None = None
    """Mark cookies Secure; SameSite=None; Partitioned. Default: on (Chromium accepts Secure cookies on
    http://localhost and 127.0.0.1)."""
    extra_frame_ancestors: list[str] = field(default_factory=list)
    """Origins allowed to frame Caseload besides the registered platforms' origins."""
    import_max_bytes: int = 10_000_000
    """Largest CSV file accepted by the admin import page (the rest of the app keeps max_body_bytes)."""
    retention_years: int = 5
    """A departed student's record detail is purged this many years after ``departed_on`` (``caseload retention``)."""
    inbox_max_attempts: int = 10
    """A pushed roster event that cannot be applied yet (unknown course or user) is retried this many times, with
    exponential backoff, before it is parked as failed on the sync health page."""
    inbox_retry_base_seconds: int = 5
    """First retry delay of a waiting roster event; each further retry doubles it (capped at an hour)."""
    inbox_poll_seconds: int = 15
    """How often the beat schedule drains roster events whose retry time has come."""
    inbox_keep_days: int = 30
    """Applied and ignored roster events are deleted after this many days (failed ones are kept)."""

    initial_evaluation_days: int = 60
    """Days from parental consent within which an initial evaluation is due (IDEA 34 CFR 300.301(c)(1): 60, or the
    State's timeframe)."""
    initial_evaluation_counts: str = "calendar"
    """calendar | school: count the initial-evaluation days as calendar days, or as school days (weekdays that are
    not school closures, from the school calendar)."""
    review_504_months: int = 12
    """A 504 plan's review is due this many months after its last review."""
    deadline_window_days: int = 30
    """A compliance deadline is "upcoming" when it falls within this many days (caseload, deadlines pages)."""
    transition_age: int = 16
    """The age by which the IEP in effect must include postsecondary goals and transition services (34 CFR
    300.320(b): 16, or younger where the State says so, e.g. 14). Drives the "transition plan" deadline."""
    reevaluation_504_months: int = 36
    """The district's Section 504 reevaluation cycle in months (34 CFR 104.35(d) leaves the period to the district;
    36 matches IDEA's three years)."""
    smtp_url: str = ""
    """Where alert e-mail goes: ``smtp://host:25`` (plain), ``smtp+starttls://user:password@host:587`` (STARTTLS
    required) or ``smtps://user:password@host:465`` (TLS from the start). Empty: alerts stay in the in-tool inbox."""
    mail_from: str = ""
    """The sender of alert e-mail, for example ``Caseload <caseload@district.example.org>``. Required with
    smtp_url."""
    alerts_poll_seconds: int = 60
    """How often the beat schedule runs the alerts job (schedule changes, answered questions, reminders, e-mail)."""
    alerts_daily_hour: int = 6
    """The hour (0-23, district time) from which the day's deadline reminders are made and daily digests sent."""
    reminder_windows_days: list[int] = field(default_factory=lambda: [7, 30])
    """Deadline reminders list what is overdue and what is due within each of these many days, comma separated."""

    @property
    def practice_enabled(self) -> bool:
        if self.env == "production":
            return False
        return True if self.practice_lms is None else bool(self.practice_lms)

    @property
    def eager_tasks(self) -> bool:
        return not self.broker_url

    @property
    def practice_url(self) -> str:
        if self.practice_lms_url:
            return self.practice_lms_url.rstrip("/")
        return self.base_url.rstrip("/").replace("://127.0.0.1", "://localhost", 1)

    @property
    def secure_cookies(self) -> bool:
        return True if self.cookie_secure is None else bool(self.cookie_secure)


_CASTS: dict[str, Any] = {
    "env": str,
    "database_url": str,
    "secret_key": str,
    "data_keys": _list,
    "broker_url": str,
    "base_url": lambda v: str(v).rstrip("/"),
    "timezone": lambda v: str(v).strip(),
    "practice_lms_url": str,
    "practice_lms": _bool,
    "practice_lms_page_url": lambda v: str(v).strip().rstrip("/"),
    "app_token_ttl": int,
    "app_token_max_age": int,
    "jwks_cache_seconds": int,
    "launch_leeway_seconds": int,
    "max_body_bytes": int,
    "nrps_debounce_seconds": int,
    "reconcile_interval_seconds": int,
    "proxy_fix_hops": int,
    "log_level": lambda v: str(v).upper(),
    "cookie_secure": _bool,
    "extra_frame_ancestors": _list,
    "import_max_bytes": int,
    "retention_years": int,
    "initial_evaluation_days": int,
    "initial_evaluation_counts": lambda v: str(v).strip().lower(),
    "review_504_months": int,
    "deadline_window_days": int,
    "transition_age": int,
    "reevaluation_504_months": int,
    "smtp_url": lambda v: str(v).strip(),
    "mail_from": lambda v: str(v).strip(),
    "alerts_poll_seconds": int,
    "alerts_daily_hour": int,
    "reminder_windows_days": lambda v: sorted({int(x) for x in (v if isinstance(v, list | tuple) else _list(v))}),
    "inbox_max_attempts": int,
    "inbox_retry_base_seconds": int,
    "inbox_poll_seconds": int,
    "inbox_keep_days": int,
}


def setting_docs() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for the README and the CLI."""
    import ast
    import inspect

    source = inspect.getsource(Settings)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and i + 1 < len(body):
            nxt = body[i + 1]
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    out = []
    defaults = Settings()
    for f in fields(Settings):
        out.append((f"CASELOAD_{f.name.upper()}", repr(getattr(defaults, f.name)), docs.get(f.name, "")))
    return out


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
                  instance_path: str | None = None) -> Settings:
    """Defaults -> ``CASELOAD_*`` environment -> explicit overrides (tests), then validate."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = f"CASELOAD_{f.name.upper()}"
        if key in environ and environ[key] != "":
            try:
                values[f.name] = _CASTS[f.name](environ[key])
            except ValueError as exc:
                raise SettingsError(f"{key} has an invalid value: {exc}") from None
    for key, value in (overrides or {}).items():
        name = key.lower().removeprefix("caseload_")
        if name in _CASTS:
            values[name] = _CASTS[name](value) if value is not None else None
    settings = Settings(**values)
    return _validate(settings, instance_path)


def _validate(settings: Settings, instance_path: str | None) -> Settings:
    from cryptography.fernet import Fernet

    if settings.env not in ENVIRONMENTS:
        raise SettingsError(f"CASELOAD_ENV must be one of {', '.join(ENVIRONMENTS)}, not {settings.env!r}.")
    production = settings.env == "production"
    if settings.initial_evaluation_counts not in ("calendar", "school"):
        raise SettingsError("CASELOAD_INITIAL_EVALUATION_COUNTS must be 'calendar' or 'school', not "
                            f"{settings.initial_evaluation_counts!r}.")
    for name in ("initial_evaluation_days", "review_504_months", "deadline_window_days", "reevaluation_504_months"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"CASELOAD_{name.upper()} must be a positive whole number.")
    if not 10 <= settings.transition_age <= 16:
        raise SettingsError("CASELOAD_TRANSITION_AGE must be an age from 10 to 16: IDEA requires transition services "
                            "in the IEP in effect at 16 at the latest (34 CFR 300.320(b)); States may start earlier.")
    _validate_alerts(settings)
    if not 300 <= settings.app_token_max_age <= 43200:
        raise SettingsError("CASELOAD_APP_TOKEN_MAX_AGE must be between 300 and 43200 seconds (a school day at most).")
    changes: dict[str, Any] = {}
    if not settings.secret_key:
        if production:
            raise SettingsError(
                "CASELOAD_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and set it in the environment."
            )
        changes["secret_key"] = _INSECURE_DEV_SECRET
    elif production and len(settings.secret_key) < 32:
        raise SettingsError("CASELOAD_SECRET_KEY must be at least 32 characters in production.")
    if not settings.data_keys:
        if production:
            raise SettingsError(
                "CASELOAD_DATA_KEYS is not set. Generate a key with `caseload keys new-data-key` and set it; "
                "it encrypts case notes and private keys at rest."
            )
        changes["data_keys"] = [_dev_data_key(instance_path)]
    for i, key in enumerate(changes.get("data_keys", settings.data_keys)):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise SettingsError(
                f"CASELOAD_DATA_KEYS entry {i + 1} is not a valid Fernet key (32 url-safe base64 bytes)."
            ) from None
    if not settings.timezone:
        if production:
            raise SettingsError("CASELOAD_TIMEZONE is not set. Set the district's IANA time zone, for example "
                                "CASELOAD_TIMEZONE=America/Chicago: every date Caseload shows and compares is in it.")
        changes["timezone"] = DEV_TIMEZONE
    else:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"CASELOAD_TIMEZONE {settings.timezone!r} is not an IANA time zone name "
                                "(for example America/Chicago or Pacific/Guam).") from None
    if production and not settings.base_url.startswith("https://"):
        raise SettingsError("CASELOAD_BASE_URL must be an https:// URL in production (LMSs require TLS).")
    if production and settings.database_url.startswith("sqlite"):
        raise SettingsError("SQLite is for the embedded demo only; set CASELOAD_DATABASE_URL to PostgreSQL.")
    if not settings.database_url:
        path = Path(instance_path or "instance")
        path.mkdir(parents=True, exist_ok=True)
        changes["database_url"] = f"sqlite:///{(path / 'caseload.sqlite3').resolve()}"
    if changes:
        settings = Settings(**{**{f.name: getattr(settings, f.name) for f in fields(Settings)}, **changes})
    return settings


def _validate_alerts(settings: Settings) -> None:
    """Alert e-mail settings that cannot work stop the app at start-up rather than at the first send."""
    if settings.smtp_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.smtp_url)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise SettingsError("CASELOAD_SMTP_URL must look like smtp://host:25, smtp+starttls://user:password@host:587 "
                                "or smtps://user:password@host:465.")
        if not settings.mail_from or "@" not in settings.mail_from:
            raise SettingsError("CASELOAD_MAIL_FROM must be set to the sender address of alert e-mail when "
                                "CASELOAD_SMTP_URL is set (for example Caseload <caseload@district.example.org>).")
    if not 0 <= settings.alerts_daily_hour <= 23:
        raise SettingsError("CASELOAD_ALERTS_DAILY_HOUR must be an hour from 0 to 23 (district time).")
    if settings.alerts_poll_seconds < 1:
        raise SettingsError("CASELOAD_ALERTS_POLL_SECONDS must be a positive whole number.")
    if not settings.reminder_windows_days or any(d < 1 for d in settings.reminder_windows_days):
        raise SettingsError("CASELOAD_REMINDER_WINDOWS_DAYS must be positive whole numbers of days, such as 7,30.")


def _dev_data_key(instance_path: str | None) -> str:
    """A per-installation data key for dev/demo, kept in instance/ so data stays readable across restarts."""
    from cryptography.fernet import Fernet

    path = Path(instance_path or "instance")
    path.mkdir(parents=True, exist_ok=True)
    key_file = path / "dev-data-key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = Fernet.generate_key().decode()
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def generate_secret() -> str:
    return secrets.token_urlsafe(48)

"""The application factory. The whole wiring fits on one screen: each subsystem has an ``init_app``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from werkzeug.routing import IntegerConverter

from lti_app.ids import MAX_DATABASE_ID
from lti_app.settings import load_settings

BLUEPRINTS = (
    "lti_app.blueprints.health",
    "lti_app.blueprints.lti",
    "lti_app.blueprints.registration",
    "lti_app.blueprints.panels",
    "lti_app.blueprints.casework",
    "lti_app.blueprints.workspace",
    "lti_app.blueprints.plans",
    "lti_app.blueprints.goals",
    "lti_app.blueprints.deadlines",
    "lti_app.blueprints.webhooks",
    "lti_app.blueprints.admin",
    "lti_app.blueprints.sync",
    "lti_app.blueprints.alerts",
    "lti_app.blueprints.lms_actions",
    "lti_app.blueprints.navigation",
)


class NoCookieSession(SessionInterface):
    """Caseload keeps no Flask session: pages carry a signed app token instead (third-party cookies cannot be relied
    on inside an LMS frame), and webhooks carry signatures. Every request gets Flask's null session, which refuses
    writes, so nothing can start keeping state in a cookie by accident, and no request pays for reading one."""

    def open_session(self, app: Flask, request: Any) -> Any:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


class DatabaseIdConverter(IntegerConverter):
    """``<int:…>`` URL parts are database ids: a number beyond PostgreSQL's ``integer`` (or SQLite's 64 bits)
    matches no route and answers 404, instead of reaching the database and failing there with a 500."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 - werkzeug's names
                 max: int | None = MAX_DATABASE_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build a Caseload app: defaults -> ``CASELOAD_*`` environment -> ``test_config`` overrides."""
    import importlib

    from lti_app import auth, clock, crypto, db, errors, security, tasks

    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    settings = load_settings(overrides=test_config, instance_path=app.instance_path)
    app.config["CASELOAD"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_body_bytes
    app.config["TESTING"] = settings.env == "test"
    app.config["SESSION_COOKIE_SAMESITE"] = "None" if settings.secure_cookies else "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.secure_cookies
    app.session_interface = NoCookieSession()
    logging.getLogger("lti_app").setLevel(settings.log_level)

    if settings.proxy_fix_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxy_fix_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]

    from lti_app.runtime import speed_up_jwt_decoding

    speed_up_jwt_decoding()
    db.init_app(app)
    crypto.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    clock.init_app(app)
    security.init_app(app)
    tasks.init_app(app)
    for module_name in BLUEPRINTS:
        module = importlib.import_module(module_name)
        module.init_app(app)
    if settings.practice_enabled:  # the practice LMS (dev/demo/test); production never loads lti_app.demo
        from lti_app.demo import practice_views

        practice_views.init_app(app)
    return app

"""The yardstick of issue #10: a minimal LTI 1.3 tool on pylti1p3 and Flask that stores nothing.

It does what the pylti1p3 Flask example does and no more: OIDC login (state in a cookie, nonce in Flask's signed
session cookie), launch validation (signature against the platform's key set given inline, so no JWKS fetch;
nonce, audience, deployment), then a 303 to a first page that shows the user's name and course title carried in a
signed value. No database, no roster, no access log, no security headers beyond Flask's.

``python -m bench.launch --tool minimal`` serves it with the same gunicorn set-up and load generator as Caseload, so
the two are measured side by side on one machine. Configuration comes from ``MINIMAL_TOOL_CONFIG`` (JSON written by
the bench: issuer, client id, deployment, login and token URLs, the platform's JWKS, the tool's private key).
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, abort, redirect, render_template_string, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException
from pylti1p3.tool_config import ToolConfDict

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Minimal tool</title></head>
<body><main><h1>{{ course }}</h1><p>Signed in as {{ name }} ({{ roles|length }} roles).</p></main></body></html>"""


def create_app() -> Flask:
    conf = json.loads(os.environ["MINIMAL_TOOL_CONFIG"])
    tool_conf = ToolConfDict({conf["issuer"]: [{
        "default": True, "client_id": conf["client_id"], "auth_login_url": conf["auth_login_url"],
        "auth_token_url": conf["auth_token_url"], "key_set_url": None, "key_set": conf["jwks"],
        "deployment_ids": [conf["deployment_id"]]}]})
    tool_conf.set_private_key(conf["issuer"], conf["private_key_pem"], client_id=conf["client_id"])
    app = Flask(__name__)
    app.secret_key = conf["secret_key"]
    pages = URLSafeTimedSerializer(conf["secret_key"], salt="minimal-page")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.get("/lti/login")
    def login() -> Any:
        oidc = FlaskOIDCLogin(FlaskRequest(), tool_conf)
        try:
            return oidc.redirect(request.args["target_link_uri"])
        except (LtiException, KeyError) as exc:
            abort(400, str(exc))

    @app.post("/lti/launch")
    def launch() -> Any:
        message = FlaskMessageLaunch(FlaskRequest(), tool_conf)
        try:
            data = message.get_launch_data()
        except LtiException as exc:
            abort(400, str(exc))
        context = data.get("https://purl.imsglobal.org/spec/lti/claim/context", {})
        token = pages.dumps({"name": data.get("name", ""), "course": context.get("title", ""),
                             "roles": data.get("https://purl.imsglobal.org/spec/lti/claim/roles", [])})
        return redirect("/page?t=" + token, code=303)

    @app.get("/page")
    def page() -> str:
        try:
            facts = pages.loads(request.args.get("t", ""), max_age=3600)
        except BadSignature:
            abort(403)
        return render_template_string(PAGE, **facts)

    return app

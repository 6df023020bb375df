"""The shipped configuration files match the code that reads them."""

from __future__ import annotations

import json
from pathlib import Path

from lti_app.services.platforms.canvas_config import NRPS_SCOPE, developer_key
from lti_app.settings import setting_docs

ROOT = Path(__file__).resolve().parents[2]


def test_example_env_lists_exactly_the_settings():
    text = (ROOT / "config/example.env").read_text()
    names = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert names == {name for name, _, _ in setting_docs()}


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name, _, _ in setting_docs() if name not in readme]
    assert not missing


def test_canvas_developer_key_uses_base_url_and_placements():
    key = developer_key("https://caseload.example.org/")
    assert key["oidc_initiation_url"] == "https://caseload.example.org/lti/login"
    assert key["public_jwk_url"] == "https://caseload.example.org/lti/jwks"
    assert NRPS_SCOPE in key["scopes"]
    placements = {p["placement"]: p for p in key["extensions"][0]["settings"]["placements"]}
    assert set(placements) == {"course_navigation", "account_navigation", "student_context_card"}
    assert placements["course_navigation"]["visibility"] == "admins"
    assert key["custom_fields"]["canvas_course_id"] == "$Canvas.course.id"
    assert json.loads((ROOT / "config/canvas-developer-key.json").read_text()) == developer_key("https://caseload.example.org")

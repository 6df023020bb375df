"""Blueprint 'registration' (being built; see docs/design-notes.md for its owner issue)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("registration", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

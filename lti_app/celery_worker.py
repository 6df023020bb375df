"""Entry point for Celery workers and beat: ``celery -A lti_app.celery_worker worker`` / ``... beat``.

Builds the app from the ``CASELOAD_*`` environment (the same settings as the web processes)."""

from __future__ import annotations

from lti_app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

"""Entry point for Celery workers and beat: ``celery -A lti_app.celery_worker worker`` / ``... beat``.

Builds the app from the ``CASELOAD_*`` environment (the same settings as the web processes)."""

from __future__ import annotations

import warnings
from typing import Any

from celery.exceptions import CPendingDeprecationWarning
from celery.signals import worker_ready

from lti_app import create_app


@worker_ready.connect
def _quiet_cancel_notice(**_kwargs: Any) -> None:
    """Caseload sets worker_cancel_long_running_tasks_on_connection_loss=False on purpose (``broker_resilience`` in
    lti_app/tasks/__init__.py); Celery would repeat its notice about the future default at every connection loss.
    Installed once the worker is up: Celery's logging set-up turns its own deprecation notices back on."""
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5.1 we introduced an optional breaking change",
                            category=CPendingDeprecationWarning)


flask_app = create_app()
celery = flask_app.extensions["celery"]

"""The alerts job on Celery (``services/alerts/job.py``): beat queues it every ``CASELOAD_ALERTS_POLL_SECONDS``; a
run that overlaps another waits for it and then finds nothing new (the job is idempotent)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from flask import current_app

from lti_app.services.alerts import job
from lti_app.services.dispatch import ALERTS_RUN
from lti_app.services.uow import UnitOfWork


@shared_task(name=ALERTS_RUN, ignore_result=True)
def run_alerts_task() -> int:
    with UnitOfWork() as uow:
        return job.run(uow.session, current_app.config["CASELOAD"]).new_alerts


def beat_schedule(poll_seconds: int) -> dict[str, Any]:
    return {"alerts-run": {"task": ALERTS_RUN, "schedule": float(poll_seconds),
                           "options": {"expires": float(poll_seconds)}}}

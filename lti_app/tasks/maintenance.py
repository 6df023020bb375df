"""Housekeeping task: expired OIDC launch state and used nonces (``services/platforms/launch_state.py``), hourly."""

from __future__ import annotations

from celery import shared_task

from lti_app.services.dispatch import PURGE_LAUNCH_STATE
from lti_app.services.launch.state import purge_launch_state
from lti_app.services.uow import UnitOfWork


@shared_task(name=PURGE_LAUNCH_STATE, ignore_result=True)
def purge_launch_state_task() -> int:
    with UnitOfWork() as uow:
        return purge_launch_state(uow.session)

"""Celery wiring. With no ``CASELOAD_BROKER_URL`` tasks run eagerly in-process (the embedded default);
with a broker they run on workers, and beat runs the schedules. The same task code runs either way.

Task functions live in this package, one module per area (``inbox``, ``reconcile``, ``maintenance``), registered
with ``@shared_task`` under the names in ``lti_app/services/dispatch.py``; each opens its own app context and unit
of work. Tasks import services; services never import tasks: they enqueue by name through ``services.dispatch``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask

TASK_MODULES: tuple[str, ...] = ("lti_app.tasks.reconcile", "lti_app.tasks.maintenance", "lti_app.tasks.inbox",
                                   "lti_app.tasks.alerts", "lti_app.tasks.lms_actions")


def broker_resilience(broker_url: str, reconcile_interval_seconds: int) -> dict[str, Any]:
    """Settings that keep the worker, beat and web processes working through a broker outage (issue #14).

    - Reconnect forever, at start-up and after a loss, instead of giving up (and exiting) after 100 tries.
    - Redis: the hardened transport of ``lti_app/tasks/broker.py`` (the worker survives losing Redis while it holds
      unacknowledged messages); a web process asking for a drain while Redis is down fails at once (one connection
      attempt, a connect timeout of seconds when Redis does not answer at all); a visibility timeout longer than the
      longest countdown Caseload uses (the staggered scheduled reconciles; the LMS sweep's two hours), so that
      Redis never hands a delayed message to a second worker while the first one is still waiting for its time.
    - A task that was running when the connection dropped runs to its end rather than being killed: every task is
      idempotent (drains are guarded by the event times, reconciles by set difference), so its message being
      delivered again later costs a no-op, while killing it would throw away a half-done roster pull.
    - Prefetch one message per pool process: fewer messages held unacknowledged by a worker that may be killed.
    """
    options: dict[str, Any] = {
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }
    if broker_url.startswith("redis://"):
        from lti_app.tasks.broker import TRANSPORT
        from lti_app.tasks.lms_actions import LONGEST_COUNTDOWN_SECONDS

        options["broker_transport"] = TRANSPORT
        options["broker_transport_options"] = {
            "visibility_timeout": max(reconcile_interval_seconds, LONGEST_COUNTDOWN_SECONDS) + 3600,
            # Opening a connection to send a task tries once, instead of retrying for broker_connection_timeout:
            # a web request asking for a drain while Redis is down must not wait seconds for it. (The worker's
            # own connection is not affected: it reconnects forever, broker_connection_max_retries=None.)
            "max_retries": 0,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
            "socket_keepalive": True,
            "retry_on_timeout": True,
            "health_check_interval": 10,
        }
    return options


def init_app(app: Flask) -> Celery:
    settings = app.config["CASELOAD"]

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=settings.broker_url or "memory://",
        result_backend=None,
        task_ignore_result=True,
        task_always_eager=settings.eager_tasks,
        task_eager_propagates=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        timezone=settings.timezone,  # crontab entries are district wall-clock times (DST included); instants stay UTC
        enable_utc=True,
        include=list(TASK_MODULES),
        **broker_resilience(settings.broker_url, settings.reconcile_interval_seconds),
    )
    import importlib

    for module in TASK_MODULES:
        importlib.import_module(module)  # registers the @shared_task functions
    from lti_app.services.dispatch import PURGE_LAUNCH_STATE
    from lti_app.tasks import alerts as alerts_tasks
    from lti_app.tasks import inbox as inbox_tasks
    from lti_app.tasks import lms_actions as lms_tasks
    from lti_app.tasks.reconcile import beat_schedule

    celery_app.conf.beat_schedule = {**beat_schedule(settings.reconcile_interval_seconds),
                                     **inbox_tasks.beat_schedule(settings.inbox_poll_seconds),
                                     **alerts_tasks.beat_schedule(settings.alerts_poll_seconds),
                                     **lms_tasks.beat_schedule(),
                                     "purge-launch-state": {"task": PURGE_LAUNCH_STATE, "schedule": 3600.0}}
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app

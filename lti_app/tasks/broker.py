"""The Redis broker transport, hardened so that a Celery worker survives a broker outage.

When the worker loses its Redis connection it closes the broken connection and then reconnects. Closing the channel
first gives back the messages the worker holds unacknowledged (running ``acks_late`` tasks, prefetched ones), and in
Celery 5.7 that hand-back runs after the connection was already torn down: it fails with an ``AttributeError`` that
nothing catches, and the worker exits ("Unrecoverable error") instead of reconnecting. During a burst of roster
events the worker always holds some unacknowledged message, so a Redis restart of a few seconds killed it (found by
fault injection: issue #14; reproduced by ``tests/fault/test_faults.py``).

The same happens to a task that was running when the connection dropped: it finishes after the reconnect and
acknowledges on the old, closed channel, and that ``AttributeError`` killed the worker too.

Here a hand-back or an acknowledgement that cannot reach Redis is given up with one warning. Nothing is lost by
that: the messages are still in Redis's ``unacked`` set (if Redis kept its data) and Redis gives them back after the
visibility timeout; and nothing Caseload needs lives only in the broker anyway: roster events are in the database,
and the beat's ``caseload.inbox.retry_due`` drains whatever a lost message would have drained
(``lti_app/tasks/inbox.py``).

Used through ``broker_transport`` (``lti_app/tasks/__init__.py``) for ``redis://`` and ``rediss://`` broker URLs.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

TRANSPORT = "lti_app.tasks.broker:Transport"


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    """Unacknowledged-message bookkeeping that gives up, with one warning, when its channel is already closed."""

    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)
        except Exception as exc:  # noqa: BLE001 - the connection is gone; see the module docstring
            held = len(self._delivered)
            self._delivered.clear()
            log.warning("broker connection lost: %d unacknowledged message(s) left to Redis's visibility timeout "
                        "(%s)", held, type(exc).__name__)

    def ack(self, delivery_tag: Any) -> None:
        """A task that was running when the connection dropped finishes after the reconnect and acknowledges on
        the old, closed channel: that acknowledgement cannot arrive. Dropped with a warning (the message is
        delivered again after the visibility timeout, and every task is idempotent), instead of the worker dying."""
        try:
            super().ack(delivery_tag)
        except Exception as exc:
            if not self.channel.closed:
                raise
            self._delivered.pop(delivery_tag, None)
            log.warning("a task finished after the broker connection it came on was lost; its acknowledgement is "
                        "dropped (%s)", type(exc).__name__)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except Exception as exc:
            if not self.channel.closed:
                raise
            self._delivered.pop(delivery_tag, None)
            log.warning("a task was rejected after the broker connection it came on was lost; left to the "
                        "visibility timeout (%s)", type(exc).__name__)


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel

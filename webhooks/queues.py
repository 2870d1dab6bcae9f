"""The two lanes deliveries travel in, and sending a delivery's attempt to its lane.

The `webhooks` queue carries only first attempts to targets not known to be failing; every
retry (scheduled, manual or resent) and every delivery to an endpoint in a failing run goes
to `webhooks_retry`. A worker consuming both takes from them in turn, so one organization's
failing receivers cost a fresh delivery at most one turn per worker slot.
"""

from celery import signature
from django.db import transaction

from webhooks.models import Delivery

DELIVER_WEBHOOK_TASK = "webhooks.tasks.deliver_webhook"
FRESH_QUEUE = "webhooks"
RETRY_QUEUE = "webhooks_retry"


def queue_for(*, attempt_count: int, endpoint_failing: bool) -> str:
    return RETRY_QUEUE if attempt_count or endpoint_failing else FRESH_QUEUE


def queued(deliveries: list[Delivery]) -> list[tuple[int, str]]:
    """Each delivery's (id, queue)."""
    return [
        (
            delivery.pk,
            queue_for(
                attempt_count=delivery.attempt_count,
                endpoint_failing=bool(delivery.endpoint_id and delivery.endpoint.failing_since),
            ),
        )
        for delivery in deliveries
    ]


def enqueue_on_commit(queued: list[tuple[int, str]]) -> None:
    if queued:
        # robust: a broker outage must not turn a committed change into an error; the
        # sweep sends what could not be enqueued.
        transaction.on_commit(lambda: enqueue(queued), robust=True)


def enqueue(queued: list[tuple[int, str]]) -> None:
    """Send each (delivery id, queue) to its worker lane."""
    # By the task's name, not its module: webhooks.tasks imports the services calling this.
    for delivery_id, queue in queued:
        signature(DELIVER_WEBHOOK_TASK, args=[delivery_id]).apply_async(queue=queue)

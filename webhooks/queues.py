"""The lanes deliveries travel in, and sending a delivery's attempt to its lane.

The `webhooks` queue carries only first attempts to targets not known to be failing; every
retry (scheduled, manual or resent) and every delivery to an endpoint in a failing run goes
to `webhooks_retry`. A worker consuming both takes from them in turn, so one organization's
failing receivers cost a fresh delivery at most one turn per worker slot.

Every attempt to an endpoint that answers slowly (`WebhookEndpoint.slow_until`) goes to
`webhooks_slow`, consumed by workers of its own: a slow receiver holds only their slots,
never those the other endpoints' deliveries are waiting for.
"""

from celery import signature
from django.db import transaction
from django.utils import timezone

from webhooks.models import Delivery

DELIVER_WEBHOOK_TASK = "webhooks.tasks.deliver_webhook"
FRESH_QUEUE = "webhooks"
RETRY_QUEUE = "webhooks_retry"
SLOW_QUEUE = "webhooks_slow"
# The lanes an attempt to a slow endpoint is not made in: it is sent on to SLOW_QUEUE.
FAST_LANES = (FRESH_QUEUE, RETRY_QUEUE)


def queue_for(*, attempt_count: int, endpoint_failing: bool, endpoint_slow: bool = False) -> str:
    if endpoint_slow:
        return SLOW_QUEUE
    return RETRY_QUEUE if attempt_count or endpoint_failing else FRESH_QUEUE


def retry_queue_for(delivery: Delivery) -> str:
    """The lane of a delivery's next attempt once one has been made (or asked for)."""
    slow = bool(delivery.endpoint_id and delivery.endpoint.is_slow())
    return SLOW_QUEUE if slow else RETRY_QUEUE


def queued(deliveries: list[Delivery]) -> list[tuple[int, str]]:
    """Each delivery's (id, queue)."""
    now = timezone.now()
    return [
        (
            delivery.pk,
            queue_for(
                attempt_count=delivery.attempt_count,
                endpoint_failing=bool(delivery.endpoint_id and delivery.endpoint.failing_since),
                endpoint_slow=bool(delivery.endpoint_id and delivery.endpoint.is_slow(now)),
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

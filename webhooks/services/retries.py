"""When a failed delivery is tried again: the schedule, and retries asked for by hand."""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from webhooks import queues
from webhooks.models import Delivery, WebhookEndpoint

# Waits after the 1st, 2nd... failed attempt (docs/api); after the last one, the delivery fails.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
RETRY_JITTER = 0.1  # each wait is stretched or shrunk by up to 10 %
MAX_RETRY_AFTER = timedelta(hours=24)
# Waits up to this long ride on a delayed task; longer ones are picked up by the sweep,
# so no task sits for hours in a broker that may redeliver it.
MAX_COUNTDOWN = timedelta(minutes=5)


def _jittered(wait: timedelta) -> timedelta:
    return wait * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)  # noqa: S311 - not crypto


def next_retry_wait(*, failed_attempts: int, retry_after: timedelta | None = None):
    """How long to wait after `failed_attempts` failures, or None when it is time to give up."""
    if failed_attempts > len(RETRY_SCHEDULE):
        return None
    return retry_after or _jittered(RETRY_SCHEDULE[failed_attempts - 1])


def retry_delivery(*, delivery: Delivery) -> Delivery:
    """Send the delivery's event again now (same `webhook-id`), whatever its status."""
    with transaction.atomic():
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at"])
        queues.enqueue_on_commit([(delivery.pk, queues.retry_queue_for(delivery))])
    return delivery


def resend_failed_deliveries(*, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery of this endpoint created since `since`; return how many."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(
                endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since
            ).values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        queue = queues.SLOW_QUEUE if endpoint.is_slow() else queues.RETRY_QUEUE
        queues.enqueue_on_commit([(pk, queue) for pk in ids])
    return len(ids)

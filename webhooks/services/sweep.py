"""The periodic sweep: sends pending deliveries well past due.

A delivery is past due when its enqueue was lost, its worker died, or its retry wait was
too long for a delayed task. Each pass sends at most `SWEEP_BATCH_PER_ORGANIZATION` of one
organization's deliveries, so one organization's backlog does not hold up the others'.
"""

from datetime import timedelta

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from webhooks import queues
from webhooks.models import Delivery

# A pending delivery this far past due was not enqueued (or its worker died): send it.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 1000
SWEEP_BATCH_PER_ORGANIZATION = 100


def send_due_deliveries() -> int:
    """Enqueue pending deliveries well past due (a lost enqueue, a dead worker, a long wait),
    oldest first, at most SWEEP_BATCH_PER_ORGANIZATION of one organization per pass."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(
            status=Delivery.Status.PENDING,
            next_attempt_at__lte=now - SWEEP_GRACE,
        )
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("organization_id")],
                order_by=[F("next_attempt_at").asc(), F("pk").asc()],
            )
        )
        .filter(place__lte=SWEEP_BATCH_PER_ORGANIZATION)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "attempt_count", "endpoint__failing_since", "endpoint__slow_until")[
            :SWEEP_BATCH
        ]
    )
    queued = [
        (
            pk,
            queues.queue_for(
                attempt_count=attempts,
                endpoint_failing=failing_since is not None,
                endpoint_slow=slow_until is not None and slow_until > now,
            ),
        )
        for pk, attempts, failing_since, slow_until in due
    ]
    queues.enqueue(queued)
    return len(queued)

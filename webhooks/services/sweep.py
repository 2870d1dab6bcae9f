"""The periodic sweep: sends pending deliveries well past due.

A delivery is past due when its enqueue was lost, its worker died, or its retry wait was
too long for a delayed task. Each pass takes at most `SWEEP_BATCH_PER_DESTINATION` of the
deliveries to one endpoint (or one job's `webhook_url`), in turns: every destination's
oldest first, then every one's second... So one destination's backlog, a slow endpoint's
say, holds up neither its own organization's other endpoints nor other organizations.
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
SWEEP_BATCH_PER_DESTINATION = 100


def send_due_deliveries() -> int:
    """Enqueue pending deliveries well past due (a lost enqueue, a dead worker, a long wait),
    in turns across their destinations, at most SWEEP_BATCH_PER_DESTINATION of each."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(
            status=Delivery.Status.PENDING,
            next_attempt_at__lte=now - SWEEP_GRACE,
        )
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("organization_id"), F("endpoint_id"), F("target_url")],
                order_by=[F("next_attempt_at").asc(), F("pk").asc()],
            )
        )
        .filter(place__lte=SWEEP_BATCH_PER_DESTINATION)
        .order_by("place", "next_attempt_at", "pk")
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

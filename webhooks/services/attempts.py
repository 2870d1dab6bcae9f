"""Making the next attempt of a delivery and recording what came of it."""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common import metrics
from webhooks import queues
from webhooks.models import Attempt, Delivery, WebhookEndpoint
from webhooks.services import health, transport
from webhooks.services.retries import MAX_COUNTDOWN, next_retry_wait
from webhooks.services.transport import Outcome


class AttemptOutcome:
    """What an attempt came to, as imagen_webhook_attempts_total counts it."""

    DELIVERED = "delivered"
    RETRIED = "retried"  # failed; another attempt will be made
    GAVE_UP = "gave_up"  # failed, and the retries are spent
    FAILED = "failed"  # stopped for good: the receiver answered 410 or the endpoint is off


@dataclass(frozen=True)
class Attempted:
    """An attempt made and recorded; `retry_in` is the wait before the next one when a
    delayed task is to make it, on `retry_queue`; None when the delivery is done or the
    sweep will send it."""

    attempt: Attempt
    retry_in: timedelta | None
    retry_queue: str = queues.RETRY_QUEUE


def attempt_delivery(*, delivery_id: int, lane: str | None = None) -> Attempted | None:
    """Make the next attempt of a pending, due delivery and record it; None if not due.

    The delivery is claimed by pushing its due time past the attempt's longest run, so
    a duplicate task or the sweep cannot send it twice at once. Taken from a lane other
    than the slow one (`lane`, the queue it came from) while its endpoint is slow, it is
    not attempted but sent to the slow lane, as it is: still due, no attempt counted.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    due = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
    )
    claimable = due
    if in_fast_lane := lane in queues.FAST_LANES:
        # A subquery, not a join: the UPDATE keeps its own conditions on the delivery row,
        # which PostgreSQL checks again against a concurrent claim.
        slow = WebhookEndpoint.objects.filter(slow_until__gt=now).values("pk")
        claimable = due.exclude(endpoint__in=slow)
    if not claimable.update(next_attempt_at=now + lease):
        if in_fast_lane and due.exists():
            queues.enqueue_on_commit([(delivery_id, queues.SLOW_QUEUE)])
        return None
    # The organization is read only for a job's own target without a secret of its own.
    delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    attempted_at = timezone.now()
    if delivery.endpoint_id and not delivery.endpoint.enabled:
        outcome = Outcome(None, 0, "", "Not sent: the endpoint is disabled")
    else:
        outcome = transport.send(delivery)
    return _record(delivery=delivery, outcome=outcome, attempted_at=attempted_at)


@contextmanager
def _bookkeeping_transaction():
    """A transaction whose commit does not wait for the disk (PostgreSQL).

    An attempt record is bookkeeping of an at-least-once delivery: should the database
    crash right after such a commit, the worst outcome is that the delivery is sent once
    more, with the same webhook-id receivers deduplicate on. Not waiting for the WAL
    flush takes a disk sync off every delivery a worker makes.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _record(*, delivery: Delivery, outcome: Outcome, attempted_at: datetime) -> Attempted | None:
    """Record the attempt; None when the delivery was removed meanwhile (its endpoint
    deleted while it was being sent): there is nothing left to record it on."""
    with _bookkeeping_transaction():
        # The endpoint's row first, then the delivery's, as delete_endpoint takes them: a
        # removal waits for this record to commit and removes it too, or this waits for
        # the removal and finds nothing.
        if delivery.endpoint_id is not None:
            endpoint = WebhookEndpoint.objects.select_for_update(no_key=True)
            if not endpoint.filter(pk=delivery.endpoint_id).exists():
                return None
        if not Delivery.objects.select_for_update(no_key=True).filter(pk=delivery.pk).exists():
            return None
        return _record_in_transaction(delivery=delivery, outcome=outcome, attempted_at=attempted_at)


def _record_in_transaction(*, delivery, outcome: Outcome, attempted_at: datetime) -> Attempted:
    attempt = Attempt.objects.create(
        delivery=delivery,
        attempted_at=attempted_at,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        response_body=outcome.response_body[: transport.RESPONSE_BODY_LOG_BYTES],
        error=outcome.error,
    )
    delivery.attempt_count += 1
    endpoint = delivery.endpoint
    now = timezone.now()
    if endpoint is not None:
        health.note_endpoint_latency(endpoint, outcome.latency_ms, now)
    wait = None
    if outcome.succeeded:
        delivery.status = Delivery.Status.SUCCEEDED
        counted = AttemptOutcome.DELIVERED
        if endpoint is not None:
            health.note_endpoint_success(endpoint)
    elif outcome.status_code == 410:
        # The receiver says this URL is gone for good: stop sending there at once.
        delivery.status = Delivery.Status.FAILED
        counted = AttemptOutcome.FAILED
        if endpoint is not None:
            health.disable_failed_endpoint(endpoint, WebhookEndpoint.DisabledReason.GONE)
    elif endpoint is not None and not endpoint.enabled:
        delivery.status = Delivery.Status.FAILED
        counted = AttemptOutcome.FAILED
    else:
        if endpoint is not None:
            health.note_endpoint_failure(endpoint, now)
        wait = next_retry_wait(
            failed_attempts=delivery.attempt_count, retry_after=outcome.retry_after
        )
        counted = AttemptOutcome.RETRIED
        if wait is None:
            delivery.status = Delivery.Status.FAILED
            counted = AttemptOutcome.GAVE_UP
    transaction.on_commit(lambda: metrics.WEBHOOK_ATTEMPTS.labels(counted).inc())
    delivery.next_attempt_at = None if wait is None else now + wait
    delivery.save(update_fields=["status", "attempt_count", "next_attempt_at"])
    return Attempted(
        attempt=attempt,
        retry_in=wait if wait is not None and wait <= MAX_COUNTDOWN else None,
        retry_queue=queues.retry_queue_for(delivery),
    )

from celery import shared_task
from django.db import transaction

from webhooks import queues, services


@shared_task(
    name=queues.DELIVER_WEBHOOK_TASK,
    bind=True,
    acks_late=True,
    # A backstop only: the outbound client already ends each request at its deadline.
    soft_time_limit=120,
)
def deliver_webhook(self, delivery_id: int) -> None:
    """Make the next attempt of one delivery, and schedule the one after when it is soon."""
    lane = (self.request.delivery_info or {}).get("routing_key")
    attempted = services.attempt_delivery(delivery_id=delivery_id, lane=lane)
    if attempted is None or attempted.retry_in is None:
        return
    countdown = attempted.retry_in.total_seconds()
    # On commit, since an eager task runs in its caller's transaction; robust, as every
    # enqueue: should the broker refuse the retry, the sweep sends it.
    transaction.on_commit(
        lambda: deliver_webhook.apply_async(
            args=[delivery_id], countdown=countdown, queue=attempted.retry_queue
        ),
        robust=True,
    )


@shared_task(name="webhooks.tasks.send_due_deliveries")
def send_due_deliveries() -> None:
    services.send_due_deliveries()

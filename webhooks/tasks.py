from celery import shared_task

from webhooks import services


@shared_task(
    name="webhooks.tasks.deliver_webhook",
    acks_late=True,
    # A backstop only: the outbound client already ends each request at its deadline.
    soft_time_limit=120,
)
def deliver_webhook(delivery_id: int) -> None:
    """Make the next attempt of one delivery; its retries are scheduled by the service."""
    services.attempt_delivery(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.send_due_deliveries")
def send_due_deliveries() -> None:
    services.send_due_deliveries()

"""Every write of the webhooks app: endpoints, emitting events, delivering them.

One module per concern; callers use the names re-exported here (`services.emit_event`).
"""

from webhooks.services.attempts import attempt_delivery
from webhooks.services.emission import (
    JobWebhookTarget,
    emit_event,
    send_test_event,
)
from webhooks.services.endpoints import (
    create_endpoint,
    delete_endpoint,
    disable_endpoint,
    enable_endpoint,
    rotate_endpoint_secret,
)
from webhooks.services.retries import next_retry_wait, resend_failed_deliveries, retry_delivery
from webhooks.services.sweep import send_due_deliveries
from webhooks.services.wire import TIMESTAMP_FORMAT, event_body

__all__ = [
    "TIMESTAMP_FORMAT",
    "JobWebhookTarget",
    "attempt_delivery",
    "create_endpoint",
    "delete_endpoint",
    "disable_endpoint",
    "emit_event",
    "enable_endpoint",
    "event_body",
    "next_retry_wait",
    "resend_failed_deliveries",
    "retry_delivery",
    "rotate_endpoint_secret",
    "send_due_deliveries",
    "send_test_event",
]

"""The wire format: an event's body and the signed headers every attempt carries."""

import json
from datetime import UTC

from webhooks import signing
from webhooks.models import Delivery, Event

USER_AGENT = "Imagen-Webhooks/1.0"
# the API reference's timestamps: ISO 8601 in UTC, to the second (2024-01-15T10:30:00Z).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def event_body(event: Event) -> bytes:
    """The JSON body every target of the event receives, byte for byte the same each time."""
    created_at = event.created_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    envelope = json.dumps(
        {
            "id": event.public_id,
            "type": event.type,
            "created_at": created_at,
            "sequence": event.sequence,
        },
        separators=(",", ":"),
    )
    return f'{envelope[:-1]},"data":{event.payload}}}'.encode()


def signed_headers(*, delivery: Delivery, body: bytes, timestamp: int) -> dict[str, str]:
    if delivery.endpoint_id:
        secrets = delivery.endpoint.signing_secrets()
    else:
        secrets = [delivery.target_secret or delivery.organization.webhook_signing_secret]
    message_id = delivery.event.public_id
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature(
            secrets=secrets, message_id=message_id, timestamp=timestamp, body=body
        ),
    }

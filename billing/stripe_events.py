"""Stripe's webhook events: verified, recorded once by id, dispatched by type.

An event and everything it changes are written in one transaction together with its
StripeEvent row: if a handler fails, nothing is kept, Stripe retries, and the retry
applies it once. A replayed event id changes nothing.
"""

import json
import logging
import time
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import services
from billing.models import StripeEvent, SubscriptionChange

logger = logging.getLogger(__name__)

WEBHOOK = SubscriptionChange.Source.WEBHOOK
# How far a signature's timestamp may be from our clock, either way (Stripe's default).
TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """Missing, malformed, wrong or stale Stripe-Signature."""


class MalformedEvent(Exception):
    """A correctly signed payload that is not shaped like a Stripe event."""


_ID_MAX_LENGTH = StripeEvent._meta.get_field("event_id").max_length
_TYPE_MAX_LENGTH = StripeEvent._meta.get_field("type").max_length
_LAST_TIMESTAMP = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


def _payment_intent_succeeded(obj: dict, event: dict) -> None:
    services.apply_pack_payment(payment_intent=obj)


def _payment_intent_failed(obj: dict, event: dict) -> None:
    services.record_pack_payment_failure(payment_intent=obj)


def _invoice_paid(obj: dict, event: dict) -> None:
    services.apply_paid_invoice(invoice=obj, source=WEBHOOK)


def _invoice_payment_failed(obj: dict, event: dict) -> None:
    services.record_invoice_payment_failure(invoice=obj)


def _subscription_changed(obj: dict, event: dict) -> None:
    services.sync_subscription(
        subscription=obj,
        source=WEBHOOK,
        details={"event": event["id"], "type": event["type"]},
        state_at=datetime.fromtimestamp(int(event.get("created") or 0), tz=UTC),
    )


HANDLERS = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
}


def verify(payload: bytes, signature: str | None) -> dict:
    """Return the event in `payload` if `signature` is Stripe's for it, else raise."""
    if not signature:
        raise InvalidSignature("Missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=TOLERANCE_SECONDS,
        )
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as error:
        raise InvalidSignature(str(error)) from error
    # Stripe's library refuses only old timestamps; a signature dated ahead of our clock
    # would outlive the tolerance by however far ahead it is.
    if _signed_at(signature) > time.time() + TOLERANCE_SECONDS:
        raise InvalidSignature("Timestamp outside the tolerance zone")
    return _checked(event)


def _text(value, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length


def _checked(event) -> dict:
    """`event` if it holds what recording and dispatching read, else raise MalformedEvent."""
    if not isinstance(event, dict):
        raise MalformedEvent("The payload is not a JSON object")
    if not _text(event.get("id"), _ID_MAX_LENGTH) or not _text(event.get("type"), _TYPE_MAX_LENGTH):
        raise MalformedEvent("The event has no usable id or type")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("The event has no data.object")
    created = event.get("created")
    if created is not None and (type(created) is not int or not 0 <= created <= _LAST_TIMESTAMP):
        raise MalformedEvent("The event's created is not a unix timestamp")
    return event


def _signed_at(signature: str) -> int:
    """The `t=` of a Stripe-Signature header that verify_header has accepted."""
    fields = dict(item.split("=", 1) for item in signature.split(",") if "=" in item)
    return int(fields["t"])


def apply(event: dict) -> bool:
    """Apply a verified event once; return False when its id was seen before."""
    handler = HANDLERS.get(event["type"])
    try:
        with transaction.atomic():
            StripeEvent.objects.create(
                event_id=event["id"],
                type=event["type"],
                livemode=bool(event.get("livemode")),
                payload=event,
            )
            if handler is not None:
                handler(event["data"]["object"], event)
    except IntegrityError:
        if StripeEvent.objects.filter(event_id=event["id"]).exists():
            return False
        raise
    if handler is None:
        logger.info("Stripe event %s (%s) acknowledged, not handled", event["id"], event["type"])
    return True

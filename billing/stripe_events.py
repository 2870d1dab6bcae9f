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
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidSignature("Not a Stripe event")
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

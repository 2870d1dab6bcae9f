"""Stripe event payloads, shaped like the ones Stripe (and localstripe) send."""

import time
import uuid


def event(type_: str, obj: dict, created: int | None = None) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": type_,
        "created": created or int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def pack_payment_intent(purchase, **fields) -> dict:
    """The succeeded PaymentIntent of `purchase`, as its event carries it; `fields` override."""
    return {
        "id": purchase.stripe_payment_intent_id,
        "object": "payment_intent",
        "amount": purchase.amount_cents,
        "amount_received": purchase.amount_cents,
        "currency": purchase.currency,
        "status": "succeeded",
        "customer": purchase.organization.stripe_customer_id or None,
        "metadata": {
            "organization": str(purchase.organization.public_id),
            "pack": str(purchase.pack_id),
            "credits": str(purchase.credits),
            "purchase": purchase.token,
        },
        **fields,
    }


def subscription(customer_id: str, price_id: str, *, sub_id="sub_test", status="active", **extra):
    now = int(time.time())
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer_id,
        "status": status,
        "cancel_at_period_end": False,
        "current_period_start": now,
        "current_period_end": now + 30 * 86400,
        "items": {"object": "list", "data": [{"id": "si_test", "plan": {"id": price_id}}]},
        **extra,
    }


def paid_invoice(
    customer_id: str, price_id: str, amount: int, *, invoice_id=None, sub_id="sub_test"
):
    now = int(time.time())
    return {
        "id": invoice_id or f"in_{uuid.uuid4().hex[:24]}",
        "object": "invoice",
        "customer": customer_id,
        "status": "paid",
        "currency": "usd",
        "subtotal": amount,
        "total": amount,
        "amount_due": amount,
        "amount_paid": amount,
        # Current API versions: the subscription sits under `parent`.
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        },
        "lines": {
            "object": "list",
            "data": [
                {
                    "description": "Imagen Pro (at $29.00 / month)",
                    "amount": amount,
                    "quantity": 1,
                    "period": {"start": now, "end": now + 30 * 86400},
                    "pricing": {"price_details": {"price": price_id}},
                }
            ],
        },
    }

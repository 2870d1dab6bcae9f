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


def pack_payment_intent(organization, pack, pi_id: str | None = None) -> dict:
    return {
        "id": pi_id or f"pi_{uuid.uuid4().hex[:24]}",
        "object": "payment_intent",
        "amount": pack.price_cents,
        "amount_received": pack.price_cents,
        "currency": pack.currency,
        "status": "succeeded",
        "customer": organization.stripe_customer_id or None,
        "metadata": {
            "organization": str(organization.public_id),
            "pack": str(pack.pk),
            "credits": str(pack.credits),
        },
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

"""Credit packs: charging the card for a pack, then granting it when Stripe says it was paid."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.suspension import ensure_active
from billing import stripe_gateway
from billing.models import CreditPack, Invoice, PackPurchase
from billing.services.customers import ensure_stripe_customer, save_card
from billing.services.invoices import issue_invoice, paid_with
from billing.services.ledger import Kind, grant_credits

logger = logging.getLogger(__name__)

# Stripe retries an event for up to 3 days; a purchase older than that is not asked again.
UNCREDITED_LOOKBACK = timedelta(days=3)


class PaymentNotRecorded(Exception):
    """Stripe's event names a PaymentIntent its purchase has not stored yet: apply it later."""


@dataclass
class PackCheckout:
    purchase: PackPurchase
    # Set when the bank wants the customer to authenticate (3-D Secure) in the browser.
    client_secret: str = ""


def buy_pack(
    *,
    organization: Organization,
    pack: CreditPack,
    token: str,
    setup_intent_id: str,
    user: User | None = None,
) -> PackCheckout:
    """Charge the card saved by `setup_intent_id` for `pack`; one purchase per `token`.

    Credits are not granted here: they arrive with Stripe's `payment_intent.succeeded`
    event. A second call with the same token (a double click) returns the first purchase.
    A suspended organization buys nothing (SuspendedOrganization).
    """
    ensure_active(organization, refused="it cannot buy credits")
    purchase, created = PackPurchase.objects.get_or_create(
        token=token,
        defaults={
            "organization": organization,
            "pack": pack,
            "credits": pack.credits,
            "amount_cents": pack.price_cents,
            "currency": pack.currency,
            "created_by": user,
        },
    )
    if purchase.organization_id != organization.pk or purchase.pack_id != pack.pk:
        raise ValueError("This purchase token belongs to another purchase")
    if not created:
        return PackCheckout(purchase=purchase)
    try:
        customer_id = ensure_stripe_customer(organization=organization)
        payment_method_id = save_card(
            organization=organization, setup_intent_id=setup_intent_id, user=user
        ).payment_method_id
    except (stripe_gateway.PaymentDeclined, stripe_gateway.StripeUnavailable) as error:
        _fail_purchase(purchase=purchase, error=error)
        raise
    payment = charge_pack_purchase(
        purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
    )
    requires_action = purchase.status == PackPurchase.Status.REQUIRES_ACTION
    return PackCheckout(
        purchase=purchase, client_secret=payment.client_secret if requires_action else ""
    )


def charge_pack_purchase(
    *, purchase: PackPurchase, customer_id: str, payment_method_id: str
) -> stripe_gateway.PackPayment:
    """Create the purchase's PaymentIntent, record its id, then confirm it.

    The one place a pack's PaymentIntent is made. Its id is stored before any money moves,
    so that Stripe's events find their purchase and an event for any other PaymentIntent
    can be refused (apply_pack_payment). Call it outside a transaction: the id must be
    committed before the charge. Raises PaymentDeclined or StripeUnavailable, and the
    purchase is then failed with the reason.
    """
    try:
        payment = stripe_gateway.create_pack_payment(
            purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
        )
        purchase.stripe_payment_intent_id = payment.id
        purchase.save(update_fields=["stripe_payment_intent_id"])
        payment = stripe_gateway.confirm_pack_payment(purchase=purchase)
    except (stripe_gateway.PaymentDeclined, stripe_gateway.StripeUnavailable) as error:
        _fail_purchase(purchase=purchase, error=error)
        raise
    status = {
        "succeeded": PackPurchase.Status.PROCESSING,  # until the event says so
        "requires_action": PackPurchase.Status.REQUIRES_ACTION,
    }.get(payment.status, PackPurchase.Status.PROCESSING)
    # Stripe's event may have been applied already; its outcome is not overwritten.
    PackPurchase.objects.filter(pk=purchase.pk, status=PackPurchase.Status.STARTED).update(
        status=status
    )
    purchase.refresh_from_db()
    return payment


def _fail_purchase(*, purchase: PackPurchase, error: Exception) -> None:
    purchase.status = PackPurchase.Status.FAILED
    purchase.failure_message = str(error)[:500]
    purchase.save(update_fields=["status", "failure_message"])


def apply_pack_payment(*, payment_intent: dict) -> Invoice | None:
    """A PaymentIntent succeeded: grant its purchase's credits and issue the invoice, once.

    What is granted is what the purchase recorded when it created this PaymentIntent, never
    what the event's metadata says, and only if the event's amount and currency are the
    purchase's. An event for a PaymentIntent no purchase created, or with another amount or
    currency, grants nothing and is logged as a warning; the caller still acknowledges it,
    since Stripe would only deliver the same event again. Events for a PaymentIntent
    already paid (one delivered twice under two event ids) return its invoice.
    """
    with transaction.atomic():
        # A second event for the same PaymentIntent waits here, then finds it paid.
        purchase = (
            PackPurchase.objects.select_for_update(of=("self",))
            .select_related("organization", "pack")
            .filter(stripe_payment_intent_id=payment_intent["id"])
            .first()
        ) or _purchase_being_charged(payment_intent=payment_intent)
        if purchase is None:
            if (payment_intent.get("metadata") or {}).get("pack"):
                logger.warning(
                    "Stripe PaymentIntent %s claims to pay for a pack, but no purchase created "
                    "it: nothing granted",
                    payment_intent["id"],
                )
            return None
        if purchase.status == PackPurchase.Status.SUCCEEDED:
            return Invoice.objects.filter(stripe_payment_intent_id=payment_intent["id"]).first()
        if not _pays_for(payment_intent=payment_intent, purchase=purchase):
            logger.warning(
                "Stripe PaymentIntent %s paid %s %s (received %s), purchase %s costs %s %s: "
                "nothing granted",
                payment_intent["id"],
                payment_intent.get("amount"),
                payment_intent.get("currency"),
                payment_intent.get("amount_received"),
                purchase.pk,
                purchase.amount_cents,
                purchase.currency,
            )
            return None
        return _complete_purchase(purchase=purchase, payment_intent=payment_intent)


def uncredited_pack_purchases(*, now: datetime | None = None) -> list[int]:
    """Ids of purchases that stored their PaymentIntent and are not credited, old enough to
    ask Stripe about (failed ones too: a charge whose answer was lost is recorded failed)."""
    now = now or timezone.now()
    return list(
        PackPurchase.objects.filter(
            created_at__lte=now - timedelta(seconds=settings.PACK_RECONCILE_AFTER_SECONDS),
            created_at__gt=now - UNCREDITED_LOOKBACK,
        )
        .exclude(stripe_payment_intent_id="")
        .exclude(status=PackPurchase.Status.SUCCEEDED)
        .values_list("pk", flat=True)
    )


def reconcile_pack_purchase(*, purchase_id: int) -> Invoice | None:
    """Ask Stripe about the purchase's PaymentIntent and, if it succeeded, apply it exactly as
    its `payment_intent.succeeded` event is applied (apply_pack_payment: the same amount and
    currency checks, under the purchase's row lock, credited once whichever comes first).
    A PaymentIntent in any other state grants nothing. Raises StripeUnavailable."""
    payment_intent_id = PackPurchase.objects.values_list("stripe_payment_intent_id", flat=True).get(
        pk=purchase_id
    )
    payment_intent = stripe_gateway.retrieve_payment_intent(payment_intent_id)
    if payment_intent.get("status") != "succeeded":
        return None
    return apply_pack_payment(payment_intent=payment_intent)


def _purchase_being_charged(*, payment_intent: dict) -> PackPurchase | None:
    """The purchase that is storing this PaymentIntent's id right now, once it has.

    An auto-recharge creates and confirms its PaymentIntent in one call, holding its
    purchase's row until the id is stored, so Stripe's event can come back first: it waits
    here for that row (by the token the metadata names) and is applied only if the id
    stored is the event's. A charge whose id is not stored yet (Stripe's answer was lost
    and the charge is being retried) raises PaymentNotRecorded, so Stripe delivers the
    event again later instead of its credits being lost.
    """
    token = (payment_intent.get("metadata") or {}).get("purchase")
    if not token:
        return None
    purchase = (
        PackPurchase.objects.select_for_update(of=("self",))
        .select_related("organization", "pack")
        .filter(token=token)
        .first()
    )
    if purchase is None:
        return None
    if not purchase.stripe_payment_intent_id and purchase.status == PackPurchase.Status.STARTED:
        raise PaymentNotRecorded(payment_intent["id"])
    return purchase if purchase.stripe_payment_intent_id == payment_intent["id"] else None


def _pays_for(*, payment_intent: dict, purchase: PackPurchase) -> bool:
    amount = payment_intent.get("amount")
    # localstripe's PaymentIntents carry no amount_received; Stripe's always do.
    received = payment_intent.get("amount_received", amount)
    currency = str(payment_intent.get("currency") or "").lower()
    return amount == received == purchase.amount_cents and currency == purchase.currency.lower()


def _complete_purchase(*, purchase: PackPurchase, payment_intent: dict) -> Invoice:
    pack_name = purchase.pack.name
    grant_credits(
        organization=purchase.organization,
        amount=purchase.credits,
        reference=f"stripe:payment_intent:{purchase.stripe_payment_intent_id}",
        kind=Kind.PURCHASE,
        memo=f"{pack_name} credit pack",
    )
    purchase.status = PackPurchase.Status.SUCCEEDED
    purchase.failure_message = ""
    purchase.save(update_fields=["status", "failure_message"])
    amount = purchase.amount_cents
    return issue_invoice(
        organization=purchase.organization,
        kind=Invoice.Kind.PACK,
        lines=[
            {
                "description": f"{pack_name} credit pack ({purchase.credits:,} credits)",
                "quantity": 1,
                "unit_amount": amount,
                "amount": amount,
            }
        ],
        subtotal=amount,
        total=amount,
        amount_paid=amount,
        currency=purchase.currency,
        credits_added=purchase.credits,
        stripe_payment_intent_id=purchase.stripe_payment_intent_id,
        payment_method=paid_with(payment_intent=payment_intent),
    )


def record_pack_payment_failure(*, payment_intent: dict) -> None:
    error = payment_intent.get("last_payment_error") or {}
    PackPurchase.objects.filter(stripe_payment_intent_id=payment_intent["id"]).exclude(
        status=PackPurchase.Status.SUCCEEDED
    ).update(
        status=PackPurchase.Status.FAILED,
        failure_message=(error.get("message") or "The payment failed.")[:500],
    )

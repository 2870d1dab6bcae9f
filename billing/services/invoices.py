"""Our invoices: numbered, announced (`invoice.paid` webhook) and mailed once paid."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import emails, stripe_gateway
from billing.errors import StripeUnavailable
from billing.models import Invoice
from webhooks import services as webhooks
from webhooks.models import EventType

logger = logging.getLogger(__name__)


def _next_invoice_number() -> str:
    year = timezone.now().year
    count = Invoice.objects.filter(number__startswith=f"IMG-{year}-").count()
    return f"IMG-{year}-{count + 1:06d}"


def _create_invoice(**fields) -> Invoice:
    # The number is sequential per year; a clash (two invoices at once) takes the next one.
    for _ in range(20):
        try:
            with transaction.atomic():
                return Invoice.objects.create(number=_next_invoice_number(), **fields)
        except IntegrityError as error:
            if "number" not in str(error):
                raise
    raise RuntimeError("Could not allocate an invoice number")


def paid_with(*, payment_intent: dict | str | None) -> str:
    """How the invoice of `payment_intent` (the object or its id) names what paid it: its
    card, "Visa •••• 4242". Empty when there is none or Stripe cannot say right now: the
    invoice and its credits never wait for a label."""
    try:
        if isinstance(payment_intent, str):
            payment_intent = stripe_gateway.retrieve_payment_intent(payment_intent)
        payment_method = (payment_intent or {}).get("payment_method")
        return stripe_gateway.payment_card(payment_method).label if payment_method else ""
    except StripeUnavailable:
        logger.warning("Stripe could not say how %s was paid", payment_intent, exc_info=True)
        return ""


def issue_invoice(**fields) -> Invoice:
    """Create a paid invoice; announce it (`invoice.paid`) and mail it once the caller commits."""
    invoice = _create_invoice(**fields)
    webhooks.emit_event(
        organization=invoice.organization,
        event_type=EventType.INVOICE_PAID,
        data=invoice_event_data(invoice),
    )
    transaction.on_commit(lambda: emails.send_invoice_email(invoice_id=invoice.pk))
    return invoice


def invoice_event_data(invoice: Invoice) -> dict:
    """The `data` of an `invoice.paid` webhook event."""
    return {
        "id": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "lines": invoice.lines,
        "subtotal": invoice.subtotal,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "currency": invoice.currency,
        "credits_added": invoice.credits_added,
        "paid_at": invoice.paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

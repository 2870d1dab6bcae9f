"""Billing mail: one invoice email per paid invoice, a notice when a payment fails, and
when an auto-recharge fails or is turned off."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Organization
from billing.invoice_pdf import render_invoice_pdf
from billing.models import AutoRechargeAttempt, Invoice
from billing.selectors import billing_emails_for, owner_emails
from billing.templatetags.money import money

logger = logging.getLogger(__name__)


def _send(*, subject: str, template: str, context: dict, to: list[str], attachments=()) -> None:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        attachments=list(attachments),
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    message.send()


def send_invoice_email(*, invoice_id: int) -> None:
    """Mail a paid invoice to the billing email (or the owners). Called once, on commit."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    recipients = billing_emails_for(organization=invoice.organization)
    if not recipients:
        logger.warning("Invoice %s has nobody to send it to", invoice.number)
        return
    _send(
        subject=f"Your Imagen invoice {invoice.number} ({money(invoice.total, invoice.currency)})",
        template="invoice",
        context={
            "invoice": invoice,
            "organization": invoice.organization,
            "seller": settings.INVOICE_SELLER,
            "url": settings.SITE_URL + reverse("billing:invoice", args=[invoice.number]),
        },
        to=recipients,
        attachments=[
            (
                f"{invoice.number}.pdf",
                render_invoice_pdf(invoice, organization=invoice.organization),
                "application/pdf",
            )
        ],
    )


def send_payment_failed_email(*, organization_id: int, amount: int, currency: str) -> None:
    organization = Organization.objects.get(pk=organization_id)
    recipients = owner_emails(organization=organization)
    if not recipients:
        return
    _send(
        subject="Your Imagen subscription payment failed",
        template="payment_failed",
        context={
            "organization": organization,
            "amount": amount,
            "currency": currency,
            "url": settings.SITE_URL + reverse("billing:overview"),
        },
        to=recipients,
    )


def send_auto_recharge_failed_email(*, attempt_id: int, turned_off: bool) -> None:
    """Tell the owners an auto-recharge charge failed, with the page to buy credits on; when
    it was the failure that turned auto-recharge off, say that instead."""
    attempt = AutoRechargeAttempt.objects.select_related(
        "organization", "purchase", "purchase__pack"
    ).get(pk=attempt_id)
    organization = attempt.organization
    recipients = owner_emails(organization=organization)
    if not recipients:
        logger.warning("Auto-recharge of %s failed and nobody can be told", organization.slug)
        return
    subject = (
        f"Auto-recharge is turned off for {organization.name}"
        if turned_off
        else f"Auto-recharge of {organization.name} could not buy credits"
    )
    _send(
        subject=subject,
        template="auto_recharge_failed",
        context={
            "organization": organization,
            "attempt": attempt,
            "purchase": attempt.purchase,
            "turned_off": turned_off,
            "url": settings.SITE_URL + reverse("billing:overview") + "#packs",
        },
        to=recipients,
    )

"""What each credit-history entry was for, in the customer's words, and where to see it."""

from dataclasses import dataclass

from django.urls import reverse

from billing.models import CreditLedgerEntry, Invoice

Kind = CreditLedgerEntry.Kind
INVOICE_PREFIXES = {
    "stripe:invoice:": "stripe_invoice_id",
    "stripe:payment_intent:": "stripe_payment_intent_id",
}


@dataclass(frozen=True)
class EntryLabel:
    text: str
    link_text: str = ""
    url: str = ""


def _invoice_key(entry: CreditLedgerEntry) -> tuple[str, str] | None:
    for prefix, field in INVOICE_PREFIXES.items():
        if entry.reference.startswith(prefix):
            return field, entry.reference.removeprefix(prefix)
    return None


def label_entries(entries: list[CreditLedgerEntry]) -> list[CreditLedgerEntry]:
    """Give each entry a `label` (EntryLabel); one query finds the page's invoices."""
    keys = [key for key in map(_invoice_key, entries) if key is not None]
    invoices = {}
    for field in INVOICE_PREFIXES.values():
        ids = [value for name, value in keys if name == field]
        if ids:
            invoices.update(
                ((field, getattr(invoice, field)), invoice)
                for invoice in Invoice.objects.filter(**{f"{field}__in": ids})
            )
    for entry in entries:
        entry.label = _label(entry, invoices.get(_invoice_key(entry)))
    return entries


def _label(entry: CreditLedgerEntry, invoice: Invoice | None) -> EntryLabel:
    job_url = reverse("dashboard:job", args=[str(entry.job_id)]) if entry.job_id else ""
    if entry.kind == Kind.RESERVE and entry.job_id:
        return EntryLabel("Image generation", "the job", job_url)
    if entry.kind == Kind.REFUND and entry.job_id:
        return EntryLabel("Refund: the job did not complete", "the job", job_url)
    if entry.kind == Kind.ADJUSTMENT:
        return EntryLabel(
            f"Adjustment by Imagen staff: {entry.memo}"
            if entry.memo
            else "Adjustment by Imagen staff"
        )
    if entry.kind == Kind.EXPIRY:
        return EntryLabel("Included credits expired")
    text = entry.memo or entry.get_kind_display()
    if invoice is not None:
        return EntryLabel(
            text, f"invoice {invoice.number}", reverse("billing:invoice", args=[invoice.number])
        )
    return EntryLabel(text)

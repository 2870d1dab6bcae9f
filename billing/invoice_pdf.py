"""An invoice as a PDF: what the customer downloads from the invoice page and gets attached
to the invoice email. Drawn with ReportLab from the same invoice record the page shows."""

import io
from xml.sax.saxutils import escape

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from accounts.models import Organization
from billing.models import Invoice
from billing.templatetags.money import money


def _lines(*texts: str) -> str:
    """Paragraph markup for plain lines (escaped: names come from customers)."""
    return "<br/>".join(escape(text) for text in texts if text)


def render_invoice_pdf(invoice: Invoice, *, organization: Organization) -> bytes:
    seller = settings.INVOICE_SELLER
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Invoice {invoice.number}",
        author=seller["name"],
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
    )
    currency = invoice.currency
    seller_block = _lines(
        seller["name"],
        *seller["address"],
        seller["email"],
        f"Tax ID: {seller['tax_id']}" if seller["tax_id"] else "",
    )
    buyer_block = _lines(organization.name, organization.billing_email)
    details = _lines(
        f"Invoice {invoice.number}",
        f"Date: {invoice.paid_at:%d %B %Y}",
        f"Status: {invoice.get_status_display()}",
        f"Paid with: {invoice.payment_method}" if invoice.payment_method else "",
        (
            f"Period: {invoice.period_start:%d %b %Y} to {invoice.period_end:%d %b %Y}"
            if invoice.period_start and invoice.period_end
            else ""
        ),
    )
    parties = Table(
        [
            [
                Paragraph("<b>From</b>", styles["Normal"]),
                Paragraph("<b>Bill to</b>", styles["Normal"]),
            ],
            [Paragraph(seller_block, styles["Normal"]), Paragraph(buyer_block, styles["Normal"])],
        ],
        colWidths=[85 * mm, 85 * mm],
    )
    rows = [["Description", "Qty", "Unit price", "Amount"]]
    rows += [
        [
            Paragraph(_lines(line["description"]), styles["Normal"]),
            f"{line['quantity']:,}",
            money(line["unit_amount"], currency),
            money(line["amount"], currency),
        ]
        for line in invoice.lines
    ]
    rows += [
        ["", "", "Subtotal", money(invoice.subtotal, currency)],
        ["", "", "Total", money(invoice.total, currency)],
        ["", "", "Amount paid", money(invoice.amount_paid, currency)],
    ]
    lines = Table(rows, colWidths=[95 * mm, 15 * mm, 30 * mm, 30 * mm], repeatRows=1)
    lines.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("LINEABOVE", (2, -3), (-1, -3), 0.5, colors.grey),
                ("FONTNAME", (2, -2), (-1, -2), "Helvetica-Bold"),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story = [
        Paragraph(f"Invoice {invoice.number}", styles["Title"]),
        Paragraph(details, styles["Normal"]),
        Spacer(1, 8 * mm),
        parties,
        Spacer(1, 8 * mm),
        lines,
    ]
    if invoice.credits_added:
        story += [
            Spacer(1, 6 * mm),
            Paragraph(f"Credits added: {invoice.credits_added:,}", styles["Normal"]),
        ]
    document.build(story)
    return buffer.getvalue()

import io
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from billing import services
from billing.models import CreditLedgerEntry, CreditPack, Invoice, SavedCard
from tests.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.billing.factories import give_credits
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership.organization


def _invoice(organization, number="IMG-2026-000001", **fields):
    return Invoice.objects.create(
        number=number,
        organization=organization,
        kind="pack",
        lines=[
            {"description": "Starter credit pack", "quantity": 1, "unit_amount": 500, "amount": 500}
        ],
        subtotal=500,
        total=500,
        amount_paid=500,
        currency="usd",
        credits_added=100,
        **fields,
    )


def test_billing_page_shows_plan_balance_limits_packs_and_expiring_credits(client, owner):
    give_credits(owner, 40)
    services.grant_credits(
        organization=owner, amount=7, reference="m", expires_at=timezone.now() + timedelta(days=3)
    )
    CreditPack.objects.create(name="Starter", credits=100, price_cents=500)
    page = client.get("/billing/").content.decode()
    assert "Plan: Free" in page
    assert ">47</strong> credits" in page
    assert "10 requests per minute, 100 per day" in page
    assert "Starter: 100 credits for $5.00" in page
    assert "7 credits expire on" in page


def test_invoice_page_shows_lines_and_totals(client, owner):
    invoice = _invoice(owner)
    page = client.get(f"/billing/invoices/{invoice.number}/").content.decode()
    assert "Starter credit pack" in page
    assert "$5.00" in page
    assert "Credits added: <strong>100</strong>" in page


def test_invoice_page_and_pdf_say_how_it_was_paid(client, owner):
    invoice = _invoice(owner, payment_method="Visa •••• 4242")
    page = client.get(f"/billing/invoices/{invoice.number}/").content.decode()
    assert 'with <span id="invoice-payment-method">Visa •••• 4242</span>' in page
    pdf = client.get(f"/billing/invoices/{invoice.number}/pdf/").content
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    # ReportLab writes • in Helvetica as WinAnsi's 0x7F, which PDF viewers draw as a bullet
    # (PDF 1.7, D.2 note 6) and pypdf reads back as itself.
    assert "Paid with: Visa •••• 4242" in text.replace("\x7f", "•")


SELLER = {
    "name": "Imagen Platform Ltd.",
    "address": ["1 Example Street", "London EC1A 1AA"],
    "email": "billing@imagen.example",
    "tax_id": "GB123456789",
}


def test_invoice_page_names_the_seller_from_the_settings(client, owner, settings):
    settings.INVOICE_SELLER = SELLER
    page = client.get(f"/billing/invoices/{_invoice(owner).number}/").content.decode()
    seller = page.split('id="invoice-seller"')[1].split("</div>")[0]
    assert "Imagen Platform Ltd.<br>1 Example Street<br>London EC1A 1AA" in seller
    assert "Tax ID: GB123456789" in seller


def test_invoice_pdf_downloads_with_the_seller_the_buyer_and_the_lines(client, owner, settings):
    settings.INVOICE_SELLER = SELLER
    invoice = _invoice(owner)
    page = client.get(f"/billing/invoices/{invoice.number}/").content.decode()
    assert f'href="/billing/invoices/{invoice.number}/pdf/"' in page

    response = client.get(f"/billing/invoices/{invoice.number}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    for expected in (invoice.number, "Imagen Platform Ltd.", "GB123456789", owner.name):
        assert expected in text
    assert "Starter credit pack" in text
    assert "$5.00" in text


def test_another_organizations_invoice_pdf_is_404(client, owner):
    theirs = _invoice(OrganizationFactory())
    assert client.get(f"/billing/invoices/{theirs.number}/pdf/").status_code == 404


def test_another_organizations_invoice_is_404(client, owner):
    theirs = _invoice(OrganizationFactory())
    assert client.get(f"/billing/invoices/{theirs.number}/").status_code == 404


def test_invoice_list_shows_only_our_invoices(client, owner):
    _invoice(owner, "IMG-2026-000001")
    _invoice(OrganizationFactory(), "IMG-2026-000002")
    page = client.get("/billing/invoices/").content.decode()
    assert "IMG-2026-000001" in page
    assert "IMG-2026-000002" not in page


def test_ledger_history_is_paginated(client, owner):
    for n in range(60):
        services.grant_credits(organization=owner, amount=1, reference=f"g{n}")
    first = client.get("/billing/ledger/").content.decode()
    second = client.get("/billing/ledger/?page=2").content.decode()
    assert "Page 1 of 2" in first
    assert first.count("<td>Grant</td>") == 50
    assert second.count("<td>Grant</td>") == 10


def test_credit_history_says_what_a_job_charge_was_for_and_links_the_job(client, owner):
    give_credits(owner, 10)
    job_id = uuid.uuid4()
    services.reserve_credits(organization=owner, amount=3, reference=f"job:{job_id}", job_id=job_id)
    page = client.get("/billing/ledger/").content.decode()
    assert f'Image generation (<a href="/jobs/{job_id}/">the job</a>)' in page
    assert "Reserve" not in page


def test_credit_history_links_a_pack_purchase_to_its_invoice(client, owner):
    services.grant_credits(
        organization=owner,
        amount=100,
        reference="stripe:payment_intent:pi_123",
        kind=CreditLedgerEntry.Kind.PURCHASE,
        memo="Starter credit pack",
    )
    invoice = _invoice(owner)
    invoice.stripe_payment_intent_id = "pi_123"
    invoice.save(update_fields=["stripe_payment_intent_id"])
    page = client.get("/billing/ledger/").content.decode()
    assert (
        f'Starter credit pack (<a href="/billing/invoices/{invoice.number}/">'
        f"invoice {invoice.number}</a>)" in page
    )


def test_credit_history_names_a_staff_adjustment_and_its_reason(client, owner):
    services.adjust_credits(
        organization=owner, amount=5, reason="Outage credit", actor=None, reference="staff:1"
    )
    page = client.get("/billing/ledger/").content.decode()
    assert "Adjustment by Imagen staff: Outage credit" in page
    assert " UTC</td>" in page


def test_the_ledgers_job_link_opens_the_job(client, owner):
    job = JobFactory(organization=owner)
    assert client.get(f"/jobs/{job.pk}/").status_code == 200


def test_a_member_cannot_spend_the_organizations_money(client):
    membership = MembershipFactory(role="member")
    client.force_login(membership.user)
    assert client.post("/billing/card/").status_code == 403
    assert client.post("/billing/plan/", {"plan": "pro"}).status_code == 403


def test_staff_adjustments_append_entries_and_never_edit_one():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    before = list(CreditLedgerEntry.objects.values())
    services.adjust_credits(
        organization=organization,
        amount=5,
        reason="Goodwill",
        actor=UserFactory(is_staff=True),
        reference="adj-1",
    )
    after = list(CreditLedgerEntry.objects.order_by("id").values())
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_admin_shows_money_read_only(admin_client):
    _invoice(OrganizationFactory())
    assert admin_client.get("/admin/billing/invoice/").status_code == 200
    assert admin_client.get("/admin/billing/invoice/add/").status_code == 403
    assert admin_client.get("/admin/billing/stripeevent/").status_code == 200
    assert admin_client.get("/admin/billing/plan/add/").status_code == 200


def test_a_second_plan_change_while_one_runs_is_refused(client, owner):
    from django.core.cache import cache

    cache.add(f"billing:plan-change:{owner.pk}", 1, 60)
    response = client.post(
        "/billing/plan/", {"plan": "pro", "setup_intent": "seti_x"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409
    assert "already being changed" in response.json()["message"]


def test_a_member_cannot_replace_the_card(client):
    membership = MembershipFactory(role="member")
    client.force_login(membership.user)
    assert client.post("/billing/card/save/", {"setup_intent": "seti_x"}).status_code == 403
    assert not SavedCard.objects.exists()


def test_a_member_sees_billing_without_card_form_or_buttons(client):
    membership = MembershipFactory(role="member")
    CreditPack.objects.create(name="Starter", credits=100, price_cents=500)
    client.force_login(membership.user)
    page = client.get("/billing/").content.decode()
    assert "Starter: 100 credits for $5.00" in page
    assert "only its owners and admins can buy credits" in page
    assert 'id="card-form"' not in page
    assert "Buy Starter" not in page
    assert "billing.js" not in page


def test_the_local_card_form_labels_every_field(client, owner, settings):
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    page = client.get("/billing/").content.decode()
    for field, label in [
        ("number", "Card number"),
        ("exp-month", "Expiry month"),
        ("exp-year", "Expiry year"),
        ("cvc", "CVC"),
    ]:
        assert f'<label for="card-{field}">{label}</label>' in page


def test_invoice_page_writes_credits_with_thousands_separators(client, owner):
    invoice = _invoice(owner)
    invoice.credits_added = 1000
    invoice.save(update_fields=["credits_added"])
    page = client.get(f"/billing/invoices/{invoice.number}/").content.decode()
    assert "Credits added: <strong>1,000</strong>" in page

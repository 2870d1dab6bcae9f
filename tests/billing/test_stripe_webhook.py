"""The webhook endpoint with events signed exactly as Stripe signs them (no Stripe server)."""

import json
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from accounts.models import Organization
from billing.models import (
    CreditLedgerEntry,
    Invoice,
    PackPurchase,
    StripeEvent,
    Subscription,
    SubscriptionChange,
)
from billing.stripe_gateway import plan_price_id
from tests.accounts.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.billing import stripe_payloads as payloads
from tests.billing.conftest import signed_event_post
from tests.billing.factories import PackPurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization():
    organization = OrganizationFactory(stripe_customer_id="cus_test", billing_email="")
    MembershipFactory(organization=organization, user__email="owner@example.com")
    return organization


@pytest.fixture
def purchase(organization):
    return PackPurchaseFactory(organization=organization, pack__credits=100, pack__price_cents=500)


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


@pytest.fixture
def post_event(client, settings, django_capture_on_commit_callbacks):
    """POST a Stripe-signed event, running what it does on commit (emails) as in production."""

    def post(event, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET, **kwargs)

    return post


def test_signed_payment_intent_succeeded_grants_the_pack_once(post_event, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    assert post_event(event).status_code == 200
    assert _balance(organization) == 100
    entry = CreditLedgerEntry.objects.get(organization=organization)
    assert (entry.kind, entry.amount, entry.expires_at) == ("purchase", 100, None)


def test_replayed_event_changes_nothing(post_event, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    post_event(event)
    response = post_event(event)
    assert response.status_code == 200
    assert response.json()["replayed"] is True
    assert _balance(organization) == 100
    assert Invoice.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_second_event_for_the_same_payment_intent_grants_nothing(
    post_event, client, settings, organization, purchase
):
    intent = payloads.pack_payment_intent(purchase)
    post_event(payloads.event("payment_intent.succeeded", intent))
    post_event(payloads.event("payment_intent.succeeded", intent))
    assert _balance(organization) == 100
    assert Invoice.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_events_for_the_same_payment_intent_grant_once(settings, organization, purchase):
    intent = payloads.pack_payment_intent(purchase)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def deliver():
        event = payloads.event("payment_intent.succeeded", intent)
        barrier.wait()
        try:
            response = signed_event_post(
                Client(raise_request_exception=False), event, settings.STRIPE_WEBHOOK_SECRET
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert _balance(organization) == 100
    assert Invoice.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    "signature",
    ["", "t=123,v1=deadbeef", "garbage"],
    ids=["missing", "wrong", "malformed"],
)
def test_bad_signature_is_400_and_applies_nothing(client, organization, purchase, signature):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature else {}
    response = client.post(
        "/stripe/webhook/", data=json.dumps(event), content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert _balance(organization) == 0
    assert not StripeEvent.objects.exists()


def test_signature_with_another_secret_is_400(client, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    response = signed_event_post(client, event, "whsec_someone_else")
    assert response.status_code == 400
    assert _balance(organization) == 0


def test_stale_signature_is_400(post_event, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    response = post_event(event, timestamp=int(time.time()) - 600)
    assert response.status_code == 400
    assert _balance(organization) == 0


def test_signature_from_the_future_is_400(post_event, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    response = post_event(event, timestamp=int(time.time()) + 400)
    assert response.status_code == 400
    assert _balance(organization) == 0


def test_signature_within_the_tolerance_is_accepted(post_event, organization, purchase):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    assert post_event(event, timestamp=int(time.time()) + 60).status_code == 200


def test_unknown_event_type_is_acknowledged_and_recorded(post_event):
    event = payloads.event("charge.dispute.created", {"id": "dp_1", "object": "dispute"})
    assert post_event(event).status_code == 200
    assert StripeEvent.objects.filter(event_id=event["id"]).exists()


def test_a_failing_handler_leaves_nothing_half_applied_and_the_retry_applies_once(
    post_event, client, settings, organization, purchase, monkeypatch
):
    from billing.services import invoices

    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    real_create_invoice = invoices._create_invoice

    def broken(**fields):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(invoices, "_create_invoice", broken)
    client.raise_request_exception = False
    assert post_event(event).status_code == 500
    assert _balance(organization) == 0
    assert not StripeEvent.objects.exists()
    monkeypatch.setattr(invoices, "_create_invoice", real_create_invoice)
    assert post_event(event).status_code == 200
    assert _balance(organization) == 100
    assert len(mail.outbox) == 1


def test_payment_intent_without_pack_metadata_grants_nothing(post_event, organization):
    intent = {"id": "pi_sub", "object": "payment_intent", "amount": 2900, "metadata": {}}
    assert post_event(payloads.event("payment_intent.succeeded", intent)).status_code == 200
    assert _balance(organization) == 0


def test_pack_invoice_email_has_lines_totals_credits_and_a_link(
    post_event, client, settings, organization, purchase
):
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    post_event(event)
    invoice = Invoice.objects.get()
    assert (invoice.total, invoice.amount_paid, invoice.credits_added) == (500, 500, 100)
    [message] = mail.outbox
    assert message.to == ["owner@example.com"]
    assert invoice.number in message.subject
    assert "Starter credit pack (100 credits)" in message.body
    assert "Total: $5.00" in message.body
    assert "Credits added: 100" in message.body
    assert f"http://testserver/billing/invoices/{invoice.number}/" in message.body
    html = message.alternatives[0][0]
    assert "$5.00" in html
    assert "Credits added: 100" in html
    [(filename, pdf, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert pdf.startswith(b"%PDF")


def test_a_payment_whose_card_stripe_cannot_name_now_is_credited_all_the_same(
    post_event, settings, organization, purchase
):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    intent = payloads.pack_payment_intent(purchase, payment_method="pm_card_visa")
    assert post_event(payloads.event("payment_intent.succeeded", intent)).status_code == 200
    assert _balance(organization) == 100
    assert Invoice.objects.get().payment_method == ""
    assert "Paid on" in mail.outbox[0].body


def test_invoice_email_goes_to_the_billing_email_when_set(post_event, organization, purchase):
    Organization.objects.filter(pk=organization.pk).update(billing_email="books@example.com")
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    post_event(event)
    assert mail.outbox[0].to == ["books@example.com"]


def test_paid_subscription_invoice_sets_the_plan_and_grants_the_period_once(
    post_event, client, settings, organization
):
    pro = PlanFactory(slug="pro")
    invoice = payloads.paid_invoice("cus_test", plan_price_id(pro), 2900)
    post_event(payloads.event("invoice.paid", invoice))
    # Stripe sends both events for one payment: the credits still come once.
    post_event(payloads.event("invoice.payment_succeeded", invoice))
    organization.refresh_from_db()
    assert organization.plan.slug == "pro"
    assert organization.credit_balance == pro.monthly_credits
    entry = CreditLedgerEntry.objects.get(organization=organization)
    assert entry.expires_at is not None
    local = Invoice.objects.get()
    assert (local.kind, local.total, local.credits_added) == ("subscription", 2900, 1000)
    [message] = mail.outbox
    assert "Total: $29.00" in message.body
    assert "Imagen Pro" in message.body


def test_subscription_updated_moves_the_organization_between_plans(post_event, organization):
    pro, enterprise = PlanFactory(slug="pro"), PlanFactory(slug="enterprise")
    post_event(
        payloads.event(
            "customer.subscription.created", payloads.subscription("cus_test", plan_price_id(pro))
        ),
    )
    upgraded = payloads.subscription("cus_test", plan_price_id(enterprise))
    post_event(payloads.event("customer.subscription.updated", upgraded))
    organization.refresh_from_db()
    assert organization.plan == enterprise
    assert list(
        SubscriptionChange.objects.values_list("to_plan__slug", "source").order_by("id")
    ) == [("pro", "webhook"), ("enterprise", "webhook")]


def test_cancellation_at_period_end_keeps_the_plan_until_the_subscription_ends(
    post_event, client, settings, organization
):
    pro = PlanFactory(slug="pro")
    price = plan_price_id(pro)
    post_event(
        payloads.event("customer.subscription.created", payloads.subscription("cus_test", price)),
    )
    canceling = payloads.subscription("cus_test", price, cancel_at_period_end=True)
    post_event(payloads.event("customer.subscription.updated", canceling))
    organization.refresh_from_db()
    assert organization.plan == pro
    assert Subscription.objects.get().cancel_at_period_end is True
    ended = payloads.subscription("cus_test", price, status="canceled")
    post_event(payloads.event("customer.subscription.deleted", ended))
    organization.refresh_from_db()
    assert organization.plan.slug == "free"


def test_an_older_subscription_event_does_not_undo_a_newer_one(post_event, organization):
    pro = PlanFactory(slug="pro")
    price = plan_price_id(pro)
    now = int(time.time())
    ended = payloads.subscription("cus_test", price, status="canceled")
    post_event(payloads.event("customer.subscription.deleted", ended, created=now))
    stale = payloads.subscription("cus_test", price)
    post_event(payloads.event("customer.subscription.updated", stale, created=now - 60))
    organization.refresh_from_db()
    assert organization.plan.slug == "free"


def test_failed_subscription_payment_emails_the_owners(post_event, organization):
    Organization.objects.filter(pk=organization.pk).update(billing_email="books@example.com")
    invoice = {
        "id": "in_f",
        "object": "invoice",
        "customer": "cus_test",
        "amount_due": 2900,
        "currency": "usd",
        "status": "open",
    }
    post_event(payloads.event("invoice.payment_failed", invoice))
    [message] = mail.outbox
    assert message.to == ["owner@example.com"]
    assert "$29.00" in message.body


def test_a_paid_purchase_is_marked_paid(post_event, purchase):
    post_event(payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase)))
    purchase.refresh_from_db()
    assert purchase.status == PackPurchase.Status.SUCCEEDED


def test_metadata_claiming_more_credits_grants_only_the_purchased_pack(
    post_event, organization, purchase
):
    intent = payloads.pack_payment_intent(purchase)
    intent["metadata"]["credits"] = "1000000"
    assert post_event(payloads.event("payment_intent.succeeded", intent)).status_code == 200
    assert _balance(organization) == 100
    assert Invoice.objects.get().credits_added == 100


@pytest.mark.parametrize(
    "mismatch",
    [
        {"amount": 50, "amount_received": 50},
        {"amount_received": 50},
        {"currency": "eur"},
    ],
    ids=["amount", "amount_received", "currency"],
)
def test_an_event_whose_payment_differs_from_the_purchase_grants_nothing(
    post_event, organization, purchase, mismatch, caplog
):
    intent = payloads.pack_payment_intent(purchase, **mismatch)
    assert post_event(payloads.event("payment_intent.succeeded", intent)).status_code == 200
    assert _balance(organization) == 0
    assert not Invoice.objects.exists()
    assert not mail.outbox
    purchase.refresh_from_db()
    assert purchase.status == PackPurchase.Status.PROCESSING
    assert any(
        record.levelname == "WARNING" and purchase.stripe_payment_intent_id in record.getMessage()
        for record in caplog.records
    )


def test_an_event_for_a_payment_intent_no_purchase_created_grants_nothing(
    post_event, organization, purchase, caplog
):
    intent = payloads.pack_payment_intent(purchase, id="pi_made_by_someone_else")
    response = post_event(payloads.event("payment_intent.succeeded", intent))
    assert response.status_code == 200  # acknowledged: a retry would bring the same event
    assert _balance(organization) == 0
    assert not Invoice.objects.exists()
    purchase.refresh_from_db()
    assert purchase.status == PackPurchase.Status.PROCESSING
    assert any(
        record.levelname == "WARNING" and "pi_made_by_someone_else" in record.getMessage()
        for record in caplog.records
    )


def test_an_event_for_a_purchase_not_yet_charged_grants_nothing(post_event, organization):
    started = PackPurchaseFactory(
        organization=organization, stripe_payment_intent_id="", status=PackPurchase.Status.STARTED
    )
    intent = payloads.pack_payment_intent(started, id="pi_claiming_a_started_purchase")
    post_event(payloads.event("payment_intent.succeeded", intent))
    assert _balance(organization) == 0
    started.refresh_from_db()
    assert started.status == PackPurchase.Status.STARTED


def test_a_failure_event_for_another_payment_intent_leaves_the_purchase_alone(post_event, purchase):
    intent = payloads.pack_payment_intent(purchase, id="pi_made_by_someone_else")
    post_event(payloads.event("payment_intent.payment_failed", intent))
    purchase.refresh_from_db()
    assert purchase.status == PackPurchase.Status.PROCESSING


def test_a_failure_event_marks_the_purchase_failed_with_stripes_reason(post_event, purchase):
    intent = payloads.pack_payment_intent(
        purchase, status="requires_payment_method", last_payment_error={"message": "No funds."}
    )
    post_event(payloads.event("payment_intent.payment_failed", intent))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.failure_message) == ("failed", "No funds.")


def _malformed(purchase, **changes) -> dict:
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    for name, value in changes.items():
        if value is None:
            del event[name]
        else:
            event[name] = value
    return event


@pytest.mark.parametrize(
    "changes",
    [
        {"data": None},
        {"data": {}},
        {"data": {"object": "pi_123"}},
        {"data": ["object"]},
        {"type": ["payment_intent.succeeded"]},
        {"id": {"evt": 1}},
        {"id": "evt_" + "x" * 300},
        {"type": "customer.subscription.updated", "created": "yesterday"},
        {"type": "customer.subscription.updated", "created": 10**20},
    ],
    ids=[
        "no-data",
        "no-object",
        "object-not-a-dict",
        "data-not-a-dict",
        "type-not-a-string",
        "id-not-a-string",
        "id-too-long",
        "created-not-a-number",
        "created-out-of-range",
    ],
)
def test_a_signed_event_of_the_wrong_shape_is_400_and_applies_nothing(
    post_event, organization, purchase, changes
):
    response = post_event(_malformed(purchase, **changes))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert _balance(organization) == 0
    assert not StripeEvent.objects.exists()

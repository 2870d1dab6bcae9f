"""Through the project's own pages and endpoints, against a real localstripe server whose
signed webhooks reach the real endpoint on a live server."""

import socket

import pytest
from django.core import mail

from accounts.models import Organization
from billing import services, stripe_gateway, tasks
from billing.models import CreditLedgerEntry, Invoice, PackPurchase, StripeEvent
from tests.accounts.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.billing.conftest import (
    confirm_card_setup,
    sell_starter_pack,
    signed_event_post,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4242424242424242"
DECLINED = "4000000000000002"
DECLINED_ON_CHARGE = "4000000000000341"


@pytest.fixture
def catalog(stripe_server):
    return sell_starter_pack()


@pytest.fixture
def owner(client, catalog):
    membership = MembershipFactory(
        user__email="owner@example.com", organization=OrganizationFactory(billing_email="")
    )
    client.force_login(membership.user)
    return membership.organization


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def _save_card(client, settings, stripe_server, number=VISA) -> dict:
    client_secret = client.post("/billing/card/").json()["client_secret"]
    result = confirm_card_setup(
        stripe_server, client_secret, number, settings.STRIPE_PUBLISHABLE_KEY
    )
    return {"id": client_secret.split("_secret_")[0], **result}


def _buy(client, pack, setup_intent_id, token="click-0001-abcdef"):
    return client.post(
        f"/billing/packs/{pack.pk}/buy/", {"token": token, "setup_intent": setup_intent_id}
    )


def test_buying_a_pack_with_a_test_card_grants_its_credits_exactly_once(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    assert setup["status"] == "succeeded"
    response = _buy(client, catalog, setup["id"])
    assert response.status_code == 200
    assert response.json()["status"] == "processing"
    assert _balance(owner) == 0  # nothing until Stripe's signed event arrives
    assert wait_for(lambda: _balance(owner) == 100)
    assert wait_for(lambda: len(mail.outbox) == 1)
    purchase = PackPurchase.objects.get()
    assert wait_for(lambda: StripeEvent.objects.filter(type="payment_intent.succeeded").exists())
    assert CreditLedgerEntry.objects.filter(organization=owner, kind="purchase").count() == 1
    invoice = Invoice.objects.get(organization=owner)
    assert invoice.stripe_payment_intent_id == purchase.stripe_payment_intent_id
    assert (invoice.total, invoice.credits_added) == (500, 100)
    assert "Total: $5.00" in mail.outbox[0].body
    page = client.get("/billing/").content.decode()
    assert "Paid" in page
    assert invoice.number in page


def test_the_invoice_and_its_email_say_which_card_paid(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    _buy(client, catalog, setup["id"])
    assert wait_for(lambda: len(mail.outbox) == 1)
    assert Invoice.objects.get(organization=owner).payment_method == "Visa •••• 4242"
    assert "Paid on" in mail.outbox[0].body
    assert "with Visa •••• 4242." in mail.outbox[0].body


def test_buying_a_pack_saves_its_card_as_the_organizations_card(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    _buy(client, catalog, setup["id"])
    page = client.get("/billing/").content.decode()
    assert "Saved card: Visa •••• 4242, expires 12/2034." in page


def test_a_purchase_records_what_it_grants_and_the_payment_intent_it_charged(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    _buy(client, catalog, setup["id"])
    purchase = PackPurchase.objects.get()
    assert (purchase.credits, purchase.amount_cents, purchase.currency) == (100, 500, "usd")
    intent = stripe_gateway.client().v1.payment_intents.retrieve(purchase.stripe_payment_intent_id)
    assert (intent.amount, intent.currency, intent.status) == (500, "usd", "succeeded")


def test_a_payment_intent_made_on_stripe_outside_a_purchase_grants_nothing(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    owner.refresh_from_db()
    payment_method = services.owned_payment_method(organization=owner, setup_intent_id=setup["id"])
    # Anyone holding an API key of the Stripe account (any `sk_*` key, for localstripe).
    stripe_gateway.client().v1.payment_intents.create(
        params={
            "amount": 50,
            "currency": "usd",
            "customer": owner.stripe_customer_id,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {
                "organization": str(owner.public_id),
                "pack": str(catalog.pk),
                "credits": "1000000",
            },
        }
    )
    assert wait_for(lambda: StripeEvent.objects.filter(type="payment_intent.succeeded").exists())
    assert _balance(owner) == 0
    assert not Invoice.objects.exists()


def test_localstripe_accepts_connections_on_127_0_0_1_only(localstripe_server):
    port = int(localstripe_server.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # Another address of this machine: on Linux all of 127/8 reaches the loopback device,
    # so a server listening on every interface (`::` or 0.0.0.0) would answer here too.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()


def test_a_double_click_makes_one_payment(client, settings, stripe_server, catalog, owner):
    setup = _save_card(client, settings, stripe_server)
    first = _buy(client, catalog, setup["id"])
    second = _buy(client, catalog, setup["id"])
    assert first.status_code == second.status_code == 200
    assert PackPurchase.objects.count() == 1
    assert wait_for(lambda: _balance(owner) == 100)
    assert CreditLedgerEntry.objects.filter(organization=owner).count() == 1


def test_replaying_localstripes_event_changes_nothing(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    _buy(client, catalog, setup["id"])
    event = wait_for(lambda: StripeEvent.objects.filter(type="payment_intent.succeeded").first())
    response = signed_event_post(client, event.payload, settings.STRIPE_WEBHOOK_SECRET)
    assert response.json() == {"received": True, "replayed": True}
    assert _balance(owner) == 100
    assert Invoice.objects.count() == 1


def test_a_declined_card_grants_nothing_and_says_why(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server, number=DECLINED)
    # What Stripe.js hands the page, which shows it in its alert:
    assert setup["status_code"] == 402
    assert setup["error"]["message"] == "Your card was declined."
    # Even if the page posted the failed card anyway, nothing is charged.
    response = _buy(client, catalog, setup["id"])
    assert response.status_code == 402
    assert response.json()["message"] == "Your card was declined."
    assert "Failed — Your card was declined." in client.get("/billing/").content.decode()
    assert _balance(owner) == 0
    assert not Invoice.objects.exists()


def test_a_card_declined_at_charge_grants_nothing_and_the_page_says_why(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server, number=DECLINED_ON_CHARGE)
    response = _buy(client, catalog, setup["id"])
    assert response.status_code == 402
    assert response.json()["message"] == "Your card was declined."
    page = client.get("/billing/").content.decode()
    assert "Failed — Your card was declined." in page
    assert not wait_for(lambda: _balance(owner) > 0, timeout=2.5)
    assert not Invoice.objects.exists()


def test_subscribing_makes_the_organization_pro_with_its_credits(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    response = client.post(
        "/billing/plan/",
        {"plan": "pro", "setup_intent": setup["id"]},
        HTTP_ACCEPT="application/json",
    )
    assert response.json()["plan"] == "pro"
    assert wait_for(lambda: _balance(owner) == 1000)
    invoice = wait_for(lambda: Invoice.objects.filter(kind="subscription").first())
    assert (invoice.total, invoice.credits_added) == (2900, 1000)
    assert wait_for(lambda: len(mail.outbox) == 1)
    assert "Total: $29.00" in mail.outbox[0].body


def test_a_subscription_invoice_says_which_card_paid(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    client.post("/billing/plan/", {"plan": "pro", "setup_intent": setup["id"]})
    invoice = wait_for(lambda: Invoice.objects.filter(kind="subscription").first())
    assert invoice.payment_method == "Visa •••• 4242"


def test_canceling_keeps_pro_until_stripe_ends_the_subscription_then_free(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    client.post("/billing/plan/", {"plan": "pro", "setup_intent": setup["id"]})
    assert wait_for(lambda: _balance(owner) == 1000)
    client.post("/billing/plan/", {"plan": "free"})
    owner.refresh_from_db()
    assert owner.plan.slug == "pro"
    assert owner.subscription.cancel_at_period_end is True
    assert "then you are on Free" in client.get("/billing/").content.decode()
    # The period ends: Stripe deletes the subscription and says so.
    stripe_gateway.client().v1.subscriptions.cancel(owner.subscription.stripe_subscription_id)
    assert wait_for(lambda: Organization.objects.get(pk=owner.pk).plan.slug == "free")


def test_upgrading_a_subscription_moves_to_the_new_plan(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    client.post("/billing/plan/", {"plan": "pro", "setup_intent": setup["id"]})
    client.post("/billing/plan/", {"plan": "enterprise"})
    owner.refresh_from_db()
    assert owner.plan.slug == "enterprise"


def test_reconciliation_repairs_a_plan_that_drifted_from_stripe(
    client, settings, stripe_server, catalog, owner
):
    setup = _save_card(client, settings, stripe_server)
    client.post("/billing/plan/", {"plan": "pro", "setup_intent": setup["id"]})
    assert wait_for(lambda: Invoice.objects.filter(kind="subscription").exists())
    # An event went missing: our copy says Free while Stripe still bills Pro.
    free = PlanFactory(slug="free")
    Organization.objects.filter(pk=owner.pk).update(plan=free)
    owner.subscription.__class__.objects.filter(pk=owner.subscription.pk).update(status="canceled")
    owner.refresh_from_db()
    tasks.reconcile_subscriptions()
    owner.refresh_from_db()
    assert owner.plan.slug == "pro"
    assert owner.subscription.status == "active"
    change = owner.subscription_changes.get(source="reconciliation")
    assert (change.from_plan.slug, change.to_plan.slug) == ("free", "pro")
    assert change.details["changes"]["status"] == ["canceled", "active"]
    assert services.reconcile_subscription(organization=owner) == {}


def test_a_customer_stripe_no_longer_knows_is_replaced_when_a_card_is_saved(
    client, settings, stripe_server, catalog, owner
):
    Organization.objects.filter(pk=owner.pk).update(stripe_customer_id="cus_wiped")
    setup = _save_card(client, settings, stripe_server)
    assert setup["status"] == "succeeded"
    owner.refresh_from_db()
    assert owner.stripe_customer_id.startswith("cus_")
    assert owner.stripe_customer_id != "cus_wiped"

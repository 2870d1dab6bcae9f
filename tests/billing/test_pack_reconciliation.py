"""The sweep that credits pack purchases whose Stripe event was lost, against a real
localstripe (issue 20's soak: localstripe died right after the payment, the customer paid
and got no credits)."""

import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Organization
from billing import services, stripe_gateway, tasks
from billing.models import CreditLedgerEntry, Invoice, PackPurchase
from tests.accounts.factories import MembershipFactory, OrganizationFactory
from tests.billing import stripe_payloads as payloads
from tests.billing.conftest import confirm_card_setup, sell_starter_pack, signed_event_post

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"


@pytest.fixture
def events_lost(stripe_server, settings):
    """localstripe's events go nowhere, as if it died before sending them."""
    response = requests.post(
        f"{stripe_server}/_config/webhooks/tests",
        json={"url": "http://127.0.0.1:9/", "secret": settings.STRIPE_WEBHOOK_SECRET},
        timeout=5,
    )
    response.raise_for_status()
    return stripe_server


@pytest.fixture
def pack(events_lost):
    return sell_starter_pack()


@pytest.fixture
def owner(client, pack):
    membership = MembershipFactory(organization=OrganizationFactory(billing_email=""))
    client.force_login(membership.user)
    return membership.organization


def _buy(client, settings, stripe_server, pack, number=VISA) -> PackPurchase:
    client_secret = client.post("/billing/card/").json()["client_secret"]
    confirm_card_setup(stripe_server, client_secret, number, settings.STRIPE_PUBLISHABLE_KEY)
    client.post(
        f"/billing/packs/{pack.pk}/buy/",
        {"token": "click-0001-abcdef", "setup_intent": client_secret.split("_secret_")[0]},
    )
    purchase = PackPurchase.objects.get()
    # Old enough for the sweep to ask Stripe about it.
    PackPurchase.objects.filter(pk=purchase.pk).update(
        created_at=purchase.created_at
        - timedelta(seconds=settings.PACK_RECONCILE_AFTER_SECONDS + 1)
    )
    return purchase


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def test_a_paid_purchase_whose_event_never_arrives_is_credited_once_by_the_sweep(
    client, settings, events_lost, pack, owner
):
    purchase = _buy(client, settings, events_lost, pack)
    assert _balance(owner) == 0

    assert tasks.reconcile_pack_purchases() == 1
    tasks.reconcile_pack_purchases()

    assert _balance(owner) == 100
    assert CreditLedgerEntry.objects.filter(organization=owner, kind="purchase").count() == 1
    assert Invoice.objects.get(organization=owner).stripe_payment_intent_id == (
        purchase.stripe_payment_intent_id
    )
    assert PackPurchase.objects.get().status == PackPurchase.Status.SUCCEEDED


def test_the_sweep_racing_stripes_event_credits_once(client, settings, events_lost, pack, owner):
    purchase = _buy(client, settings, events_lost, pack)
    intent = stripe_gateway.retrieve_payment_intent(purchase.stripe_payment_intent_id)
    barrier = threading.Barrier(4)

    def sweep():
        barrier.wait()
        try:
            tasks.reconcile_pack_purchases()
        finally:
            connection.close()

    def deliver():
        event = payloads.event("payment_intent.succeeded", intent)
        barrier.wait()
        try:
            signed_event_post(Client(), event, settings.STRIPE_WEBHOOK_SECRET)
        finally:
            connection.close()

    threads = [threading.Thread(target=target) for target in (sweep, sweep, deliver, deliver)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert _balance(owner) == 100
    assert CreditLedgerEntry.objects.filter(organization=owner, kind="purchase").count() == 1
    assert Invoice.objects.filter(organization=owner).count() == 1


def test_a_payment_intent_not_succeeded_grants_nothing(client, settings, events_lost, pack, owner):
    purchase = _buy(client, settings, events_lost, pack, number=DECLINED_ON_CHARGE)
    intent = stripe_gateway.retrieve_payment_intent(purchase.stripe_payment_intent_id)
    assert intent["status"] == "requires_payment_method"

    assert tasks.reconcile_pack_purchases() == 0

    assert _balance(owner) == 0
    assert not Invoice.objects.exists()
    assert PackPurchase.objects.get().status == PackPurchase.Status.FAILED


def test_a_purchase_just_made_is_left_to_stripes_event(client, settings, events_lost, pack, owner):
    _buy(client, settings, events_lost, pack)
    PackPurchase.objects.update(created_at=timezone.now())

    assert services.uncredited_pack_purchases() == []


def test_the_wait_before_asking_stripe_is_the_operators(client, settings, events_lost, pack, owner):
    purchase = _buy(client, settings, events_lost, pack)
    settings.PACK_RECONCILE_AFTER_SECONDS = 60
    PackPurchase.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    assert services.uncredited_pack_purchases() == [purchase.pk]

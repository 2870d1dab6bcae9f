"""Stripe's event for an auto-recharge's PaymentIntent, which is created and confirmed in one
call: the event can come back before the purchase has stored the PaymentIntent's id."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client

from accounts.models import Organization
from billing.models import CreditLedgerEntry, PackPurchase, StripeEvent
from tests.accounts.factories import MembershipFactory, OrganizationFactory
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
def charging(organization):
    """An auto-recharge's purchase whose charge is under way: its PaymentIntent id unknown."""
    return PackPurchaseFactory(
        organization=organization,
        token="auto-recharge-1",
        stripe_payment_intent_id="",
        status=PackPurchase.Status.STARTED,
    )


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def _event_for(purchase, payment_intent_id: str) -> dict:
    intent = payloads.pack_payment_intent(purchase, id=payment_intent_id)
    return payloads.event("payment_intent.succeeded", intent)


def test_an_event_before_its_payment_intent_is_stored_is_refused_for_later(
    client, settings, organization, charging
):
    event = _event_for(charging, "pi_auto")
    response = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert not StripeEvent.objects.exists()
    PackPurchase.objects.filter(pk=charging.pk).update(stripe_payment_intent_id="pi_auto")
    response = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    assert response.status_code == 200
    assert _balance(organization) == charging.credits


def test_an_event_naming_a_purchase_it_did_not_pay_for_grants_nothing(
    client, settings, organization, charging
):
    PackPurchase.objects.filter(pk=charging.pk).update(stripe_payment_intent_id="pi_real")
    response = signed_event_post(
        client, _event_for(charging, "pi_forged"), settings.STRIPE_WEBHOOK_SECRET
    )
    assert response.status_code == 200
    assert _balance(organization) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_that_overtakes_the_charge_waits_for_it_and_grants_once(
    settings, organization, charging
):
    event = _event_for(charging, "pi_auto")
    statuses = []
    locked = threading.Event()

    def deliver():
        locked.wait()
        try:
            response = signed_event_post(
                Client(raise_request_exception=False), event, settings.STRIPE_WEBHOOK_SECRET
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    thread = threading.Thread(target=deliver)
    thread.start()
    with transaction.atomic():
        # What the charge holds while Stripe answers (billing.services.recharging).
        purchase = PackPurchase.objects.select_for_update().get(pk=charging.pk)
        locked.set()
        time.sleep(0.5)  # the event arrives meanwhile and waits on this row
        purchase.stripe_payment_intent_id = "pi_auto"
        purchase.save(update_fields=["stripe_payment_intent_id"])
    thread.join()
    assert statuses == [200]
    assert _balance(organization) == charging.credits
    assert CreditLedgerEntry.objects.filter(organization=organization).count() == 1

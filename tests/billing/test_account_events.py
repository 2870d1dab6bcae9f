"""Billing changes that organizations hear about through their webhook endpoints."""

import pytest

from billing import services
from tests.accounts.factories import OrganizationFactory
from tests.billing import stripe_payloads as payloads
from tests.billing.factories import PackPurchaseFactory, give_credits
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def _events(organization, event_type):
    return list(Event.objects.filter(organization=organization, type=event_type))


def test_credits_low_is_emitted_when_a_reservation_crosses_the_threshold():
    organization = OrganizationFactory(low_credit_threshold=10)
    WebhookEndpointFactory(organization=organization)
    give_credits(organization, 12)
    services.reserve_credits(organization=organization, amount=3, reference="job:1")
    (event,) = _events(organization, "credits.low")
    assert event.data == {"organization": organization.slug, "balance": 9, "threshold": 10}


def test_credits_low_is_emitted_once_per_crossing():
    organization = OrganizationFactory(low_credit_threshold=10)
    WebhookEndpointFactory(organization=organization)
    give_credits(organization, 12)
    services.reserve_credits(organization=organization, amount=3, reference="job:1")
    services.reserve_credits(organization=organization, amount=3, reference="job:2")
    assert len(_events(organization, "credits.low")) == 1
    give_credits(organization, 20)
    services.reserve_credits(organization=organization, amount=20, reference="job:3")
    assert len(_events(organization, "credits.low")) == 2


def test_balance_that_stays_above_the_threshold_emits_nothing():
    organization = OrganizationFactory(low_credit_threshold=10)
    WebhookEndpointFactory(organization=organization)
    give_credits(organization, 50)
    services.reserve_credits(organization=organization, amount=3, reference="job:1")
    assert _events(organization, "credits.low") == []


def test_paid_pack_invoice_emits_invoice_paid():
    organization = OrganizationFactory()
    WebhookEndpointFactory(organization=organization)
    purchase = PackPurchaseFactory(
        organization=organization, pack__credits=100, pack__price_cents=500
    )
    invoice = services.apply_pack_payment(payment_intent=payloads.pack_payment_intent(purchase))
    (event,) = _events(organization, "invoice.paid")
    assert event.data["id"] == invoice.number
    assert (event.data["credits_added"], event.data["total"]) == (100, 500)

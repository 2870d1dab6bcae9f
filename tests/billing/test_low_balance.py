"""The credits-low rule: a change that takes the balance below the threshold is announced."""

import pytest

from billing.services import low_balance
from tests.accounts.factories import OrganizationFactory
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def test_credits_low_is_announced_once_per_crossing_of_the_threshold():
    organization = OrganizationFactory(low_credit_threshold=10)
    WebhookEndpointFactory(organization=organization)
    low_balance.notify_if_credits_low(organization, 12, 11)  # still above
    low_balance.notify_if_credits_low(organization, 11, 9)  # crosses
    low_balance.notify_if_credits_low(organization, 9, 5)  # already below
    low_balance.notify_if_credits_low(organization, 5, 50)  # topped up
    low_balance.notify_if_credits_low(organization, 50, 3)  # crosses again
    events = Event.objects.filter(organization=organization, type="credits.low").order_by("id")
    assert [event.data for event in events] == [
        {"organization": organization.slug, "balance": 9, "threshold": 10},
        {"organization": organization.slug, "balance": 3, "threshold": 10},
    ]

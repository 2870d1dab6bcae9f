"""Billing's refusals reach the API in the error contract, whoever raises them."""

import pytest

from billing import services
from billing.stripe_gateway import StripeUnavailable
from common.api.errors import api_exception_handler
from tests.accounts.factories import OrganizationFactory
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db


def test_a_short_balance_is_answered_402_insufficient_credits_with_the_exact_sentence():
    organization = OrganizationFactory()
    give_credits(organization, 2)
    with pytest.raises(services.InsufficientCredits) as refusal:
        services.reserve_credits(organization=organization, amount=5, reference="job:1")
    response = api_exception_handler(refusal.value, {})
    assert response.status_code == 402
    assert response.data == {
        "error": {
            "code": "insufficient_credits",
            "message": "Insufficient credits to complete request",
            "details": "This request requires 5 credits, but you have 2 remaining",
        }
    }


def test_a_plan_change_already_running_is_answered_409_conflict():
    response = api_exception_handler(services.PlanChangeInProgress(), {})
    assert response.status_code == 409
    assert response.data["error"] == {
        "code": "conflict",
        "message": "Your plan is already being changed. Wait a moment and reload the page.",
        "details": None,
    }


def test_stripe_being_unreachable_is_answered_503_with_stripes_reason():
    response = api_exception_handler(StripeUnavailable("Connection refused"), {})
    assert response.status_code == 503
    assert response.data["error"]["code"] == "service_unavailable"
    assert response.data["error"]["details"] == "Connection refused"

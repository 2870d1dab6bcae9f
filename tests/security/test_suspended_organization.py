"""A suspended organization cannot generate, make keys or buy on the pages either."""

import pytest

from accounts.models import ApiKey, Organization
from billing.models import CreditPack, PackPurchase, Subscription
from generation import catalog
from generation.models import Job
from tests.accounts.factories import MembershipFactory
from tests.accounts.pages import logged_in, page_messages
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db

PLAYGROUND_FORM = {
    "prompt": "a lighthouse at dusk",
    "model": "imagen-v2",
    "size": "512x512",
    "steps": 20,
    "guidance_scale": 7.5,
    "num_images": 1,
}


@pytest.fixture
def owner(client):
    catalog.clear_local_cache()
    membership = MembershipFactory(organization__name="Acme")
    give_credits(membership.organization, 50)
    Organization.objects.filter(pk=membership.organization_id).update(
        status=Organization.Status.SUSPENDED
    )
    logged_in(client, membership)
    return membership


def _balance(membership) -> int:
    return Organization.objects.get(pk=membership.organization_id).credit_balance


def test_the_playground_refuses_to_submit_and_charges_nothing(client, owner):
    response = client.post("/playground/", PLAYGROUND_FORM)
    assert response.status_code == 200
    assert page_messages(response) == [
        "Organization suspended. Acme is suspended: it cannot generate images. "
        "Contact support to lift the suspension."
    ]
    assert not Job.objects.exists()
    assert _balance(owner) == 50


def test_no_api_key_can_be_created(client, owner):
    response = client.post("/keys/", {"name": "ci", "scopes": ["generate", "read"]})
    assert response.status_code == 403
    assert "Acme is suspended: it cannot create API keys" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_no_credit_pack_can_be_bought(client, owner):
    pack = CreditPack.objects.filter(active=True).first()
    response = client.post(
        f"/billing/packs/{pack.pk}/buy/", {"token": "t" * 16, "setup_intent": "seti_123"}
    )
    assert response.status_code == 403
    assert "Acme is suspended: it cannot buy credits" in response.json()["message"]
    assert not PackPurchase.objects.exists()
    assert _balance(owner) == 50


def test_no_paid_plan_can_be_subscribed(client, owner):
    response = client.post(
        "/billing/plan/",
        {"plan": "pro", "setup_intent": "seti_123"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403
    assert "Acme is suspended: it cannot subscribe to a paid plan" in response.json()["message"]
    assert not Subscription.objects.exists()

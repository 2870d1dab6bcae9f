import pytest

from tests.accounts.factories import OrganizationFactory, PlanFactory, api_key_for, auth_header
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db


def test_account_shows_organization_plan_credits_and_secret(client):
    organization = OrganizationFactory(plan=PlanFactory(slug="pro"))
    give_credits(organization, 120)
    body = client.get("/v1/account", **auth_header(api_key_for(organization))).json()
    assert body == {
        "organization": {
            "id": str(organization.public_id),
            "name": organization.name,
            "slug": organization.slug,
        },
        "plan": {"id": "pro", "name": "Pro", "requests_per_minute": 100, "requests_per_day": 10000},
        "credits": {"balance": 120},
        "webhook_signing_secret": organization.webhook_signing_secret,
    }


def test_account_reflects_staff_limit_overrides(client):
    organization = OrganizationFactory(requests_per_minute_override=7, requests_per_day_override=70)
    plan = client.get("/v1/account", **auth_header(api_key_for(organization))).json()["plan"]
    assert (plan["requests_per_minute"], plan["requests_per_day"]) == (7, 70)


def test_account_of_another_organization_is_never_shown(client):
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    body = client.get("/v1/account", **auth_header(api_key_for(mine))).json()
    assert body["organization"]["slug"] == mine.slug != theirs.slug

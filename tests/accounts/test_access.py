"""The page guards of accounts/access.py, as each app's pages answer with them.

accounts' and dashboard's pages have no manager-only page: a member's refusal there is the
service's message (tests/accounts/test_pages_team.py, tests/dashboard/test_settings.py).
"""

import pytest

from accounts.models import Organization
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.accounts.pages import page_messages
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

PAGES = ["/keys/", "/team/", "/dashboard/", "/jobs/", "/settings/", "/billing/", "/webhooks/"]


def _signed_in(client, role=None):
    user = UserFactory() if role is None else MembershipFactory(role=role).user
    client.force_login(user)
    return user


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_an_anonymous_visitor_is_sent_to_log_in_from_a_manager_only_page(client):
    response = client.post("/billing/plan/", {"plan": "pro"})
    assert response["Location"] == "/login/?next=/billing/plan/"


@pytest.mark.parametrize("path", PAGES)
def test_a_user_without_an_organization_is_asked_to_create_one(client, path):
    _signed_in(client)
    response = client.get(path)
    assert response["Location"] == "/organizations/new/"
    assert page_messages(response) == [
        "You are not in any organization yet: create one to continue."
    ]


def test_a_member_is_refused_a_billing_change(client):
    user = _signed_in(client, role="member")
    response = client.post("/billing/plan/", {"plan": "pro"})
    assert response.status_code == 403
    assert Organization.objects.get(memberships__user=user).plan.slug == "free"


def test_a_member_is_refused_a_webhook_change(client):
    user = _signed_in(client, role="member")
    endpoint = WebhookEndpointFactory(organization=Organization.objects.get(memberships__user=user))
    response = client.post(f"/webhooks/{endpoint.public_id}/delete/")
    assert response.status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_member_reads_the_webhook_endpoints_but_cannot_add_one(client):
    _signed_in(client, role="member")
    assert client.get("/webhooks/").status_code == 200
    response = client.post("/webhooks/", {"url": "https://example.com/hook"})
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_pass_the_manager_guard(client, role):
    _signed_in(client, role=role)
    # Past the guard, the view itself answers: there is no such plan.
    assert client.post("/billing/plan/", {"plan": "no-such-plan"}).status_code == 404

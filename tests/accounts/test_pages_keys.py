import re

import pytest

from accounts import services
from accounts.models import ApiKey
from tests.accounts.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    api_key_for,
    auth_header,
)
from tests.accounts.pages import logged_in, member_of, page_messages
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db


def _secret_on(response) -> str:
    pattern = r'value="(sk_live_[a-z0-9]{8}_[A-Za-z0-9_-]{32,})"'
    match = re.search(pattern, response.content.decode())
    assert match, "no key on the page"
    return match.group(1)


def test_dashboard_shows_organization_plan_balance_and_keys(client):
    owner = MembershipFactory(organization__name="Acme", organization__plan=PlanFactory(slug="pro"))
    give_credits(owner.organization, 1234)
    key = services.create_api_key(organization=owner.organization, name="ci-pipeline").api_key
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "Acme" in content
    assert "Pro" in content
    assert "1,234" in content
    assert "ci-pipeline" in content
    assert f"sk_live_{key.prefix}_" in content


def test_dashboard_has_the_navigation(client):
    content = logged_in(client, MembershipFactory()).get("/dashboard/").content.decode()
    for href in ("/dashboard/", "/keys/", "/team/", "/billing/", "/webhooks/", "/jobs/", "/docs/"):
        assert f'href="{href}"' in content
    assert 'action="/logout/"' in content


def test_created_key_is_shown_once_and_works(client):
    owner = MembershipFactory()
    logged_in(client, owner)
    response = client.post("/keys/", {"name": "production", "scopes": ["generate", "read"]})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    secret = _secret_on(response)
    assert 'data-copy-target="new-api-key"' in response.content.decode()
    assert client.get("/v1/account", **auth_header(secret)).status_code == 200

    listing = client.get("/keys/").content.decode()
    assert "production" in listing
    assert secret not in listing
    assert secret.rsplit("_", 1)[1] not in client.get("/dashboard/").content.decode()
    key = ApiKey.objects.get(name="production")
    assert key.scopes == ["generate", "read"]
    assert key.created_by == owner.user


def test_key_needs_a_name(client):
    logged_in(client, MembershipFactory())
    response = client.post("/keys/", {"name": "", "scopes": ["read"]})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_asks_for_confirmation_then_refuses_the_key_at_once(client):
    owner = MembershipFactory()
    secret = api_key_for(owner.organization)
    key = ApiKey.objects.get(organization=owner.organization)
    logged_in(client, owner)
    confirm = client.get(f"/keys/{key.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke" in confirm.content.decode()
    assert client.get("/v1/account", **auth_header(secret)).status_code == 200

    response = client.post(f"/keys/{key.pk}/revoke/")
    assert response.status_code == 302
    assert any("is revoked" in message for message in page_messages(response))
    assert client.get("/v1/account", **auth_header(secret)).status_code == 401


def test_member_can_revoke_their_own_key_but_not_others(client):
    organization = OrganizationFactory()
    member = member_of(organization)
    logged_in(client, member)
    client.post("/keys/", {"name": "mine", "scopes": ["read"]})
    mine = ApiKey.objects.get(name="mine")
    theirs_secret = api_key_for(organization)
    theirs = ApiKey.objects.get(name="test")

    client.post(f"/keys/{mine.pk}/revoke/")
    response = client.post(f"/keys/{theirs.pk}/revoke/")
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert any("Only owners, admins and the person" in text for text in page_messages(response))
    assert client.get("/v1/account", **auth_header(theirs_secret)).status_code == 200


def test_another_organizations_key_is_404(client):
    mine = MembershipFactory()
    other_organization = OrganizationFactory()
    other_secret = services.create_api_key(organization=other_organization, name="theirs").secret
    other_key = ApiKey.objects.get(organization=other_organization)
    logged_in(client, mine)
    assert client.get(f"/keys/{other_key.pk}/revoke/").status_code == 404
    assert client.post(f"/keys/{other_key.pk}/revoke/").status_code == 404
    assert client.get("/v1/account", **auth_header(other_secret)).status_code == 200
    assert "theirs" not in client.get("/keys/").content.decode()
    assert "theirs" not in client.get("/dashboard/").content.decode()


def test_members_see_revoke_only_on_their_own_keys(client):
    organization = OrganizationFactory()
    member = member_of(organization)
    theirs = services.create_api_key(organization=organization, name="theirs").api_key
    mine = services.create_api_key(
        organization=organization, name="mine", created_by=member.user
    ).api_key
    content = logged_in(client, member).get("/keys/").content.decode()
    assert f'href="/keys/{mine.pk}/revoke/"' in content
    assert f'href="/keys/{theirs.pk}/revoke/"' not in content

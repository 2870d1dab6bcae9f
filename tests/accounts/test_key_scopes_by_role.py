"""A key can do no more than the dashboard lets the person who created it do."""

import re

import pytest

from accounts import errors, services
from accounts.models import ApiKey
from tests.accounts.factories import OrganizationFactory, auth_header
from tests.accounts.pages import logged_in, member_of
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

ALL_SCOPES = ["generate", "read", "webhooks"]


def _secret_on(response) -> str:
    match = re.search(
        r'value="(sk_live_[a-z0-9]{8}_[A-Za-z0-9_-]{32,})"', response.content.decode()
    )
    assert match, "no key on the page"
    return match.group(1)


@pytest.fixture
def organization():
    return OrganizationFactory()


def _key_of(membership, **kwargs) -> str:
    return services.create_api_key(
        organization=membership.organization, name="k", created_by=membership.user, **kwargs
    ).secret


def test_a_member_asking_for_the_webhooks_scope_on_the_keys_page_is_refused(client, organization):
    logged_in(client, member_of(organization))
    response = client.post("/keys/", {"name": "sneaky", "scopes": ALL_SCOPES})
    assert response.status_code == 200
    assert "webhooks is not a scope your role can give a key" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_member_asking_the_service_for_the_webhooks_scope_is_refused(organization):
    member = member_of(organization)
    with pytest.raises(errors.ScopeNotAllowed, match="Members cannot give a key the webhooks"):
        services.create_api_key(
            organization=organization, name="k", created_by=member.user, scopes=ALL_SCOPES
        )
    assert not ApiKey.objects.exists()


def test_a_member_gets_a_key_with_the_scopes_they_are_allowed(client, organization):
    logged_in(client, member_of(organization))
    response = client.post("/keys/", {"name": "mine", "scopes": ["generate", "read"]})
    assert response.status_code == 201
    assert ApiKey.objects.get().scopes == ["generate", "read"]


def test_the_keys_page_offers_a_member_only_their_scopes(client, organization):
    content = logged_in(client, member_of(organization)).get("/keys/").content.decode()
    assert 'value="read"' in content
    assert 'value="webhooks"' not in content


def test_a_members_key_without_chosen_scopes_gets_the_members_scopes(organization):
    member = member_of(organization)
    new_key = services.create_api_key(organization=organization, name="k", created_by=member.user)
    assert new_key.api_key.scopes == ["generate", "read"]


def test_a_members_key_cannot_add_or_delete_webhook_endpoints(client, organization):
    headers = auth_header(_key_of(member_of(organization)))
    endpoint = WebhookEndpointFactory(organization=organization)
    created = client.post(
        "/v1/webhook-endpoints",
        {"url": "https://example.com/hook"},
        content_type="application/json",
        **headers,
    )
    deleted = client.delete(f"/v1/webhook-endpoints/{endpoint.public_id}", **headers)
    assert (created.status_code, deleted.status_code) == (403, 403)
    assert created.json()["error"]["code"] == "forbidden"
    assert list(WebhookEndpoint.objects.all()) == [endpoint]


def test_a_members_key_lists_endpoints_without_their_secrets(client, organization):
    endpoint = WebhookEndpointFactory(organization=organization)
    headers = auth_header(_key_of(member_of(organization)))
    response = client.get("/v1/webhook-endpoints", **headers)
    assert response.status_code == 200
    [listed] = response.json()["data"]
    assert listed["id"] == endpoint.public_id
    assert listed["secret"] is None
    assert endpoint.secret not in response.content.decode()


def test_a_members_key_reads_the_account_without_the_signing_secret(client, organization):
    response = client.get("/v1/account", **auth_header(_key_of(member_of(organization))))
    assert response.status_code == 200
    assert response.json()["webhook_signing_secret"] is None
    assert organization.webhook_signing_secret not in response.content.decode()


def test_an_admins_key_with_the_webhooks_scope_sees_the_secrets(client, organization):
    endpoint = WebhookEndpointFactory(organization=organization)
    logged_in(client, member_of(organization, role="admin"))
    created = client.post("/keys/", {"name": "ops", "scopes": ALL_SCOPES})
    assert created.status_code == 201
    headers = auth_header(_secret_on(created))
    listed = client.get("/v1/webhook-endpoints", **headers).json()["data"]
    account = client.get("/v1/account", **headers).json()
    assert listed[0]["secret"] == endpoint.secret
    assert account["webhook_signing_secret"] == organization.webhook_signing_secret


def test_an_admins_key_without_the_webhooks_scope_sees_no_secret(client, organization):
    admin = member_of(organization, role="admin")
    headers = auth_header(_key_of(admin, scopes=["read"]))
    assert client.get("/v1/account", **headers).json()["webhook_signing_secret"] is None


def test_demoting_an_admin_takes_the_webhooks_scope_from_their_keys(client, organization):
    owner = member_of(organization, role="owner")
    admin = member_of(organization, role="admin")
    headers = auth_header(_key_of(admin, scopes=ALL_SCOPES))
    services.change_role(
        organization=organization, actor=owner.user, membership=admin, role="member"
    )
    response = client.get("/v1/account", **headers)
    assert response.status_code == 200
    assert response.json()["webhook_signing_secret"] is None
    assert ApiKey.objects.get().scopes == ["generate", "read"]


def test_someone_outside_the_organization_cannot_create_its_keys(organization):
    stranger = member_of(OrganizationFactory())
    with pytest.raises(errors.NotAllowed):
        services.create_api_key(organization=organization, name="k", created_by=stranger.user)
    assert not ApiKey.objects.exists()

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import api_key_cache, services
from accounts.models import ApiKey, Organization
from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header

pytestmark = pytest.mark.django_db


def _unauthorized(response):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_bearer_key_authenticates(client):
    organization = OrganizationFactory()
    response = client.get("/v1/account", **auth_header(api_key_for(organization)))
    assert response.status_code == 200
    assert response.json()["organization"]["slug"] == organization.slug


def test_token_scheme_is_accepted(client):
    secret = api_key_for(OrganizationFactory())
    response = client.get("/v1/account", HTTP_AUTHORIZATION=f"Token {secret}")
    assert response.status_code == 200


def test_key_secret_is_not_stored_anywhere(client):
    secret = api_key_for(OrganizationFactory())
    key_part = secret.split("_", 3)[3]  # sk_live_<prefix>_<secret part>
    stored = list(ApiKey.objects.values_list("prefix", "secret_hash", "name"))
    assert all(secret not in str(row) and key_part not in str(row) for row in stored)
    assert stored[0][1] == hashlib.sha256(secret.split("_", 3)[3].encode()).hexdigest()


def test_key_format_is_prefixed_and_long():
    secret = api_key_for(OrganizationFactory())
    prefix, secret_part = secret.removeprefix("sk_live_").split("_", 1)
    assert len(prefix) == 8
    assert len(secret_part) >= 32


def test_missing_key_is_401(client):
    _unauthorized(client.get("/v1/account"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer sk_live_nothing",
        "Bearer sk_live_abcdefgh_" + "x" * 40,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "sk_live_abcdefgh_" + "x" * 40,
    ],
)
def test_malformed_or_unknown_key_is_401(client, header):
    OrganizationFactory()
    _unauthorized(client.get("/v1/account", HTTP_AUTHORIZATION=header))


def test_right_prefix_wrong_secret_is_401(client):
    secret = api_key_for(OrganizationFactory())
    tampered = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    _unauthorized(client.get("/v1/account", **auth_header(tampered)))


def test_revoked_key_is_refused_on_the_next_request(client):
    organization = OrganizationFactory()
    new_key = services.create_api_key(organization=organization, name="ci")
    assert client.get("/v1/account", **auth_header(new_key.secret)).status_code == 200
    services.revoke_api_key(api_key=new_key.api_key)
    _unauthorized(client.get("/v1/account", **auth_header(new_key.secret)))


def test_expired_key_is_401(client):
    secret = api_key_for(OrganizationFactory(), expires_at=timezone.now() - timedelta(seconds=1))
    _unauthorized(client.get("/v1/account", **auth_header(secret)))


def test_suspended_organization_key_is_403(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    response = client.get("/v1/account", **auth_header(secret))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_key_without_read_scope_is_403(client):
    secret = api_key_for(OrganizationFactory(), scopes=[ApiKey.Scope.GENERATE])
    response = client.get("/v1/account", **auth_header(secret))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_last_used_is_written_at_most_once_a_minute(client):
    new_key = services.create_api_key(organization=OrganizationFactory(), name="ci")
    client.get("/v1/account", **auth_header(new_key.secret))
    new_key.api_key.refresh_from_db()
    first_use = new_key.api_key.last_used_at
    assert first_use is not None
    client.get("/v1/account", **auth_header(new_key.secret))
    new_key.api_key.refresh_from_db()
    assert new_key.api_key.last_used_at == first_use


def test_key_authentication_is_one_indexed_query():
    secret = api_key_for(OrganizationFactory())
    services.authenticate_api_key(secret)  # first use writes last_used_at
    api_key_cache.forget_all()  # what this process remembers would need no query at all
    with CaptureQueriesContext(connection) as queries:
        api_key = services.authenticate_api_key(secret)
        assert api_key.organization.plan.slug == "free"
    assert len(queries) == 1
    assert "prefix" in queries[0]["sql"]


def test_account_read_runs_at_most_four_queries(client, django_assert_max_num_queries):
    secret = api_key_for(OrganizationFactory())
    with django_assert_max_num_queries(4):
        response = client.get("/v1/account", **auth_header(secret))
    assert response.status_code == 200

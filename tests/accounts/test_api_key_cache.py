"""Keys remembered between requests (accounts/api_key_cache.py) never outlive a change."""

import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import api_key_cache, errors, services
from accounts.models import ApiKey, Organization
from billing import services as billing
from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header

pytestmark = pytest.mark.django_db

LOCAL_MEMORY_ONLY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _authenticated_twice(secret: str) -> list:
    services.authenticate_api_key(secret)  # loads the key and writes last_used_at
    with CaptureQueriesContext(connection) as queries:
        api_key = services.authenticate_api_key(secret)
        assert api_key.organization.plan.slug == "free"
    return queries.captured_queries


@pytest.mark.redis
def test_a_remembered_key_authenticates_without_a_query():
    assert _authenticated_twice(api_key_for(OrganizationFactory())) == []


@override_settings(CACHES=LOCAL_MEMORY_ONLY)
def test_without_a_shared_cache_every_request_loads_the_key():
    assert len(_authenticated_twice(api_key_for(OrganizationFactory()))) == 1


@pytest.mark.redis
def test_a_remembered_key_is_refused_on_the_request_after_its_revocation(client):
    new_key = services.create_api_key(organization=OrganizationFactory(), name="ci")
    for _ in range(2):
        assert client.get("/v1/account", **auth_header(new_key.secret)).status_code == 200
    services.revoke_api_key(api_key=new_key.api_key)
    assert client.get("/v1/account", **auth_header(new_key.secret)).status_code == 401


@pytest.mark.redis
def test_suspending_and_unsuspending_reach_a_remembered_key_at_once(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    assert client.get("/v1/account", **auth_header(secret)).status_code == 200
    services.suspend_organization(organization=organization)
    assert client.get("/v1/account", **auth_header(secret)).status_code == 403
    services.unsuspend_organization(organization=organization)
    assert client.get("/v1/account", **auth_header(secret)).status_code == 200


@pytest.mark.redis
def test_a_limit_saved_in_the_admin_applies_to_the_next_request(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    client.get("/v1/models", **auth_header(secret))
    organization.requests_per_minute_override = 7
    organization.save()
    response = client.get("/v1/models", **auth_header(secret))
    assert response["X-RateLimit-Limit"] == "7"


@pytest.mark.redis
def test_the_balance_is_read_fresh_not_remembered(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    assert client.get("/v1/account", **auth_header(secret)).json()["credits"]["balance"] == 0
    billing.grant_credits(organization=organization, amount=25, reference="test:grant")
    assert client.get("/v1/account", **auth_header(secret)).json()["credits"]["balance"] == 25


@pytest.mark.redis
def test_each_request_gets_its_own_copy_of_the_organization():
    secret = api_key_for(OrganizationFactory())
    first = services.authenticate_api_key(secret)
    first.organization.name = "changed by one request"
    first.organization.plan.requests_per_minute = 1
    second = services.authenticate_api_key(secret)
    assert second.organization.name != "changed by one request"
    assert second.organization.plan.requests_per_minute != 1


@pytest.mark.redis
def test_losing_the_shared_generation_makes_every_key_reload():
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    services.authenticate_api_key(secret)
    # A change no signal reports, then Redis restarts empty: the old generation is gone.
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    cache.clear()
    with pytest.raises(errors.SuspendedOrganization):
        services.authenticate_api_key(secret)


@pytest.mark.redis
def test_an_entry_older_than_its_maximum_age_is_reloaded(monkeypatch):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    services.authenticate_api_key(secret)
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    monkeypatch.setattr(api_key_cache, "MAX_AGE_SECONDS", 0)
    with pytest.raises(errors.SuspendedOrganization):
        services.authenticate_api_key(secret)


def _another_process_changes_keys():
    # What forget_all() does in another web process: a new generation in Redis, while this
    # process still holds its entries.
    from common.fastpaths.redis_cache import redis_client

    client = redis_client(caches["default"])
    client.set(caches["default"].make_and_validate_key(api_key_cache.GENERATION_KEY), "new")


@pytest.mark.redis
def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(client):
    new_key = services.create_api_key(organization=OrganizationFactory(), name="ci")
    assert client.get("/v1/models", **auth_header(new_key.secret)).status_code == 200
    ApiKey.objects.filter(pk=new_key.api_key.pk).update(revoked_at=timezone.now())
    _another_process_changes_keys()
    assert client.get("/v1/models", **auth_header(new_key.secret)).status_code == 401


@pytest.mark.redis
def test_an_organization_suspended_by_another_process_is_refused_on_the_next_submission(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    assert client.get("/v1/models", **auth_header(secret)).status_code == 200
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    _another_process_changes_keys()
    response = client.post(
        "/v2/images/generate",
        {"prompt": "a lighthouse", "model": "imagen-fast"},
        content_type="application/json",
        **auth_header(secret),
    )
    assert response.status_code == 403


@pytest.mark.redis
def test_a_limit_changed_by_another_process_counts_in_the_new_window(client):
    organization = OrganizationFactory()
    secret = api_key_for(organization)
    client.get("/v1/models", **auth_header(secret))
    Organization.objects.filter(pk=organization.pk).update(requests_per_minute_override=7)
    _another_process_changes_keys()
    response = client.get("/v1/models", **auth_header(secret))
    assert response["X-RateLimit-Limit"] == "7"


@pytest.mark.redis
def test_a_read_with_a_remembered_key_makes_one_redis_round_trip(client, monkeypatch):
    from common.fastpaths.redis_cache import redis_client

    secret = api_key_for(OrganizationFactory())
    client.get("/v1/models", **auth_header(secret))
    redis = redis_client(caches["default"])
    round_trips = []
    original_command, original_pipeline = type(redis).execute_command, type(redis).pipeline

    def counting_pipeline(self, *args, **kwargs):
        pipe = original_pipeline(self, *args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: round_trips.append("pipeline") or execute(*a, **k)
        return pipe

    def counting_command(self, *args, **kwargs):
        round_trips.append(args[0])
        return original_command(self, *args, **kwargs)

    monkeypatch.setattr(type(redis), "pipeline", counting_pipeline)
    monkeypatch.setattr(type(redis), "execute_command", counting_command)
    assert client.get("/v1/models", **auth_header(secret)).status_code == 200
    assert round_trips == ["EVALSHA"]


@pytest.mark.redis
def test_a_remembered_key_is_loaded_again_when_redis_is_down(client, monkeypatch):
    import redis

    organization = OrganizationFactory()
    secret = api_key_for(organization)
    client.get("/v1/models", **auth_header(secret))
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)

    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(redis.Redis, "execute_command", down)
    monkeypatch.setattr(redis.client.Pipeline, "execute", down)
    assert client.get("/v1/models", **auth_header(secret)).status_code == 403


def test_a_refusal_for_a_missing_scope_carries_the_rate_limit_headers(client):
    secret = api_key_for(OrganizationFactory(), scopes=[ApiKey.Scope.READ])
    response = client.post(
        "/v2/images/generate",
        {"prompt": "a lighthouse", "model": "imagen-fast"},
        content_type="application/json",
        **auth_header(secret),
    )
    assert response.status_code == 403
    assert response["X-RateLimit-Remaining"].isdigit()

"""Redis stops: submissions are 503 with nothing charged, /readyz is 503; both recover.

The test runs its own redis-server (never the shared one) and points the cache, the rate
limiter and the Celery broker at it.
"""

import pytest

from billing.models import CreditLedgerEntry
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers
from tests.integration.faults import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

BODY = {"prompt": "a fox", "width": 512, "height": 512}


def _use_broker(app, url):
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"socket_connect_timeout": 1, "max_retries": 0}
    app._pool = None
    app.amqp._producer_pool = None


def _cache_on(server: RedisServer) -> dict:
    return {
        "default": {
            "BACKEND": "common.fastpaths.redis_cache.SharedClientRedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture
def own_redis(settings):
    from config.celery import app

    server = RedisServer(free_port())
    server.start()
    settings.CACHES = _cache_on(server)
    original = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    _use_broker(app, server.url)
    yield server
    server.kill()
    _use_broker(app, original[0])
    app.conf.broker_transport_options = original[1]


@pytest.fixture
def own_cache_redis(settings):
    """Only the cache and the rate limiter on their own Redis; the broker stays up."""
    server = RedisServer(free_port())
    server.start()
    settings.CACHES = _cache_on(server)
    yield server
    server.kill()


def _submit(client, key):
    return client.post("/v1/text-to-image", BODY, "application/json", **headers(key, **ASYNC))


def test_with_redis_stopped_submissions_are_503_and_charge_nothing(client, own_redis):
    organization, key = customer(credits=10)
    assert _submit(client, key).status_code == 202
    own_redis.kill()

    response = _submit(client, key)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    organization.refresh_from_db()
    assert organization.credit_balance == 9
    assert Job.objects.count() == 1
    assert CreditLedgerEntry.objects.filter(kind="reserve").count() == 1


def test_with_redis_stopped_readyz_is_503(client, own_redis):
    assert client.get("/readyz").status_code == 200
    own_redis.kill()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_submissions_and_readyz_recover_when_redis_returns(client, own_redis):
    organization, key = customer(credits=10)
    own_redis.kill()
    assert _submit(client, key).status_code == 503
    assert client.get("/readyz").status_code == 503

    own_redis.start()

    assert client.get("/readyz").status_code == 200
    assert _submit(client, key).status_code == 202
    organization.refresh_from_db()
    assert organization.credit_balance == 9


def test_with_redis_stopped_an_idempotent_submission_is_503_and_charges_nothing(client, own_redis):
    organization, key = customer(credits=10)
    own_redis.kill()
    response = client.post(
        "/v1/text-to-image",
        BODY,
        "application/json",
        **headers(key, idempotency_key="order-42", **ASYNC),
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()


def test_redis_stopping_mid_submission_answers_503_not_500(client, own_redis, monkeypatch):
    """Redis answered the Idempotency-Key's claim, then stopped before the job was queued:
    releasing the key fails too, and the client still gets the 503 (found by bench/soak.py)."""
    from common.api import idempotency

    organization, key = customer(credits=10)
    claim = idempotency.claim

    def claim_then_redis_stops(request, organization):
        claimed = claim(request, organization)
        own_redis.kill()
        return claimed

    monkeypatch.setattr(idempotency, "claim", claim_then_redis_stops)
    response = client.post(
        "/v1/text-to-image",
        BODY,
        "application/json",
        **headers(key, idempotency_key="order-43", **ASYNC),
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()


def test_with_redis_stopped_the_model_list_is_still_served(client, own_redis):
    _, key = customer(credits=10)
    own_redis.kill()
    response = client.get("/v1/models", **headers(key))
    assert response.status_code == 200
    assert response.json()["data"]


def test_with_the_rate_limiter_down_submissions_are_503_and_charge_nothing(client, own_cache_redis):
    """The broker still takes jobs, but no window can be counted: a submission is refused
    rather than let through past the plan's limits (found by bench/soak.py)."""
    organization, key = customer(credits=10)
    own_cache_redis.kill()

    response = _submit(client, key)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "rate limit" in response.json()["error"]["details"]
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()


def test_with_the_rate_limiter_down_reads_are_still_served(client, own_cache_redis):
    _, key = customer(credits=10)
    own_cache_redis.kill()
    response = client.get("/v1/account", **headers(key))
    assert response.status_code == 200

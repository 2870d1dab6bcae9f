"""Plan windows on submissions, the read cap, and the headers on every authenticated call."""

import time

import pytest

from common.api import rate_limits
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_window")]


def submit(client, key, body=None):
    return client.post(
        "/v1/text-to-image",
        body or {"prompt": "p"},
        content_type="application/json",
        **headers(key, **ASYNC),
    )


def test_eleventh_submission_in_a_minute_on_free_is_429_with_headers(client):
    _, key = customer(plan="free", credits=100)
    for remaining in range(9, -1, -1):
        response = submit(client, key)
        assert response.status_code == 202
        assert response["X-RateLimit-Remaining"] == str(remaining)
    # The window may end while the test runs on a loaded machine: not before this moment.
    sent = int(time.time())
    response = submit(client, key)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "minute" in error["details"]
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Limit"] == "10"
    assert response["X-RateLimit-Remaining"] == "0"
    assert int(response["X-RateLimit-Reset"]) >= sent
    assert Job.objects.count() == 10


def test_pro_organization_is_not_limited_at_eleven(client):
    _, key = customer(plan="pro", credits=100)
    statuses = [submit(client, key).status_code for _ in range(11)]
    assert statuses == [202] * 11


def test_invalid_submissions_use_a_slot_too(client):
    _, key = customer(plan="free", credits=100)
    for _ in range(10):
        assert submit(client, key, {"prompt": ""}).status_code == 400
    assert submit(client, key).status_code == 429


def test_full_day_window_is_429_naming_the_day(client):
    _, key = customer(plan="pro", credits=100, requests_per_day_override=3)
    for _ in range(3):
        assert submit(client, key).status_code == 202
    response = submit(client, key)
    assert response.status_code == 429
    assert "day" in response.json()["error"]["details"]
    assert int(response["Retry-After"]) <= 86400


def test_staff_override_raises_the_minute_limit(client):
    _, key = customer(plan="free", credits=100, requests_per_minute_override=12)
    statuses = [submit(client, key).status_code for _ in range(12)]
    assert statuses == [202] * 12
    assert submit(client, key).status_code == 429


def test_limits_are_per_organization(client):
    _, first = customer(plan="free", credits=100)
    _, second = customer(plan="free", credits=100)
    for _ in range(10):
        submit(client, first)
    assert submit(client, first).status_code == 429
    assert submit(client, second).status_code == 202


def test_every_authenticated_response_carries_the_headers(client):
    _, key = customer(plan="free", credits=100)
    submit(client, key)
    for path in ("/v1/account", "/v1/models", "/v1/jobs"):
        response = client.get(path, **headers(key))
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "10"
        assert response["X-RateLimit-Remaining"] == "9"
        assert response["RateLimit-Policy"] == '"minute";q=10;w=60, "day";q=100;w=86400'
        assert response["RateLimit"].startswith('"minute";r=9;t=')


def test_reads_do_not_use_submission_slots(client):
    _, key = customer(plan="free", credits=100)
    for _ in range(15):
        client.get("/v1/models", **headers(key))
    assert submit(client, key).status_code == 202


def test_reads_are_capped_per_key(client, monkeypatch):
    monkeypatch.setattr(rate_limits, "READS_PER_MINUTE_PER_KEY", 3)
    _, key = customer(plan="free", credits=100)
    statuses = [client.get("/v1/models", **headers(key)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_unauthenticated_response_has_no_rate_limit_headers(client):
    response = client.get("/v1/models")
    assert response.status_code == 401
    assert "X-RateLimit-Limit" not in response

"""Limits keyed on the client's address: the admin log-in, and clients behind a proxy."""

import time
import types

import pytest
from django_ratelimit import core

from tests.accounts.factories import UserFactory
from tests.accounts.pages import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_EMAIL = "staff@example.com"


@pytest.fixture
def clock(monkeypatch):
    """django-ratelimit's clock, held still until a test moves it on."""
    now = types.SimpleNamespace(value=time.time())
    monkeypatch.setattr(core, "time", types.SimpleNamespace(time=lambda: now.value))
    return now


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def _admin_log_in(client, password):
    return client.post("/admin/login/", {"username": ADMIN_EMAIL, "password": password})


def _log_in(client, attempt, **headers):
    return client.post(
        "/login/", {"username": f"u{attempt}@example.com", "password": "x"}, **headers
    )


def test_admin_log_in_refuses_even_the_right_password_after_many_wrong_ones(client, clock):
    UserFactory(email=ADMIN_EMAIL, is_staff=True, is_superuser=True)
    statuses = [_admin_log_in(client, f"wrong-{n}").status_code for n in range(40)]
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    response = _admin_log_in(client, PASSWORD)
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not _is_logged_in(client)


def test_admin_log_in_works_again_once_the_window_has_passed(client, clock):
    UserFactory(email=ADMIN_EMAIL, is_staff=True, is_superuser=True)
    for n in range(40):
        _admin_log_in(client, f"wrong-{n}")
    clock.value += 61
    response = _admin_log_in(client, PASSWORD)
    assert response.status_code == 302
    assert _is_logged_in(client)


def test_admin_and_site_log_in_share_one_limit_per_email(client, clock):
    UserFactory(email=ADMIN_EMAIL, is_staff=True, is_superuser=True)
    for n in range(5):
        client.post("/login/", {"username": ADMIN_EMAIL, "password": f"wrong-{n}"})
    assert _admin_log_in(client, PASSWORD).status_code == 429


def test_clients_behind_a_trusted_proxy_have_their_own_buckets(client, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for attempt in range(10):
        _log_in(client, attempt, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    assert _log_in(client, 10, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy).status_code == 429
    assert _log_in(client, 11, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy).status_code == 200


def test_behind_a_trusted_proxy_an_address_the_client_wrote_gives_no_fresh_bucket(
    client, clock, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for attempt in range(10):
        _log_in(client, attempt, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    # The proxy appends the address it saw: what comes before it is the client's own text.
    spoofed = {"HTTP_X_FORWARDED_FOR": "192.0.2.44, 198.51.100.7"}
    assert _log_in(client, 10, **spoofed, **proxy).status_code == 429


def test_without_a_trusted_proxy_a_forwarded_for_header_gives_no_fresh_bucket(client, clock):
    for attempt in range(10):
        _log_in(client, attempt, REMOTE_ADDR="198.51.100.7")
    spoofed = _log_in(client, 10, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.44")
    assert spoofed.status_code == 429


def test_a_request_that_bypassed_the_proxy_is_keyed_on_its_own_address(client, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    for attempt in range(10):
        _log_in(client, attempt, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.1")
    fresh_claim = {"REMOTE_ADDR": "198.51.100.7", "HTTP_X_FORWARDED_FOR": "192.0.2.2"}
    assert _log_in(client, 10, **fresh_claim).status_code == 429

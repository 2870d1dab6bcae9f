"""The database connection dies in the middle of a request: 503, and nothing half-written."""

import pytest
from django.db import connection

from billing import services as billing
from billing.models import CreditLedgerEntry, StripeEvent
from billing.services import packs
from generation.models import Job
from tests.accounts.factories import OrganizationFactory
from tests.billing import stripe_payloads as payloads
from tests.billing.conftest import signed_event_post
from tests.billing.factories import PackPurchaseFactory
from tests.generation.factories import ASYNC, customer, headers
from tests.integration.faults import assert_ledger_consistent, drop_this_database_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


def _after_the_connection_died():
    # The request's connection is dead; the test reads back through a fresh one.
    connection.close()


def test_a_connection_dropped_after_the_reservation_is_503_and_charges_nothing(client, monkeypatch):
    organization, key = customer(credits=10)
    real_reserve = billing.reserve_credits

    def reserve_then_lose_the_database(**kwargs):
        entry = real_reserve(**kwargs)
        drop_this_database_connection()
        return entry

    monkeypatch.setattr(billing, "reserve_credits", reserve_then_lose_the_database)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "width": 512, "height": 512},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    _after_the_connection_died()
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert _balance(organization) == 10
    assert not Job.objects.exists()
    assert list(CreditLedgerEntry.objects.values_list("kind", flat=True)) == ["grant"]


def test_the_next_request_after_a_dropped_connection_succeeds(client, monkeypatch):
    organization, key = customer(credits=10)
    real_reserve = billing.reserve_credits
    calls = []

    def lose_the_database_once(**kwargs):
        entry = real_reserve(**kwargs)
        if not calls:
            calls.append(1)
            drop_this_database_connection()
        return entry

    monkeypatch.setattr(billing, "reserve_credits", lose_the_database_once)
    body = {"prompt": "a fox", "width": 512, "height": 512}
    first = client.post("/v1/text-to-image", body, "application/json", **headers(key, **ASYNC))
    assert first.status_code == 503
    # As in production: the dead connection is discarded at the end of the request.
    _after_the_connection_died()
    second = client.post("/v1/text-to-image", body, "application/json", **headers(key, **ASYNC))
    assert second.status_code == 202, second.content
    assert _balance(organization) == 9
    assert Job.objects.count() == 1


def test_a_stripe_handler_losing_the_database_halfway_keeps_nothing_and_the_retry_applies_once(
    client, settings, monkeypatch
):
    organization = OrganizationFactory(stripe_customer_id="cus_test")
    purchase = PackPurchaseFactory(organization=organization, pack__credits=100)
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    real_grant = packs.grant_credits

    def grant_then_lose_the_database(**kwargs):
        entry = real_grant(**kwargs)
        drop_this_database_connection()  # the credits are written, the invoice is not
        return entry

    monkeypatch.setattr(packs, "grant_credits", grant_then_lose_the_database)
    client.raise_request_exception = False
    crashed = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    _after_the_connection_died()
    assert crashed.status_code >= 500  # Stripe retries anything but 2xx
    assert _balance(organization) == 0
    assert not StripeEvent.objects.exists()

    monkeypatch.setattr(packs, "grant_credits", real_grant)
    retried = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    assert retried.status_code == 200
    assert retried.json() == {"received": True, "replayed": False}
    again = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    assert again.json() == {"received": True, "replayed": True}
    assert _balance(organization) == 100
    assert CreditLedgerEntry.objects.filter(organization=organization).count() == 1
    assert_ledger_consistent(organization)


def test_a_connection_dropped_during_the_wait_answers_202_with_the_job(client, monkeypatch):
    from generation import waiting

    organization, key = customer(credits=10)

    def lose_the_database_while_waiting(job_id, timeout):
        connection.ensure_connection()
        drop_this_database_connection()
        return True

    monkeypatch.setattr(waiting, "wait_for_job", lose_the_database_while_waiting)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox"},
        "application/json",
        **headers(key, prefer="wait=5"),
    )
    _after_the_connection_died()
    assert response.status_code == 202, response.content
    assert response.json()["id"] == Job.objects.get().public_id
    assert _balance(organization) == 9


@pytest.mark.redis
def test_a_connection_dropped_mid_render_runs_the_job_again_and_charges_once(client, monkeypatch):
    """Found by bench/soak.py: the worker's lost connection failed the job as an engine
    error; the job is the engine's to fail, not the database's."""
    from generation import engines
    from generation.models import ModelCatalogEntry
    from tests.celery_worker import in_thread_worker
    from tests.generation.engines import DatabaseDroppedOnceEngine

    monkeypatch.setitem(
        engines._ENGINES,
        "dropped_once",
        engines.Registered("tests.generation.engines.DatabaseDroppedOnceEngine", queue="local"),
    )
    monkeypatch.setattr(DatabaseDroppedOnceEngine, "dropped", False)
    ModelCatalogEntry.objects.create(
        id="imagen-dropped-once",
        name="Dropped once",
        engine="dropped_once",
        credits_per_image=1,
        capabilities=["text-to-image"],
    )
    organization, key = customer(credits=10)

    with in_thread_worker(["local"]):
        response = client.post(
            "/v1/text-to-image",
            {"prompt": "a fox", "model": "imagen-dropped-once", "width": 256, "height": 256},
            content_type="application/json",
            **headers(key),
        )

    assert DatabaseDroppedOnceEngine.dropped
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["credits_used"], len(body["images"])) == ("completed", 1, 1)
    assert _balance(organization) == 9
    kinds = CreditLedgerEntry.objects.filter(organization=organization).values_list(
        "kind", flat=True
    )
    assert sorted(kinds) == ["grant", "reserve"]
    assert_ledger_consistent(organization)


def test_a_stripe_event_whose_connection_drops_is_503_and_its_redelivery_applies_once(
    client, settings, monkeypatch
):
    """Found by bench/soak.py: outside the API's views, a lost connection was a 500."""
    from billing import stripe_events

    organization = OrganizationFactory(stripe_customer_id="cus_test")
    purchase = PackPurchaseFactory(organization=organization, pack__credits=100)
    event = payloads.event("payment_intent.succeeded", payloads.pack_payment_intent(purchase))
    real_apply = stripe_events.apply

    def lose_the_database_then_apply(event):
        connection.ensure_connection()
        drop_this_database_connection()
        return real_apply(event)

    monkeypatch.setattr(stripe_events, "apply", lose_the_database_then_apply)
    dropped = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    _after_the_connection_died()
    assert dropped.status_code == 503, dropped.content
    assert dropped.json()["error"]["code"] == "service_unavailable"

    monkeypatch.setattr(stripe_events, "apply", real_apply)
    redelivered = signed_event_post(client, event, settings.STRIPE_WEBHOOK_SECRET)
    assert redelivered.status_code == 200
    assert _balance(organization) == 100
    assert_ledger_consistent(organization)

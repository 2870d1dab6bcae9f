"""An endpoint removed while a job's event is being emitted to it (found by bench/soak.py):
neither the removal nor the job's transaction fails, and no delivery points at nothing."""

import threading

import pytest
from django.db import connection, transaction

from tests.webhooks.factories import WebhookEndpointFactory
from webhooks import services
from webhooks.models import Delivery, Event, WebhookEndpoint

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_another_connection(function):
    """Run `function` in a thread, so on a database connection of its own, and wait for it."""
    errors = []

    def run():
        try:
            function()
        except Exception as error:  # handed to the test
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_an_endpoint_removed_after_emission_read_it_gets_no_delivery(monkeypatch):
    endpoint = WebhookEndpointFactory(url="https://example.com/hook")
    other = WebhookEndpointFactory(organization=endpoint.organization, url="https://example.org/h")
    subscribes_to = WebhookEndpoint.subscribes_to

    def removed_meanwhile(self, event_type):
        if self.pk == endpoint.pk:
            thread, errors = _in_another_connection(
                lambda: services.delete_endpoint(endpoint=WebhookEndpoint.objects.get(pk=self.pk))
            )
            thread.join()
            assert errors == []
        return subscribes_to(self, event_type)

    monkeypatch.setattr(WebhookEndpoint, "subscribes_to", removed_meanwhile)
    with transaction.atomic():  # the job's completion
        services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={}, job_id="j1"
        )

    assert Event.objects.count() == 1
    assert list(Delivery.objects.values_list("endpoint_id", flat=True)) == [other.pk]


def test_removing_an_endpoint_while_an_event_for_it_commits_succeeds():
    endpoint = WebhookEndpointFactory(url="https://example.com/hook")
    emitted, removal_started = threading.Event(), threading.Event()

    def complete_a_job():
        with transaction.atomic():
            services.emit_event(
                organization=endpoint.organization, event_type="job.completed", data={}, job_id="j1"
            )
            emitted.set()
            removal_started.wait(10)
            # The removal reaches the endpoint's row before this transaction commits.
            threading.Event().wait(1)

    job, job_errors = _in_another_connection(complete_a_job)
    emitted.wait(10)
    removal_started.set()
    services.delete_endpoint(endpoint=endpoint)
    job.join()

    assert job_errors == []
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert Event.objects.count() == 1
    assert not Delivery.objects.exists()  # removed with its endpoint


def _one_delivery(endpoint) -> Delivery:
    services.emit_event(
        organization=endpoint.organization, event_type="job.completed", data={}, job_id="j1"
    )
    return Delivery.objects.get(endpoint=endpoint)


def test_an_endpoint_removed_while_its_delivery_is_sent_records_nothing(monkeypatch):
    """Found by bench/soak.py: the attempt was recorded for a delivery removed meanwhile."""
    from webhooks.services import transport

    endpoint = WebhookEndpointFactory(url="https://example.com/hook")
    delivery = _one_delivery(endpoint)

    def removed_while_sending(delivery):
        thread, errors = _in_another_connection(
            lambda: services.delete_endpoint(endpoint=WebhookEndpoint.objects.get(pk=endpoint.pk))
        )
        thread.join()
        assert errors == []
        return transport.Outcome(200, 5, "ok", "")

    monkeypatch.setattr(transport, "send", removed_while_sending)

    assert services.attempt_delivery(delivery_id=delivery.pk) is None
    assert not Delivery.objects.exists()


def test_removing_an_endpoint_while_an_attempt_is_recorded_succeeds(monkeypatch):
    """Found by bench/soak.py: DELETE /v1/webhook-endpoints/{id} answered 500 when a worker
    recorded an attempt of one of its deliveries at the same moment."""
    from webhooks.services import health, transport

    endpoint = WebhookEndpointFactory(url="https://example.com/hook")
    delivery = _one_delivery(endpoint)
    recording, removal_started = threading.Event(), threading.Event()
    note_latency = health.note_endpoint_latency

    def slow_bookkeeping(endpoint, latency_ms, now):
        recording.set()
        removal_started.wait(10)
        # The removal reaches the rows before the attempt's transaction commits.
        threading.Event().wait(1)
        return note_latency(endpoint, latency_ms, now)

    monkeypatch.setattr(transport, "send", lambda delivery: transport.Outcome(200, 5, "ok", ""))
    monkeypatch.setattr(health, "note_endpoint_latency", slow_bookkeeping)
    worker, worker_errors = _in_another_connection(
        lambda: services.attempt_delivery(delivery_id=delivery.pk)
    )
    recording.wait(10)
    removal_started.set()
    services.delete_endpoint(endpoint=endpoint)
    worker.join()

    assert worker_errors == []
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not Delivery.objects.exists()

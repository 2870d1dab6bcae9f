"""End to end through the broker: emitted on commit, routed to the `webhooks` queue, sent
by a real Celery worker consuming that queue; retried through `webhooks_retry`."""

import time

import pytest
from django.db import transaction

from tests import procfile
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer
from webhooks import services
from webhooks.models import Delivery

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_networks_allowed"),
]


@pytest.fixture
def queues():
    return ["webhooks"]


@pytest.fixture
def webhooks_worker(transactional_db, queues):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from config.celery import app

    def close_worker_connections(**kwargs):
        connections.close_all()  # the worker thread's, so the test database can be dropped

    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)
    task_postrun.connect(close_worker_connections, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=queues,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_worker_connections)


def test_a_committed_event_reaches_the_receiver_through_the_webhooks_queue(
    receiver, webhooks_worker
):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    with transaction.atomic():
        event = services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={"id": "j1"}
        )
    for _ in range(100):
        if receiver.received:
            break
        time.sleep(0.1)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id]
    for _ in range(50):
        if Delivery.objects.get().status == Delivery.Status.SUCCEEDED:
            break
        time.sleep(0.1)
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


# The Procfile's webhooks worker, as production runs it.
@pytest.mark.parametrize("queues", [procfile.queues("webhooks")])
def test_a_failed_attempt_is_retried_about_five_seconds_later_through_the_retry_queue(
    receiver, webhooks_worker
):
    receiver.answer(Answer(status=500))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    with transaction.atomic():
        event = services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={"id": "j1"}
        )
    for _ in range(150):
        if Delivery.objects.get().status == Delivery.Status.SUCCEEDED:
            break
        time.sleep(0.1)
    first, retry = receiver.received
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == event.public_id
    assert 4.5 <= retry.at - first.at < 7  # the first wait, 5 s with 10 % jitter
    assert Delivery.objects.get().attempt_count == 2

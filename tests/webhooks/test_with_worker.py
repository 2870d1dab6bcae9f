"""End to end through the broker: emitted on commit, routed to the `webhooks` queue, sent
by a real Celery worker consuming that queue; retried through `webhooks_retry`."""

import time

import pytest
from django.db import transaction

from tests import procfile
from tests.celery_worker import in_thread_worker
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
    with in_thread_worker(queues) as worker:
        yield worker


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

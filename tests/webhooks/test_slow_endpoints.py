"""A slow endpoint's deliveries travel in a lane of their own (webhooks/queues.py), so they
never hold the worker slots other endpoints' deliveries are waiting for."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests import procfile
from tests.accounts.factories import OrganizationFactory
from tests.celery_worker import Lane, in_thread_workers
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer, Receiver
from webhooks import queues, services
from webhooks.models import Delivery

pytestmark = pytest.mark.usefixtures("private_networks_allowed")

SLOW_EVENTS = 12
FAST_EVENTS = 8
SLOW_ANSWER = Answer(delay=3)


@pytest.fixture
def slow_receiver():
    server = Receiver().start()
    server.answer(*[SLOW_ANSWER] * SLOW_EVENTS)
    yield server
    server.stop()


def worker_threads(process_type: str) -> int:
    command = procfile.arguments(process_type)
    return int(command[command.index("--concurrency") + 1])


@pytest.fixture
def webhooks_workers(transactional_db):
    """The Procfile's two webhooks lines, each a threads pool of its concurrency."""
    with in_thread_workers(
        *(
            Lane(
                queues=procfile.queues(line),
                hostname=f"{line.replace('_', '-')}@test",
                concurrency=worker_threads(line),
            )
            for line in ("webhooks", "webhooks_slow")
        )
    ):
        yield


def emit(organization, job_id: str):
    with transaction.atomic():
        return services.emit_event(
            organization=organization,
            event_type="job.completed",
            data={"id": job_id},
            job_id=job_id,
        )


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_fast_endpoint_is_delivered_to_while_another_organizations_slow_backlog_waits(
    receiver, slow_receiver, webhooks_workers
):
    slow = WebhookEndpointFactory(organization=OrganizationFactory(), url=slow_receiver.url())
    fast = WebhookEndpointFactory(organization=OrganizationFactory(), url=receiver.url())
    slow_events = [emit(slow.organization, f"img_slow{n}") for n in range(SLOW_EVENTS)]
    fast_events = [emit(fast.organization, f"img_fast{n}") for n in range(FAST_EVENTS)]
    wait_for(lambda: len(receiver.received) == FAST_EVENTS, 30)
    slow_received_meanwhile = len(slow_receiver.received)
    wait_for(
        lambda: (
            Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count()
            == SLOW_EVENTS + FAST_EVENTS
        ),
        60,
    )
    assert {r.headers["webhook-id"] for r in receiver.received} == {
        e.public_id for e in fast_events
    }
    assert slow_received_meanwhile < SLOW_EVENTS
    assert sorted(r.headers["webhook-id"] for r in slow_receiver.received) == sorted(
        e.public_id for e in slow_events
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("run_tasks_inline")
def test_an_answer_taking_a_second_sends_the_endpoints_next_deliveries_to_the_slow_lane(
    receiver, django_capture_on_commit_callbacks
):
    receiver.answer(Answer(delay=1.1))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    with django_capture_on_commit_callbacks(execute=True):
        services.emit_event(organization=endpoint.organization, event_type="job.completed", data={})
    with django_capture_on_commit_callbacks():
        event = services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={}
        )
    endpoint.refresh_from_db()
    assert endpoint.is_slow()
    assert queues.queued(list(Delivery.objects.filter(event=event))) == [
        (Delivery.objects.get(event=event).pk, queues.SLOW_QUEUE)
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("run_tasks_inline")
def test_a_quick_answer_keeps_the_endpoint_in_the_usual_lanes(
    receiver, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    with django_capture_on_commit_callbacks(execute=True):
        services.emit_event(organization=endpoint.organization, event_type="job.completed", data={})
    assert len(receiver.received) == 1
    endpoint.refresh_from_db()
    assert not endpoint.is_slow()


@pytest.mark.django_db
def test_an_endpoint_is_back_in_the_usual_lanes_once_its_slow_time_is_over(
    django_capture_on_commit_callbacks,
):
    endpoint = WebhookEndpointFactory(slow_until=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks():
        event = services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={}
        )
    delivery = Delivery.objects.get(event=event)
    assert queues.queued([delivery]) == [(delivery.pk, queues.FRESH_QUEUE)]


@pytest.mark.django_db
def test_a_delivery_taken_from_another_lane_for_a_slow_endpoint_is_not_attempted_there(
    receiver, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(
        url=receiver.url(), slow_until=timezone.now() + timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks() as sent_on:
        services.emit_event(organization=endpoint.organization, event_type="job.completed", data={})
    delivery = Delivery.objects.get()
    with django_capture_on_commit_callbacks() as moved:
        assert services.attempt_delivery(delivery_id=delivery.pk, lane="webhooks") is None
    delivery.refresh_from_db()
    assert receiver.received == []
    assert delivery.attempt_count == 0
    assert delivery.next_attempt_at <= timezone.now()
    assert len(sent_on) == len(moved) == 1


@pytest.mark.django_db
def test_the_slow_lane_makes_the_attempt(receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(
        url=receiver.url(), slow_until=timezone.now() + timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks():
        event = services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={}
        )
    delivery = Delivery.objects.get()
    attempted = services.attempt_delivery(delivery_id=delivery.pk, lane=queues.SLOW_QUEUE)
    assert attempted.attempt.status_code == 200
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id]

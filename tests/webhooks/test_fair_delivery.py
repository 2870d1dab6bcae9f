"""One organization's failing endpoints do not hold up another organization's deliveries."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.accounts.factories import OrganizationFactory
from tests.celery_worker import in_thread_worker
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer, Receiver
from webhooks import services
from webhooks.models import Delivery
from webhooks.services import sweep

pytestmark = pytest.mark.usefixtures("private_networks_allowed")

FAILING_ENDPOINTS = 20
FAILING_ANSWER = Answer(status=500, body=b"down", delay=0.5)


@pytest.fixture
def failing_receiver():
    server = Receiver().start()
    server.answer(*[FAILING_ANSWER] * (FAILING_ENDPOINTS * 3))
    yield server
    server.stop()


@pytest.fixture
def webhooks_worker(transactional_db):
    """One worker slot consuming every webhooks queue, as the embedded worker does."""
    with in_thread_worker(["webhooks", "webhooks_retry"]) as worker:
        yield worker


def emit(organization, job_id: str):
    with transaction.atomic():
        return services.emit_event(
            organization=organization,
            event_type="job.completed",
            data={"id": job_id},
            job_id=job_id,
        )


@pytest.mark.django_db(transaction=True)
def test_another_organizations_failing_endpoints_do_not_delay_a_delivery(
    receiver, failing_receiver, webhooks_worker
):
    noisy = OrganizationFactory(plan__slug="pro")
    WebhookEndpointFactory.create_batch(
        FAILING_ENDPOINTS,
        organization=noisy,
        url=failing_receiver.url(),
        failing_since=timezone.now() - timedelta(hours=1),
    )
    quiet = WebhookEndpointFactory(url=receiver.url())
    emit(noisy, "img_noisy")
    emitted_at = time.time()
    event = emit(quiet.organization, "img_quiet")
    for _ in range(100):
        if receiver.received:
            break
        time.sleep(0.05)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id]
    # Behind all of the other organization's failing attempts it would wait 10 s.
    assert receiver.received[0].at - emitted_at < FAILING_ENDPOINTS * FAILING_ANSWER.delay / 4


@pytest.mark.django_db
@pytest.mark.usefixtures("run_tasks_inline")
def test_a_sweep_pass_sends_every_organizations_due_deliveries(
    receiver, failing_receiver, monkeypatch
):
    monkeypatch.setattr(sweep, "SWEEP_BATCH", 10)
    monkeypatch.setattr(sweep, "SWEEP_BATCH_PER_DESTINATION", 3)
    failing_receiver.answer(*[Answer(status=500)] * 30)
    noisy = WebhookEndpointFactory(url=failing_receiver.url(), failing_since=timezone.now())
    for index in range(12):
        services.emit_event(
            organization=noisy.organization, event_type="job.completed", data={"n": index}
        )
    quiet = WebhookEndpointFactory(url=receiver.url())
    event = services.emit_event(
        organization=quiet.organization, event_type="job.completed", data={}
    )
    overdue = timezone.now() - timedelta(minutes=1)
    Delivery.objects.filter(endpoint=noisy).update(next_attempt_at=overdue - timedelta(hours=1))
    Delivery.objects.filter(endpoint=quiet).update(next_attempt_at=overdue)
    services.send_due_deliveries()
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id]


@pytest.mark.django_db
@pytest.mark.usefixtures("run_tasks_inline")
def test_a_sweep_pass_sends_an_endpoints_due_delivery_behind_another_endpoints_backlog(
    receiver, failing_receiver, monkeypatch
):
    """Found by the 30-minute soak: an organization's slow endpoint with a backlog of 1,260
    older deliveries took every sweep pass's share of the organization, so its healthy
    endpoint's deliveries whose task was lost waited 7-12 minutes and counting."""
    monkeypatch.setattr(sweep, "SWEEP_BATCH_PER_DESTINATION", 3)
    failing_receiver.answer(*[Answer(status=500)] * 30)
    backlogged = WebhookEndpointFactory(url=failing_receiver.url())
    healthy = WebhookEndpointFactory(
        organization=backlogged.organization, url=receiver.url(), event_types=["job.progress"]
    )
    for index in range(12):
        services.emit_event(
            organization=backlogged.organization, event_type="job.completed", data={"n": index}
        )
    event = services.emit_event(
        organization=healthy.organization, event_type="job.progress", data={}
    )
    overdue = timezone.now() - timedelta(minutes=1)
    Delivery.objects.filter(endpoint=backlogged).update(
        next_attempt_at=overdue - timedelta(hours=1)
    )
    Delivery.objects.filter(endpoint=healthy).update(next_attempt_at=overdue)
    services.send_due_deliveries()
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id]

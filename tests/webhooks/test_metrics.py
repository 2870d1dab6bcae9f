"""Webhook attempts as /metrics counts them: delivered, retried, gave up, failed."""

import pytest

from tests.common.scraping import TOKEN, scrape, value
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer
from tests.webhooks.test_delivery import make_due_and_deliver
from webhooks import services

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_networks_allowed", "run_tasks_inline"),
]


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def _attempts(client) -> dict[str, float]:
    samples = scrape(client)
    outcomes = ("delivered", "retried", "gave_up", "failed")
    return {o: value(samples, "imagen_webhook_attempts_total", outcome=o) for o in outcomes}


def _emit(endpoint, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.emit_event(
            organization=endpoint.organization,
            event_type="job.completed",
            data={"id": "img_abc123def456", "status": "completed"},
            job_id="img_abc123def456",
        )


def test_a_delivered_attempt_is_counted(client, receiver, django_capture_on_commit_callbacks):
    before = _attempts(client)
    _emit(WebhookEndpointFactory(url=receiver.url()), django_capture_on_commit_callbacks)
    after = _attempts(client)
    assert {o: after[o] - before[o] for o in after} == {
        "delivered": 1,
        "retried": 0,
        "gave_up": 0,
        "failed": 0,
    }


def test_a_failed_attempt_to_be_retried_is_counted_as_retried(
    client, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(Answer(status=500))
    before = _attempts(client)
    _emit(WebhookEndpointFactory(url=receiver.url()), django_capture_on_commit_callbacks)
    after = _attempts(client)
    assert (after["retried"] - before["retried"], after["delivered"] - before["delivered"]) == (
        1,
        0,
    )


def test_an_attempt_answered_gone_is_counted_as_failed(
    client, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(Answer(status=410))
    before = _attempts(client)
    _emit(WebhookEndpointFactory(url=receiver.url()), django_capture_on_commit_callbacks)
    assert _attempts(client)["failed"] - before["failed"] == 1


def test_the_last_failed_retry_is_counted_as_gave_up(
    client, receiver, django_capture_on_commit_callbacks
):
    receiver.answer(*[Answer(status=500)] * 8)
    before = _attempts(client)
    _emit(WebhookEndpointFactory(url=receiver.url()), django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(7):
            make_due_and_deliver()
    after = _attempts(client)
    assert (after["retried"] - before["retried"], after["gave_up"] - before["gave_up"]) == (7, 1)

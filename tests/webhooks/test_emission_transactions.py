"""Emission follows the caller's transaction (real commits and rollbacks, no test wrapper)."""

import pytest
from django.db import transaction

from tests.webhooks.factories import WebhookEndpointFactory
from webhooks import services
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_networks_allowed", "run_tasks_inline"),
]


class JobFailedToSave(Exception):
    pass


def test_a_rolled_back_transaction_emits_nothing(receiver):
    endpoint = WebhookEndpointFactory(url=receiver.url())

    def complete_job_then_fail_to_save():
        with transaction.atomic():
            services.emit_event(
                organization=endpoint.organization,
                event_type="job.completed",
                data={},
                job_id="j1",
            )
            raise JobFailedToSave

    with pytest.raises(JobFailedToSave):
        complete_job_then_fail_to_save()
    assert receiver.received == []
    assert (Event.objects.count(), Delivery.objects.count()) == (0, 0)


def test_a_committed_event_is_sent_only_after_the_commit(receiver):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    with transaction.atomic():
        services.emit_event(
            organization=endpoint.organization, event_type="job.completed", data={}, job_id="j1"
        )
        assert receiver.received == []
    assert len(receiver.received) == 1
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED

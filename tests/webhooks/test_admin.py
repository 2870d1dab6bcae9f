"""Staff screens: redeliver and resend failed deliveries from the admin."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from tests.accounts.factories import UserFactory
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_networks_allowed", "run_tasks_inline"),
]


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def failed_delivery(endpoint):
    event = Event.objects.create(organization=endpoint.organization, type="job.failed", data={})
    return Delivery.objects.create(
        organization=endpoint.organization, event=event, endpoint=endpoint, status="failed"
    )


def test_redeliver_action_sends_the_delivery_again(
    client, staff, receiver, django_capture_on_commit_callbacks
):
    delivery = failed_delivery(WebhookEndpointFactory(url=receiver.url()))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/webhooks/delivery/",
            {"action": "redeliver", ACTION_CHECKBOX_NAME: [delivery.pk]},
        )
    assert receiver.received[0].headers["webhook-id"] == delivery.event.public_id
    assert Delivery.objects.get(pk=delivery.pk).status == "succeeded"


def test_resend_failed_action_asks_for_the_time_then_resends(
    client, staff, receiver, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    delivery = failed_delivery(endpoint)
    page = client.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "resend_failed", ACTION_CHECKBOX_NAME: [endpoint.pk]},
    )
    assert "Resend deliveries that failed" in page.content.decode()
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/webhooks/webhookendpoint/",
            {
                "action": "resend_failed",
                "apply": "1",
                "since": since,
                ACTION_CHECKBOX_NAME: [endpoint.pk],
            },
        )
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.event.public_id]


@pytest.mark.parametrize(
    "path",
    ["/admin/webhooks/webhookendpoint/", "/admin/webhooks/delivery/", "/admin/webhooks/event/"],
)
def test_admin_lists_render(client, staff, path):
    failed_delivery(WebhookEndpointFactory())
    assert client.get(path).status_code == 200

"""The webhooks dashboard, as a signed-in member uses it."""

import html
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.factories import MembershipFactory
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer
from webhooks.models import Attempt, Delivery, Event, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    return membership


@pytest.fixture
def sending(settings, run_tasks_inline, django_capture_on_commit_callbacks):
    """Deliver what a page enqueues, to the loopback receiver."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    return lambda: django_capture_on_commit_callbacks(execute=True)


def failed_delivery(endpoint, **fields):
    event = Event.objects.create(organization=endpoint.organization, type="job.failed", data={})
    delivery = Delivery.objects.create(
        organization=endpoint.organization, event=event, endpoint=endpoint, status="failed"
    )
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    Attempt.objects.create(delivery=delivery, status_code=502, response_body="bad gateway")
    return delivery


def test_the_list_shows_the_organizations_endpoints_only(client, owner):
    mine = WebhookEndpointFactory(organization=owner.organization, url="https://a.example/hook")
    WebhookEndpointFactory(url="https://theirs.example/hook")
    page = client.get("/webhooks/").content.decode()
    assert mine.url in page
    assert "theirs.example" not in page


def test_adding_an_endpoint_shows_it_with_its_secret(client, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    response = client.post(
        "/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "description": "dev", "events": ["job.completed"]},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get(organization=owner.organization)
    assert endpoint.event_types == ["job.completed"]
    assert endpoint.secret in response.content.decode()


def test_a_private_url_is_refused_with_the_reason(client, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = client.post("/webhooks/", {"url": "http://169.254.169.254/"})
    assert response.status_code == 200
    assert "non-public address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_rotating_the_secret_keeps_the_old_one_for_a_day(client, owner):
    endpoint = WebhookEndpointFactory(organization=owner.organization)
    old = endpoint.secret
    client.post(f"/webhooks/{endpoint.public_id}/rotate-secret/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    assert endpoint.previous_secret_expires_at > timezone.now() + timedelta(hours=23)


def test_deleting_an_endpoint(client, owner):
    endpoint = WebhookEndpointFactory(organization=owner.organization)
    response = client.post(f"/webhooks/{endpoint.public_id}/delete/")
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_sending_a_test_event_reaches_the_endpoint(client, owner, receiver, sending):
    endpoint = WebhookEndpointFactory(
        organization=owner.organization, url=receiver.url(), event_types=["invoice.paid"]
    )
    with sending():
        client.post(f"/webhooks/{endpoint.public_id}/test/")
    (received,) = receiver.received
    assert received.headers["webhook-id"].startswith("evt_")
    page = client.get(f"/webhooks/{endpoint.public_id}/").content.decode()
    assert "webhook.test" in page
    assert "succeeded" in page


def test_the_delivery_log_shows_each_attempt_and_the_answer(client, owner):
    endpoint = WebhookEndpointFactory(organization=owner.organization)
    delivery = failed_delivery(endpoint)
    assert "502" in client.get(f"/webhooks/{endpoint.public_id}/").content.decode()
    page = client.get(f"/webhooks/deliveries/{delivery.public_id}/").content.decode()
    assert "bad gateway" in page
    assert delivery.event.public_id in page


def test_the_delivery_page_shows_the_body_indented(client, owner):
    delivery = failed_delivery(WebhookEndpointFactory(organization=owner.organization))
    page = client.get(f"/webhooks/deliveries/{delivery.public_id}/").content.decode()
    body = html.unescape(page.split('<pre class="answer">')[-1].split("</pre>")[0])
    assert body.startswith('{\n  "')
    assert json.loads(body)["id"] == delivery.event.public_id


def test_redelivering_sends_the_same_event_again(client, owner, receiver, sending):
    endpoint = WebhookEndpointFactory(organization=owner.organization, url=receiver.url())
    delivery = failed_delivery(endpoint)
    with sending():
        client.post(f"/webhooks/deliveries/{delivery.public_id}/redeliver/")
    assert receiver.received[0].headers["webhook-id"] == delivery.event.public_id
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_resending_failed_since_a_time(client, owner, receiver, sending):
    receiver.answer(Answer(status=200))
    endpoint = WebhookEndpointFactory(organization=owner.organization, url=receiver.url())
    recent = failed_delivery(endpoint)
    failed_delivery(endpoint, created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    with sending():
        client.post(f"/webhooks/{endpoint.public_id}/resend-failed/", {"since": since})
    assert [r.headers["webhook-id"] for r in receiver.received] == [recent.event.public_id]


def test_enabling_a_disabled_endpoint(client, owner):
    endpoint = WebhookEndpointFactory(
        organization=owner.organization, enabled=False, disabled_reason="gone"
    )
    client.post(f"/webhooks/{endpoint.public_id}/enable/")
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (True, "")


def test_another_organizations_endpoint_and_delivery_are_not_found(client, owner):
    theirs = WebhookEndpointFactory()
    delivery = failed_delivery(theirs)
    assert client.get(f"/webhooks/{theirs.public_id}/").status_code == 404
    assert client.get(f"/webhooks/deliveries/{delivery.public_id}/").status_code == 404
    for action in ("rotate-secret", "delete", "test", "disable"):
        assert client.post(f"/webhooks/{theirs.public_id}/{action}/").status_code == 404
    assert client.post(f"/webhooks/deliveries/{delivery.public_id}/redeliver/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled


def test_a_member_sees_the_log_but_not_the_secret_and_cannot_change_anything(client):
    member = MembershipFactory(role="member")
    client.force_login(member.user)
    endpoint = WebhookEndpointFactory(organization=member.organization)
    page = client.get(f"/webhooks/{endpoint.public_id}/").content.decode()
    assert endpoint.url in page
    assert endpoint.secret not in page
    assert client.post(f"/webhooks/{endpoint.public_id}/rotate-secret/").status_code == 403


def test_pages_need_a_signed_in_user(client):
    response = client.get("/webhooks/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

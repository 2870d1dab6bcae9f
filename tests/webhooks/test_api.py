"""The webhook endpoints API, as a customer calls it."""

import pytest
from django.utils import timezone

from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer
from webhooks import services
from webhooks.models import Attempt, Delivery, Event, WebhookEndpoint

pytestmark = pytest.mark.django_db

ALL_TYPES = ["job.progress", "job.completed", "job.failed", "credits.low", "invoice.paid"]


@pytest.fixture
def organization():
    return OrganizationFactory()


@pytest.fixture
def api(client, organization):
    headers = auth_header(api_key_for(organization))

    class Api:
        def get(self, path, **params):
            return client.get(path, params, **headers)

        def post(self, path, body=None):
            return client.post(path, body or {}, content_type="application/json", **headers)

        def delete(self, path):
            return client.delete(path, **headers)

    return Api()


def delivery_with_attempts(endpoint, *attempts):
    event = Event.objects.create(organization=endpoint.organization, type="job.completed", data={})
    delivery = Delivery.objects.create(
        organization=endpoint.organization, event=event, endpoint=endpoint, status="failed"
    )
    for status_code, error in attempts:
        Attempt.objects.create(
            delivery=delivery, status_code=status_code, latency_ms=12, error=error
        )
    return delivery


def test_create_endpoint_returns_it_with_its_secret(api, organization, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    response = api.post(
        "/v1/webhook-endpoints",
        {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"], "description": "prod"},
    )
    assert response.status_code == 201
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(organization=organization)
    assert body == {
        "id": endpoint.public_id,
        "url": "http://127.0.0.1:9/hook",
        "events": ["job.completed"],
        "description": "prod",
        "secret": endpoint.secret,
        "enabled": True,
        "created_at": endpoint.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert body["secret"].startswith("whsec_")


def test_an_endpoint_without_events_receives_all_types(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    body = api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hook"}).json()
    assert (body["events"], body["description"]) == (ALL_TYPES, "")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
    ],
)
def test_a_non_public_url_is_refused(api, url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = api.post("/v1/webhook-endpoints", {"url": url})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert list(error["fields"]) == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_a_non_public_url_is_refused_in_the_documented_shape(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = api.post("/v1/webhook-endpoints", {"url": "http://169.254.169.254/hook"})
    reason = (
        "The URL resolves to a non-public address (169.254.169.254); "
        "only public internet addresses can receive requests."
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_parameters",
            "message": "Invalid parameters",
            "details": f"url: {reason}",
            "fields": {"url": [reason]},
        }
    }


def test_an_unknown_event_type_is_refused(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    response = api.post(
        "/v1/webhook-endpoints", {"url": "http://127.0.0.1/hook", "events": ["job.exploded"]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert "events" in response.json()["error"]["details"]


def test_a_missing_url_is_refused(api):
    response = api.post("/v1/webhook-endpoints", {"events": ["job.completed"]})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["url"]


def test_list_shows_only_this_organizations_endpoints(api, organization):
    mine = WebhookEndpointFactory(organization=organization)
    WebhookEndpointFactory()
    body = api.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in body["data"]] == [mine.public_id]


def test_delete_removes_the_endpoint(api, organization):
    endpoint = WebhookEndpointFactory(organization=organization)
    response = api.delete(f"/v1/webhook-endpoints/{endpoint.public_id}")
    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_deliveries_list_each_attempt(api, organization):
    endpoint = WebhookEndpointFactory(organization=organization)
    delivery = delivery_with_attempts(endpoint, (500, ""), (None, "No complete answer within 10 s"))
    body = api.get(f"/v1/webhook-endpoints/{endpoint.public_id}/deliveries").json()
    attempts = list(delivery.attempts.all())
    assert body == {
        "data": [
            {
                "id": delivery.public_id,
                "event_id": delivery.event.public_id,
                "event_type": "job.completed",
                "status": "failed",
                "attempts": [
                    {
                        "at": attempts[0].attempted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "status_code": 500,
                        "latency_ms": 12,
                        "error": None,
                    },
                    {
                        "at": attempts[1].attempted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "status_code": None,
                        "latency_ms": 12,
                        "error": "No complete answer within 10 s",
                    },
                ],
            }
        ]
    }


def test_deliveries_limit_out_of_range_is_refused(api, organization):
    endpoint = WebhookEndpointFactory(organization=organization)
    response = api.get(f"/v1/webhook-endpoints/{endpoint.public_id}/deliveries", limit=101)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"


@pytest.mark.usefixtures("run_tasks_inline")
def test_retry_sends_the_same_event_again(
    api, organization, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    receiver.answer(Answer(status=500))
    endpoint = WebhookEndpointFactory(organization=organization, url=receiver.url())
    with django_capture_on_commit_callbacks(execute=True):
        services.emit_event(organization=organization, event_type="job.completed", data={})
    delivery = Delivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/webhook-deliveries/{delivery.public_id}/retry")
    assert response.status_code == 202
    assert response.json()["id"] == delivery.public_id
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    body = api.get(f"/v1/webhook-endpoints/{endpoint.public_id}/deliveries").json()
    assert body["data"][0]["status"] == "succeeded"
    assert [a["status_code"] for a in body["data"][0]["attempts"]] == [500, 200]


@pytest.mark.usefixtures("run_tasks_inline")
def test_resend_failed_since_resends_them(
    api, organization, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    endpoint = WebhookEndpointFactory(organization=organization, url=receiver.url())
    delivery_with_attempts(endpoint, (500, ""))
    since = (timezone.now() - timezone.timedelta(hours=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/v1/webhook-endpoints/{endpoint.public_id}/resend-failed", {"since": since}
        )
    assert (response.status_code, response.json()) == (202, {"resent": 1})
    assert len(receiver.received) == 1


def test_another_organizations_endpoint_is_not_found(api):
    theirs = WebhookEndpointFactory()
    delivery = delivery_with_attempts(theirs, (500, ""))
    for response in (
        api.delete(f"/v1/webhook-endpoints/{theirs.public_id}"),
        api.get(f"/v1/webhook-endpoints/{theirs.public_id}/deliveries"),
        api.post(
            f"/v1/webhook-endpoints/{theirs.public_id}/resend-failed",
            {"since": "2026-01-01T00:00:00Z"},
        ),
        api.post(f"/v1/webhook-deliveries/{delivery.public_id}/retry"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()
    assert Delivery.objects.get(pk=delivery.pk).status == "failed"


def test_a_key_without_the_webhooks_scope_is_forbidden_to_add_endpoints(client, organization):
    key = api_key_for(organization, scopes=["generate", "read"])
    response = client.post(
        "/v1/webhook-endpoints",
        {"url": "https://example.com/hook"},
        content_type="application/json",
        **auth_header(key),
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_without_a_key_it_is_unauthorized(client):
    assert client.get("/v1/webhook-endpoints").status_code == 401

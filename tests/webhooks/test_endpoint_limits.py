"""What bounds an organization's endpoints: the plan's cap, a paginated list, a rate limit."""

import pytest

from billing.models import Plan
from tests.accounts.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    api_key_for,
    auth_header,
)
from tests.generation.conftest import steady_window  # noqa: F401
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Delivery, Event, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_networks_allowed")]

HOOK = {"url": "http://127.0.0.1:9/hook"}


def api_for(client, organization):
    headers = auth_header(api_key_for(organization))

    class Api:
        def get(self, path, **params):
            return client.get(path, params, **headers)

        def post(self, path, body=None):
            return client.post(path, body or {}, content_type="application/json", **headers)

    return Api()


def organization_with_endpoints(count: int, plan: str = "free"):
    organization = OrganizationFactory(plan=PlanFactory(slug=plan))
    WebhookEndpointFactory.create_batch(count, organization=organization)
    return organization


def test_the_plans_cap_endpoints_at_10_50_and_500():
    caps = dict(Plan.objects.values_list("slug", "max_webhook_endpoints"))
    assert caps == {"free": 10, "pro": 50, "enterprise": 500}


def test_an_endpoint_past_the_plans_cap_is_refused_and_not_created(client):
    organization = organization_with_endpoints(10)
    response = api_for(client, organization).post("/v1/webhook-endpoints", HOOK)
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "webhook_endpoint_limit_reached",
            "message": "The plan's webhook endpoint limit is reached",
            "details": "The Free plan allows 10 webhook endpoints and this organization has "
            "10. Delete one or upgrade the plan to add another.",
        }
    }
    assert WebhookEndpoint.objects.filter(organization=organization).count() == 10


def test_the_cap_follows_the_plan(client):
    organization = organization_with_endpoints(10, plan="pro")
    response = api_for(client, organization).post("/v1/webhook-endpoints", HOOK)
    assert response.status_code == 201
    assert WebhookEndpoint.objects.filter(organization=organization).count() == 11


def test_the_page_refuses_an_endpoint_past_the_cap_with_the_reason(client):
    organization = organization_with_endpoints(10)
    owner = MembershipFactory(organization=organization, role="owner")
    client.force_login(owner.user)
    response = client.post("/webhooks/", HOOK)
    assert response.status_code == 409
    assert "The Free plan allows 10 webhook endpoints" in response.content.decode()
    assert WebhookEndpoint.objects.filter(organization=organization).count() == 10


def test_the_list_pages_with_a_cursor_newest_first(client):
    organization = organization_with_endpoints(5)
    api = api_for(client, organization)
    first = api.get("/v1/webhook-endpoints", limit=2).json()
    second = api.get("/v1/webhook-endpoints", limit=2, cursor=first["next_cursor"]).json()
    third = api.get("/v1/webhook-endpoints", limit=2, cursor=second["next_cursor"]).json()
    ids = [e["id"] for page in (first, second, third) for e in page["data"]]
    newest_first = WebhookEndpoint.objects.order_by("-created_at", "-public_id")
    assert ids == [e.public_id for e in newest_first]
    assert [len(p["data"]) for p in (first, second, third)] == [2, 2, 1]
    assert third["next_cursor"] is None


def test_the_list_holds_20_endpoints_per_page_by_default(client):
    organization = organization_with_endpoints(21, plan="pro")
    body = api_for(client, organization).get("/v1/webhook-endpoints").json()
    assert len(body["data"]) == 20
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "zz"}])
def test_a_bad_list_query_is_refused(client, query):
    organization = organization_with_endpoints(1)
    response = api_for(client, organization).get("/v1/webhook-endpoints", **query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert list(error["fields"]) == list(query)


def test_a_cursor_the_api_did_not_return_is_refused_in_the_documented_shape(client):
    organization = organization_with_endpoints(1)
    response = api_for(client, organization).get("/v1/webhook-endpoints", cursor="zz")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_parameters",
            "message": "Invalid parameters",
            "details": "cursor: Not a cursor this API returned.",
            "fields": {"cursor": ["Not a cursor this API returned."]},
        }
    }


@pytest.mark.usefixtures("steady_window")
def test_creating_endpoints_past_the_rate_limit_is_429_and_creates_nothing(client):
    organization = OrganizationFactory(plan=PlanFactory(slug="enterprise"))
    api = api_for(client, organization)
    for _ in range(30):
        assert api.post("/v1/webhook-endpoints", HOOK).status_code == 201
    response = api.post("/v1/webhook-endpoints", HOOK)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "minute" in error["details"]
    assert int(response["Retry-After"]) >= 1
    assert response["X-RateLimit-Limit"] == str(organization.requests_per_minute)
    assert WebhookEndpoint.objects.filter(organization=organization).count() == 30


@pytest.mark.usefixtures("steady_window")
def test_retries_and_resends_count_in_the_same_rate_limit(client):
    organization = OrganizationFactory()
    endpoint = WebhookEndpointFactory(organization=organization)
    event = Event.objects.create(organization=organization, type="job.completed", data={})
    delivery = Delivery.objects.create(
        organization=organization, event=event, endpoint=endpoint, status="failed"
    )
    api = api_for(client, organization)
    for _ in range(15):
        assert api.post(f"/v1/webhook-deliveries/{delivery.public_id}/retry").status_code == 202
        resend = api.post(
            f"/v1/webhook-endpoints/{endpoint.public_id}/resend-failed",
            {"since": "2026-01-01T00:00:00Z"},
        )
        assert resend.status_code == 202
    response = api.post(f"/v1/webhook-deliveries/{delivery.public_id}/retry")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.usefixtures("steady_window")
def test_the_page_refuses_changes_past_the_rate_limit(client):
    owner = MembershipFactory(role="owner", organization__plan=PlanFactory(slug="enterprise"))
    client.force_login(owner.user)
    endpoint = WebhookEndpointFactory(organization=owner.organization)
    for _ in range(30):
        client.post(f"/webhooks/{endpoint.public_id}/rotate-secret/")
    endpoint.refresh_from_db()
    secret = endpoint.secret
    response = client.post(f"/webhooks/{endpoint.public_id}/rotate-secret/", follow=True)
    assert "Too many webhook changes" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret == secret
    response = client.post("/webhooks/", HOOK)
    assert response.status_code == 429
    assert WebhookEndpoint.objects.filter(organization=owner.organization).count() == 1

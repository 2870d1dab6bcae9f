"""In the browser, a second organization's user sees nothing of the first one's:
not its jobs, keys, invoices or webhooks, in lists or by id (404)."""

import shutil

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from billing.models import Invoice
from generation.events import emit_job_event
from generation.models import Job, JobImage
from tests.accounts.factories import MembershipFactory
from tests.e2e.conftest import log_in_as
from tests.generation.factories import JobFactory
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Delivery

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def first_organization():
    """An organization with a finished job, an API key, an invoice and a webhook endpoint."""
    owner = MembershipFactory(organization__name="First Org")
    organization = owner.organization
    job = JobFactory(
        organization=organization, status=Job.Status.COMPLETED, prompt="first org's prompt"
    )
    JobImage.objects.filter(job=job).update(storage_path=f"images/{job.pk}/0.png")
    key = account_services.create_api_key(organization=organization, name="first-org-key")
    invoice = Invoice.objects.create(
        number="INV-FIRST-0001",
        organization=organization,
        kind=Invoice.Kind.PACK,
        subtotal=500,
        total=500,
        amount_paid=500,
        currency="usd",
        credits_added=100,
    )
    endpoint = WebhookEndpointFactory(
        organization=organization, url="https://first-org.example.com/hook"
    )
    emit_job_event(job=job, event_type="job.completed")
    delivery = Delivery.objects.get(endpoint=endpoint)
    return {
        "job": job,
        "key": key.api_key,
        "invoice": invoice,
        "endpoint": endpoint,
        "delivery": delivery,
    }


def test_a_second_organizations_user_sees_none_of_the_first_ones_data(
    page, live_server, client, first_organization
):
    site = live_server.url
    second = MembershipFactory(organization__name="Second Org")
    log_in_as(page, live_server, client, second.user)
    job, key, invoice, endpoint, delivery = (
        first_organization[name] for name in ("job", "key", "invoice", "endpoint", "delivery")
    )

    page.goto(f"{site}/dashboard/")
    expect(page.locator("h1")).to_have_text("Second Org")
    expect(page.locator("main")).not_to_contain_text("first org's prompt")
    expect(page.locator("main")).not_to_contain_text("first-org-key")
    expect(page.locator("main")).to_contain_text("No jobs yet")

    page.goto(f"{site}/jobs/")
    expect(page.locator("main")).to_contain_text("No jobs yet")
    expect(page.locator("main")).not_to_contain_text(job.public_id)

    page.goto(f"{site}/keys/")
    expect(page.locator("main")).not_to_contain_text("first-org-key")
    expect(page.locator("main")).not_to_contain_text(key.prefix)

    page.goto(f"{site}/billing/invoices/")
    expect(page.locator("main")).not_to_contain_text(invoice.number)

    page.goto(f"{site}/webhooks/")
    expect(page.locator("main")).to_contain_text("No endpoint yet")
    expect(page.locator("main")).not_to_contain_text("first-org.example.com")

    for path in (
        f"/webhooks/{endpoint.public_id}/",
        f"/webhooks/deliveries/{delivery.public_id}/",
        f"/jobs/{job.public_id}/",
        f"/playground/?job={job.public_id}",
        f"/playground/jobs/{job.public_id}/",
        f"/billing/invoices/{invoice.number}/",
        f"/keys/{key.pk}/revoke/",
    ):
        response = page.goto(f"{site}{path}")
        assert response.status == 404, path
        expect(page.locator("main")).not_to_contain_text("first org")

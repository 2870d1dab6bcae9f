"""Every page, in a real browser, fits a phone (390 px) and a laptop (1280 px) without
sideways scrolling, with the long names and tables a real organization has."""

import shutil

import pytest

from accounts import services
from accounts.models import Membership
from billing.models import Invoice
from generation.models import Job, JobImage
from tests.accounts.factories import MembershipFactory
from tests.billing.factories import give_credits
from tests.e2e.conftest import log_in_as
from tests.generation.factories import JobFactory
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Attempt, Delivery, Event

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]

ANONYMOUS_PAGES = ["/", "/login/", "/signup/", "/password-reset/"]
WIDTHS = [390, 1280]


@pytest.fixture
def organization_pages():
    """A busy organization's owner, and the path of every page they can open."""
    owner = MembershipFactory(
        organization__name="The Extraordinarily Long-Named Creative Imaging Collective GmbH",
        user__email="a.very.long.address.for.testing@subdomain.example-company.com",
    )
    organization = owner.organization
    MembershipFactory(organization=organization, role=Membership.Role.MEMBER)
    give_credits(organization, 123_456)
    for name in ("production server", "a key with a rather long descriptive name"):
        services.create_api_key(organization=organization, name=name)
    job = JobFactory(
        organization=organization,
        status=Job.Status.COMPLETED,
        prompt="a majestic dragon flying over a medieval castle at sunset, " * 4,
    )
    JobImage.objects.filter(job=job).update(storage_path=f"images/{job.pk}/0.png")
    endpoint = WebhookEndpointFactory(
        organization=organization,
        url="https://hooks.example-company.com/imagen/receiver/with/a/long/path?token=abc123",
    )
    event = Event.objects.create(
        organization=organization, type="job.completed", data={"prompt": job.prompt}
    )
    delivery = Delivery.objects.create(
        organization=organization, event=event, endpoint=endpoint, status="failed"
    )
    Attempt.objects.create(delivery=delivery, status_code=502, response_body="bad gateway " * 50)
    invoice = Invoice.objects.create(
        number="INV-000123",
        organization=organization,
        kind=Invoice.Kind.PACK,
        status=Invoice.Status.PAID,
        subtotal=2900,
        total=2900,
        amount_paid=2900,
        currency="usd",
    )
    paths = [
        "/dashboard/",
        "/playground/",
        "/keys/",
        "/team/",
        "/billing/",
        "/billing/invoices/",
        f"/billing/invoices/{invoice.number}/",
        "/billing/ledger/",
        "/webhooks/",
        f"/webhooks/{endpoint.public_id}/",
        f"/webhooks/deliveries/{delivery.public_id}/",
        "/jobs/",
        f"/jobs/{job.public_id}/",
        "/settings/",
        "/organizations/new/",
        "/docs/",
    ]
    return owner.user, paths


# The elements that stick out of the window (outside the navigation, which scrolls itself),
# named in a failure so it says what to fix.
WIDER_THAN_THE_WINDOW = """() => {
  const limit = document.documentElement.clientWidth + 1;
  return [...document.querySelectorAll("body *")]
    .filter(e => !e.closest(".mainnav"))
    .filter(e => e.getBoundingClientRect().right > limit || e.scrollWidth > limit)
    .slice(0, 5)
    .map(e => `${e.tagName}.${e.className} in ${e.parentElement.tagName}`);
}"""


def overflowing(page, base_url: str, paths: list[str]) -> list[str]:
    """The pages wider than the window: how many pixels too wide, and what sticks out."""
    wide = []
    for path in paths:
        page.goto(f"{base_url}{path}")
        page.wait_for_load_state("networkidle")
        extra = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if extra > 0:
            wide.append(f"{path} (+{extra} px: {page.evaluate(WIDER_THAN_THE_WINDOW)})")
    return wide


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(browser, live_server, client, organization_pages, width):
    user, paths = organization_pages
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    wide = overflowing(page, live_server.url, ANONYMOUS_PAGES)
    log_in_as(page, live_server, client, user)
    wide += overflowing(page, live_server.url, paths)
    assert wide == [], "; ".join(wide)
    context.close()


def test_the_navigation_stays_on_one_row_at_1280_px(
    browser, live_server, client, organization_pages
):
    user, _ = organization_pages
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in_as(page, live_server, client, user)
    page.goto(f"{live_server.url}/dashboard/")
    tops = page.eval_on_selector_all(".mainnav a", "links => links.map(a => a.offsetTop)")
    assert len(set(tops)) == 1
    context.close()

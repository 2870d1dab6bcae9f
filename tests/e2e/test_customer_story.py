"""The customer's whole story in a real browser: sign up, key, credits, images, API, history.

Chromium drives the live server; localstripe plays Stripe (its fake Stripe.js in the page,
its signed webhooks to our endpoint) and a real Celery worker renders the images.
"""

import json
import re
import shutil
import time

import pytest
import requests
from django.core import mail
from playwright.sync_api import expect

from billing import services as billing_services
from billing.models import CreditPack
from tests.accounts.factories import PlanFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]

EMAIL = "ada@example.com"
PASSWORD = "a-long-and-unusual-passphrase"


@pytest.fixture
def shop(stripe_server, settings):
    """The plans and one credit pack, known to localstripe; its Stripe.js in our pages."""
    settings.STRIPE_JS_URL = f"{stripe_server}/js.stripe.com/v3/"
    for slug in ("free", "pro", "enterprise"):
        PlanFactory(slug=slug)
    CreditPack.objects.update(active=False)
    pack = CreditPack.objects.create(name="Starter", credits=100, price_cents=500)
    billing_services.sync_stripe_catalog()
    return pack


def _type_card(page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2034")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Postal code (optional)").fill("75001")


def _reload_until(page, locator, text: str, timeout: float = 20.0) -> None:
    """Reload until `locator` shows `text`: what a person waiting for a payment does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.count() and text in locator.first.inner_text():
            return
        time.sleep(0.5)
        page.reload()
    expect(locator.first).to_contain_text(text)


@pytest.mark.usefixtures("celery_worker")
def test_customer_story(page, live_server, shop, webhook_receiver):
    site = live_server.url

    # Sign up.
    page.goto(f"{site}/signup/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Name (optional)").fill("Ada Lovelace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(f"{site}/dashboard/")
    expect(page.locator(".messages")).to_contain_text("Welcome!")
    starting_balance = int(page.locator("#credit-balance").inner_text().replace(",", ""))

    # Create an API key and read the secret, shown this once.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("story")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator(".messages")).to_contain_text("Copy it now")
    secret = page.get_by_label("API key").input_value()
    assert re.fullmatch(r"sk_live_[a-z0-9]{8}_[A-Za-z0-9_-]{32,}", secret)
    page.get_by_role("link", name="I have copied it").click()
    expect(page.locator("body")).to_contain_text("story")
    assert secret not in page.content()

    # Buy a credit pack with 4242 through the fake Stripe.js; the balance rises on the webhook.
    nav.get_by_role("link", name="Billing").click()
    _type_card(page, "4242424242424242")
    page.get_by_role("button", name="Buy Starter").click()
    expect(page.locator("#payment-message.success")).to_be_visible()
    page.goto(f"{site}/dashboard/")
    _reload_until(page, page.locator("#credit-balance"), f"{starting_balance + 100:,}")

    # Generate two images in the playground and see them.
    nav.get_by_role("link", name="Playground").click()
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_label("Size (width by height)").select_option("512x512")
    page.get_by_label("Steps").fill("10")
    page.get_by_label("Number of images").fill("2")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".messages")).to_contain_text("2 images for 2 credits")
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=30_000)
    images = page.locator("#job-result img")
    expect(images).to_have_count(2)
    for index in range(2):
        assert images.nth(index).evaluate("img => img.complete && img.naturalWidth") == 512
    playground_job = page.locator("#job-result").get_attribute("data-job")
    expect(page.locator("#curl-command")).to_contain_text("/v1/text-to-image")

    # Call the API with the key, as the customer's own code would.
    response = requests.post(
        f"{site}/v1/text-to-image",
        json={"prompt": "a fox in the snow", "width": 512, "height": 512, "steps": 10},
        headers={"Authorization": f"Bearer {secret}", "Prefer": "wait=30"},
        timeout=40,
    )
    assert response.status_code == 200, response.text
    api_job = response.json()
    assert api_job["status"] == "completed"

    # Both jobs are in the history, with their images.
    nav.get_by_role("link", name="Jobs").click()
    history = page.locator("#job-history")
    expect(history).to_contain_text(playground_job)
    expect(history).to_contain_text(api_job["id"])
    expect(history.locator("img.thumb")).to_have_count(2)
    page.get_by_role("link", name=api_job["id"]).click()
    expect(page.locator("#job-parameters")).to_contain_text("a fox in the snow")
    expect(page.locator("#job-images img")).to_have_count(1)
    page.goto(f"{site}/dashboard/")
    # 2 credits for the playground's two images, 1 for the API's one.
    expect(page.locator("#credit-balance")).to_have_text(f"{starting_balance + 97:,}")

    # Register a webhook endpoint: the next job's delivery shows in its log and on the job.
    nav.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL", exact=True).fill(webhook_receiver.url())
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".messages")).to_contain_text("Endpoint added")
    response = requests.post(
        f"{site}/v1/text-to-image",
        json={"prompt": "a heron at dawn", "width": 512, "height": 512, "steps": 10},
        headers={"Authorization": f"Bearer {secret}", "Prefer": "respond-async"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    hooked_job = response.json()["id"]
    completed = page.locator("article.delivery", has_text="job.completed")
    _reload_until(page, completed, "succeeded")
    expect(completed.first.locator("table.attempts")).to_contain_text("200")
    bodies = [json.loads(request.body) for request in webhook_receiver.received]
    assert [b["data"]["id"] for b in bodies if b["type"] == "job.completed"] == [hooked_job]
    assert all("webhook-signature" in request.headers for request in webhook_receiver.received)
    page.goto(f"{site}/jobs/{hooked_job}/")
    expect(page.locator("#job-deliveries")).to_contain_text("job.completed")
    expect(page.locator("#job-deliveries")).to_contain_text("succeeded")

    # The invoice is listed, and its email was sent.
    nav.get_by_role("link", name="Billing").click()
    page.get_by_role("link", name="Invoices").click()
    expect(page.locator("main")).to_contain_text("Paid")
    assert [message.to for message in mail.outbox if "nvoice" in message.subject] == [[EMAIL]]

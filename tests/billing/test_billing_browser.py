"""The billing page in a real browser (Chromium), with localstripe's fake Stripe.js."""

import shutil

import pytest
from django.conf import settings as django_settings
from django.db import connections

from accounts.models import Organization
from billing import services
from billing.models import CreditPack, Invoice
from tests.accounts.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.billing.conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def page(stripe_server, live_server, client, settings, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.STRIPE_JS_URL = f"{stripe_server}/js.stripe.com/v3/"
    PlanFactory(slug="free")
    CreditPack.objects.update(active=False)  # only this test's pack on the page
    CreditPack.objects.create(name="Starter", credits=100, price_cents=500)
    services.sync_stripe_catalog()
    membership = MembershipFactory(organization=OrganizationFactory(billing_email=""))
    client.force_login(membership.user)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        context = browser.new_context()
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.organization = membership.organization
        page.goto(f"{live_server.url}/billing/")
        yield page
        browser.close()
        # ORM calls made while Playwright's loop ran used their own connection: close it.
        connections.close_all()


def _type_card(page, number: str):
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("34")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("75001")


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def test_buying_a_pack_in_the_browser_with_4242_adds_the_credits(page):
    _type_card(page, "4242424242424242")
    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_selector("#payment-message.success", timeout=15_000)
    assert wait_for(lambda: _balance(page.organization) == 100)
    assert Invoice.objects.filter(organization=page.organization).count() == 1


def test_a_declined_card_in_the_browser_says_why_and_adds_nothing(page):
    _type_card(page, "4000000000000002")
    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_selector("#payment-message.error", timeout=15_000)
    assert page.inner_text("#payment-message") == "Your card was declined."
    assert not wait_for(lambda: _balance(page.organization) > 0, timeout=2)

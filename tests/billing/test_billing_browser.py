"""The billing page in a real browser (Chromium), with localstripe's fake Stripe.js."""

import shutil

import pytest
from django.conf import settings as django_settings
from django.db import connections

from accounts.models import Organization
from billing import services
from billing.models import CreditPack, Invoice, SavedCard
from tests.accounts.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.billing.conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def page(stripe_server, live_server, client, settings, monkeypatch):
    yield from _billing_page(stripe_server, live_server, client, settings, monkeypatch, "owner")


@pytest.fixture
def member_page(stripe_server, live_server, client, settings, monkeypatch):
    yield from _billing_page(stripe_server, live_server, client, settings, monkeypatch, "member")


def _billing_page(stripe_server, live_server, client, settings, monkeypatch, role):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.STRIPE_JS_URL = f"{stripe_server}/js.stripe.com/v3/"
    PlanFactory(slug="free")
    PlanFactory(slug="pro")
    CreditPack.objects.update(active=False)  # only this test's pack on the page
    CreditPack.objects.create(name="Starter", credits=100, price_cents=500)
    services.sync_stripe_catalog()
    membership = MembershipFactory(organization=OrganizationFactory(billing_email=""), role=role)
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
        page.set_default_timeout(15_000)
        page.organization = membership.organization
        page.goto(f"{live_server.url}/billing/")
        yield page
        browser.close()
        # ORM calls made while Playwright's loop ran used their own connection: close it.
        connections.close_all()


def _type_card(page, number: str):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2034")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Postal code (optional)").fill("75001")


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


def test_a_number_typed_with_spaces_and_a_four_digit_year_buys_the_pack(page):
    page.get_by_label("Card number").press_sequentially("4242 4242 4242 4242")
    page.get_by_label("Expiry month").press_sequentially("12")
    page.get_by_label("Expiry year").press_sequentially("2030")
    page.get_by_label("CVC").press_sequentially("123")
    assert page.get_by_label("Card number").input_value() == "4242 4242 4242 4242"
    assert page.get_by_label("Expiry month").input_value() == "12"
    page.get_by_role("button", name="Buy Starter").click()
    page.wait_for_selector("#payment-message.success")
    assert wait_for(lambda: _balance(page.organization) == 100)


def test_digits_typed_without_spaces_are_grouped_by_four(page):
    page.get_by_label("Card number").press_sequentially("4000000000000002")
    assert page.get_by_label("Card number").input_value() == "4000 0000 0000 0002"


def test_buying_with_no_card_entered_says_to_enter_it(page):
    page.get_by_role("button", name="Buy Starter").click()
    message = page.locator("#packs #payment-message.error")
    assert message.inner_text().startswith("Enter your card")
    assert _balance(page.organization) == 0


def test_a_mistyped_card_number_says_what_is_wrong_next_to_the_field(page):
    _type_card(page, "4242 4242 4242 4241")
    page.get_by_role("button", name="Buy Starter").click()
    error = "This card number is not valid: check it for a typo."
    assert page.inner_text("#card-number-error") == error
    assert error in page.inner_text("#packs #payment-message.error")


def test_an_expired_card_is_refused_before_it_is_sent(page):
    _type_card(page, "4242424242424242")
    page.get_by_label("Expiry year").fill("2020")
    page.get_by_role("button", name="Buy Starter").click()
    assert page.inner_text("#card-exp-year-error") == "This card has expired."


def test_the_result_of_a_purchase_shows_under_the_button_pressed(page):
    _type_card(page, "4000000000000002")
    button = page.get_by_role("button", name="Buy Starter")
    button.click()
    message = page.locator("#packs #payment-message.error")
    message.wait_for()
    assert message.inner_text() == "Your card was declined."
    assert message.is_visible()
    box, pressed = message.bounding_box(), button.bounding_box()
    assert 0 < box["y"] - pressed["y"] < 200


def test_a_subscription_asks_for_confirmation_and_declining_changes_nothing(page):
    _type_card(page, "4242424242424242")
    asked = []

    def decline(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", decline)
    page.locator("button.subscribe[data-plan=pro]").click()
    assert len(asked) == 1
    assert asked[0].startswith("Subscribe to Pro for $")
    assert page.locator("#payment-message").is_hidden()
    assert Organization.objects.get(pk=page.organization.pk).plan.slug == "free"


def test_a_member_sees_billing_read_only(member_page):
    assert member_page.locator("#card-form").count() == 0
    assert member_page.get_by_role("button", name="Buy Starter").count() == 0
    assert member_page.get_by_role("button", name="Subscribe with this card").count() == 0
    assert "only its owners and admins" in member_page.inner_text("#read-only-billing")


def test_the_card_typed_as_the_readme_says_is_saved_and_shown(page):
    page.get_by_label("Card number").press_sequentially("4242 4242 4242 4242")
    page.get_by_label("Expiry month").press_sequentially("12")
    page.get_by_label("Expiry year").press_sequentially("2030")
    page.get_by_label("CVC").press_sequentially("123")
    page.get_by_role("button", name="Save card", exact=True).click()
    page.locator("#card-form #payment-message.success").wait_for()
    assert page.inner_text("#saved-card") == "Saved card: Visa •••• 4242, expires 12/2030."
    page.reload()
    assert page.inner_text("#saved-card") == "Saved card: Visa •••• 4242, expires 12/2030."
    assert page.get_by_role("button", name="Replace card").is_visible()


def test_replacing_the_saved_card_shows_the_new_one(page):
    _type_card(page, "4242424242424242")
    page.get_by_role("button", name="Save card", exact=True).click()
    page.locator("#card-form #payment-message.success").wait_for()
    page.get_by_label("Card number").fill("4012 8888 8888 1881")
    page.get_by_label("Expiry month").fill("8")
    page.get_by_label("Expiry year").fill("2031")
    page.get_by_role("button", name="Replace card").click()
    page.locator("#saved-card", has_text="1881").wait_for()
    assert page.inner_text("#saved-card") == "Saved card: Visa •••• 1881, expires 08/2031."
    page.reload()
    assert page.inner_text("#saved-card") == "Saved card: Visa •••• 1881, expires 08/2031."


def test_a_member_sees_the_saved_card_and_no_way_to_replace_it(member_page):
    SavedCard.objects.create(
        organization=member_page.organization,
        payment_method_id="pm_test",
        label="Visa •••• 4242",
        exp_month=12,
        exp_year=2030,
    )
    member_page.reload()
    assert member_page.inner_text("#saved-card") == "Saved card: Visa •••• 4242, expires 12/2030."
    assert member_page.get_by_role("button", name="Replace card").count() == 0

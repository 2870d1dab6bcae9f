"""The billing page's auto-recharge form in a real browser, with localstripe's Stripe.js."""

import shutil

import pytest

from billing.models import AutoRecharge
from tests.billing.test_billing_browser import _billing_page, _type_card

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def page(stripe_server, live_server, client, settings, monkeypatch):
    yield from _billing_page(stripe_server, live_server, client, settings, monkeypatch, "owner")


def test_an_owner_turns_auto_recharge_on_with_the_card_typed_on_the_page(page):
    _type_card(page, "4242424242424242")
    page.get_by_label("When the balance falls below (credits)").fill("250")
    page.get_by_role("button", name="Save the card above and turn on").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="Auto-recharge is on").wait_for()
    assert "below 250 credits, your Visa •••• 4242 buys the Starter pack" in alert.inner_text()
    setting = AutoRecharge.objects.get(organization=page.organization)
    assert (setting.enabled, setting.threshold, setting.pack.name) == (True, 250, "Starter")
    page.reload()
    assert "Auto-recharge is on" in page.locator("#auto-recharge-status").inner_text()

"""Auto-recharge end to end: the billing page's form, real submissions on a live server, a
real Celery worker charging through a real localstripe, whose signed events bring the
credits back through the webhook endpoint, as for any purchase."""

import threading
import time
import uuid

import pytest
import requests
from django.core import mail
from django.db import connection

from accounts.models import Membership, Organization
from billing import services, stripe_gateway
from billing.models import (
    AutoRecharge,
    AutoRechargeAttempt,
    CreditLedgerEntry,
    Invoice,
    PackPurchase,
)
from tests.accounts.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    api_key_for,
)
from tests.billing.conftest import confirm_card_setup, sell_starter_pack, wait_for
from tests.billing.factories import give_credits
from tests.celery_worker import in_thread_worker

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"
ALWAYS_AUTHENTICATE = "4000002760003184"
THRESHOLD = 100


@pytest.fixture
def pack(stripe_server):
    return sell_starter_pack(credits=500)


@pytest.fixture
def owner(client, pack):
    membership = MembershipFactory(
        user__email="owner@example.com",
        organization=OrganizationFactory(billing_email="", plan=PlanFactory(slug="pro")),
    )
    MembershipFactory(user__email="second-owner@example.com", organization=membership.organization)
    client.force_login(membership.user)
    # Above the threshold: turning auto-recharge on buys nothing yet.
    give_credits(membership.organization, THRESHOLD + 50)
    return membership.organization


@pytest.fixture
def billing_worker(transactional_db):
    """The Procfile's `webhooks` process consumes billing's tasks on the `celery` queue."""
    with in_thread_worker(["celery"]) as worker:
        yield worker


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def _saved_card(client, settings, stripe_server, number=VISA) -> str:
    """Save `number` as the billing page does (Stripe.js confirms the SetupIntent)."""
    client_secret = client.post("/billing/card/").json()["client_secret"]
    result = confirm_card_setup(
        stripe_server, client_secret, number, settings.STRIPE_PUBLISHABLE_KEY
    )
    setup_intent_id = client_secret.split("_secret_")[0]
    if result["status"] == "requires_action":
        # The cardholder passes 3-D Secure in Stripe.js's window, which confirms again.
        requests.post(
            f"{stripe_server}/v1/setup_intents/{setup_intent_id}/confirm",
            json={"key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": client_secret},
            timeout=5,
        ).raise_for_status()
    return setup_intent_id


def _turn_on(client, settings, stripe_server, pack, number=VISA, threshold=THRESHOLD):
    return client.post(
        "/billing/auto-recharge/",
        {
            "pack": pack.pk,
            "threshold": threshold,
            "setup_intent": _saved_card(client, settings, stripe_server, number),
        },
        HTTP_ACCEPT="application/json",
    )


def _spend(organization, amount: int):
    """A job's reservation, as a submission makes it."""
    return services.reserve_credits(
        organization=organization, amount=amount, reference=f"test-reserve:{uuid.uuid4()}"
    )


def _set_balance(organization, balance: int):
    difference = balance - _balance(organization)
    if difference > 0:
        give_credits(organization, difference)
    elif difference < 0:
        _spend(organization, -difference)
    organization.refresh_from_db()


def _cross(organization):
    """Put the balance at the threshold, then spend one credit, taking it below."""
    _set_balance(organization, THRESHOLD)
    _spend(organization, 1)


def _finished_attempts(organization) -> list[AutoRechargeAttempt]:
    return list(
        AutoRechargeAttempt.objects.filter(organization=organization)
        .exclude(status__in=AutoRechargeAttempt.OPEN_STATUSES)
        .order_by("created_at")
    )


def _payment_intents(organization) -> list[dict]:
    customer = Organization.objects.get(pk=organization.pk).stripe_customer_id
    intents = stripe_gateway.client().v1.payment_intents.list(params={"limit": 100})
    return [i for i in intents.to_dict()["data"] if i["customer"] == customer]


def test_twenty_concurrent_submissions_crossing_the_threshold_buy_one_pack(
    client, settings, stripe_server, pack, owner, billing_worker, live_server
):
    assert _turn_on(client, settings, stripe_server, pack).status_code == 200
    _set_balance(owner, THRESHOLD + 5)
    key = api_key_for(owner)
    answers = []

    def submit():
        answers.append(
            requests.post(
                f"{live_server.url}/v1/text-to-image",
                json={"prompt": "a lighthouse"},
                headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
                timeout=30,
            ).status_code
        )

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(202) == 20
    assert wait_for(lambda: len(_finished_attempts(owner)) == 1)
    spent = -sum(
        CreditLedgerEntry.objects.filter(
            organization=owner, kind="reserve", job_id__isnull=False
        ).values_list("amount", flat=True)
    )
    assert spent > 5  # the submissions took the balance below the threshold
    assert _finished_attempts(owner)[0].status == AutoRechargeAttempt.Status.SUCCEEDED
    assert wait_for(lambda: _balance(owner) == THRESHOLD + 5 - spent + 500)
    assert AutoRechargeAttempt.objects.filter(organization=owner).count() == 1
    assert PackPurchase.objects.filter(organization=owner).count() == 1
    assert len(_payment_intents(owner)) == 1
    assert CreditLedgerEntry.objects.filter(organization=owner, kind="purchase").count() == 1


def test_the_recharge_credits_arrive_with_stripes_signed_event_and_an_invoice(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _turn_on(client, settings, stripe_server, pack)
    _cross(owner)
    assert wait_for(lambda: _balance(owner) == THRESHOLD - 1 + 500)
    purchase = PackPurchase.objects.get(organization=owner)
    entry = CreditLedgerEntry.objects.get(organization=owner, kind="purchase")
    assert entry.reference == f"stripe:payment_intent:{purchase.stripe_payment_intent_id}"
    assert purchase.status == PackPurchase.Status.SUCCEEDED
    invoice = Invoice.objects.get(organization=owner)
    assert (invoice.total, invoice.credits_added) == (500, 500)
    [attempt] = _finished_attempts(owner)
    assert attempt.status == AutoRechargeAttempt.Status.SUCCEEDED
    assert wait_for(lambda: any("invoice" in m.subject.lower() for m in mail.outbox))


def test_turning_it_on_below_the_threshold_recharges_at_once(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _set_balance(owner, 10)
    _turn_on(client, settings, stripe_server, pack)
    assert wait_for(lambda: _balance(owner) == 510)


def test_a_balance_that_stays_below_the_threshold_buys_nothing_more(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _turn_on(client, settings, stripe_server, pack, threshold=1000)
    assert wait_for(lambda: _balance(owner) == THRESHOLD + 50 + 500)
    owner.refresh_from_db()
    _spend(owner, 2)  # still below 1000 after the pack: no new crossing
    assert not wait_for(lambda: PackPurchase.objects.count() > 1, timeout=3)
    assert AutoRechargeAttempt.objects.count() == 1


def test_a_declined_card_emails_the_owners_a_link_to_buy_credits(
    client, settings, stripe_server, pack, owner, billing_worker
):
    assert _turn_on(client, settings, stripe_server, pack, DECLINED_ON_CHARGE).status_code == 200
    _cross(owner)
    assert wait_for(lambda: len(mail.outbox) == 1)
    message = mail.outbox[0]
    assert sorted(message.to) == ["owner@example.com", "second-owner@example.com"]
    assert message.subject == f"Auto-recharge of {owner.name} could not buy credits"
    assert "Your card was declined." in message.body
    assert f"{live_url(settings)}/billing/#packs" in message.body
    [attempt] = _finished_attempts(owner)
    assert attempt.status == AutoRechargeAttempt.Status.FAILED
    assert not wait_for(lambda: _balance(owner) != THRESHOLD - 1, timeout=2.5)
    assert AutoRecharge.objects.get(organization=owner).enabled is True
    page = client.get("/billing/").content.decode()
    assert "Failed — Your card was declined." in page


def live_url(settings) -> str:
    return settings.SITE_URL


def test_a_charge_the_bank_wants_authenticated_emails_the_owners_a_link_to_pay(
    client, settings, stripe_server, pack, owner, billing_worker
):
    assert _turn_on(client, settings, stripe_server, pack, ALWAYS_AUTHENTICATE).status_code == 200
    _cross(owner)
    assert wait_for(lambda: len(mail.outbox) == 1)
    assert "asked you to confirm this payment" in mail.outbox[0].body
    assert f"{live_url(settings)}/billing/#packs" in mail.outbox[0].body
    assert _finished_attempts(owner)[0].status == AutoRechargeAttempt.Status.FAILED
    assert _balance(owner) == THRESHOLD - 1


def test_three_failures_in_a_row_turn_it_off_with_an_email(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _turn_on(client, settings, stripe_server, pack, DECLINED_ON_CHARGE)
    for failures in (1, 2, 3):
        _cross(owner)
        assert wait_for(lambda n=failures: len(_finished_attempts(owner)) == n)
    assert wait_for(lambda: len(mail.outbox) == 3)
    assert mail.outbox[2].subject == f"Auto-recharge is turned off for {owner.name}"
    assert "auto-recharge is now turned off" in mail.outbox[2].body
    assert AutoRecharge.objects.get(organization=owner).enabled is False
    _cross(owner)  # a fourth crossing buys nothing
    assert not wait_for(lambda: PackPurchase.objects.count() > 3, timeout=2.5)
    assert "It turned itself off after 3 failed charges" in client.get("/billing/").content.decode()


def test_a_paid_recharge_resets_the_failure_count(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _turn_on(client, settings, stripe_server, pack)
    AutoRecharge.objects.filter(organization=owner).update(consecutive_failures=2)
    _cross(owner)
    assert wait_for(lambda: _finished_attempts(owner))
    assert AutoRecharge.objects.get(organization=owner).consecutive_failures == 0


def test_turning_it_off_stops_further_purchases(
    client, settings, stripe_server, pack, owner, billing_worker
):
    _turn_on(client, settings, stripe_server, pack)
    response = client.post("/billing/auto-recharge/off/", HTTP_ACCEPT="application/json")
    assert response.json() == {"status": "ok", "message": "Auto-recharge is off."}
    _cross(owner)
    assert not wait_for(lambda: PackPurchase.objects.exists(), timeout=2.5)
    assert not AutoRechargeAttempt.objects.exists()
    assert "Auto-recharge is <strong>off</strong>" in client.get("/billing/").content.decode()


def test_turning_it_off_cancels_a_recharge_waiting_to_charge(
    client, settings, stripe_server, pack, owner
):
    _turn_on(client, settings, stripe_server, pack)
    _cross(owner)  # no worker runs: the attempt waits
    client.post("/billing/auto-recharge/off/")
    services.recharge(organization_id=owner.pk)
    assert AutoRechargeAttempt.objects.get().status == AutoRechargeAttempt.Status.CANCELED
    assert not PackPurchase.objects.exists()


@pytest.mark.parametrize("role", [Membership.Role.ADMIN, Membership.Role.MEMBER])
def test_only_an_owner_can_turn_it_on(client, settings, stripe_server, pack, owner, role):
    admin = MembershipFactory(organization=owner, role=role)
    client.force_login(admin.user)
    response = client.post(
        "/billing/auto-recharge/",
        {"pack": pack.pk, "threshold": THRESHOLD, "setup_intent": "seti_anything"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403
    assert "Only owners" in response.json()["message"]
    assert not AutoRecharge.objects.exists()
    assert "Only the organization's owners can change auto-recharge" in (
        client.get("/billing/").content.decode()
    )


def test_only_an_owner_can_turn_it_off(client, settings, stripe_server, pack, owner):
    _turn_on(client, settings, stripe_server, pack)
    admin = MembershipFactory(organization=owner, role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    response = client.post("/billing/auto-recharge/off/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert AutoRecharge.objects.get(organization=owner).enabled is True


def test_a_threshold_that_is_not_a_number_is_refused_and_nothing_saved(
    client, settings, stripe_server, pack, owner
):
    response = client.post(
        "/billing/auto-recharge/",
        {"pack": pack.pk, "threshold": "lots", "setup_intent": ""},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert "whole number of credits" in response.json()["message"]
    assert not AutoRecharge.objects.exists()


def test_the_page_shows_the_card_pack_and_threshold_when_on(
    client, settings, stripe_server, pack, owner
):
    response = _turn_on(client, settings, stripe_server, pack)
    assert response.json()["message"] == (
        "Auto-recharge is on: below 100 credits, your Visa •••• 4242 buys the Starter pack."
    )
    page = client.get("/billing/").content.decode()
    assert "Auto-recharge is <strong>on</strong>: when your balance falls below 100 credits" in page


def test_replacing_the_card_makes_auto_recharge_charge_the_new_one(
    client, settings, stripe_server, pack, owner
):
    _turn_on(client, settings, stripe_server, pack)
    response = client.post(
        "/billing/card/save/",
        {"setup_intent": _saved_card(client, settings, stripe_server, "4012888888881881")},
    )
    assert response.json()["card"] == "Visa •••• 1881"
    setting = AutoRecharge.objects.get(organization=owner)
    assert setting.card_label == "Visa •••• 1881"
    assert setting.payment_method_id == owner.saved_card.payment_method_id


def _recharge_twice_at_once(organization, monkeypatch) -> list[AutoRechargeAttempt]:
    """A second task for the attempt (the sweep's) starts while the first one is charging."""
    charge = stripe_gateway.charge_saved_card
    finished = []

    def second_task():
        try:
            finished.append(services.recharge(organization_id=organization.pk))
        finally:
            connection.close()

    second = threading.Thread(target=second_task)

    def charge_while_a_second_task_starts(**kwargs):
        if not second.is_alive():
            second.start()
            time.sleep(0.5)  # it reaches the purchase's lock meanwhile
        return charge(**kwargs)

    monkeypatch.setattr(stripe_gateway, "charge_saved_card", charge_while_a_second_task_starts)
    finished.append(services.recharge(organization_id=organization.pk))
    second.join()
    return finished


@pytest.mark.postgres
def test_a_second_task_for_an_attempt_being_charged_pays_nothing_more(
    client, settings, stripe_server, pack, owner, monkeypatch
):
    _turn_on(client, settings, stripe_server, pack)
    _cross(owner)  # no worker runs: the tests' two calls are the attempt's two tasks
    finished = _recharge_twice_at_once(owner, monkeypatch)
    assert [attempt.status for attempt in finished] == [AutoRechargeAttempt.Status.SUCCEEDED] * 2
    assert len(_payment_intents(owner)) == 1
    assert PackPurchase.objects.filter(organization=owner).count() == 1


@pytest.mark.postgres
def test_a_second_task_for_an_attempt_being_declined_sends_one_email(
    client, settings, stripe_server, pack, owner, monkeypatch
):
    _turn_on(client, settings, stripe_server, pack, DECLINED_ON_CHARGE)
    _cross(owner)
    _recharge_twice_at_once(owner, monkeypatch)
    assert len(mail.outbox) == 1
    assert AutoRecharge.objects.get(organization=owner).consecutive_failures == 1
    assert _finished_attempts(owner)[0].status == AutoRechargeAttempt.Status.FAILED

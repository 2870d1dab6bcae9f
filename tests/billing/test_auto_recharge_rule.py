"""The rule that opens an auto-recharge attempt, in the reservation's own transaction."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from billing import services
from billing.models import AutoRecharge, AutoRechargeAttempt, PackPurchase
from billing.services import auto_recharge
from tests.accounts.factories import MembershipFactory, OrganizationFactory
from tests.billing.factories import CreditPackFactory, give_credits

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization():
    organization = OrganizationFactory()
    AutoRecharge.objects.create(
        organization=organization,
        enabled=True,
        pack=CreditPackFactory(),
        threshold=100,
        payment_method_id="pm_test",
    )
    give_credits(organization, 105)
    return organization


def _spend(organization, amount: int):
    return services.reserve_credits(
        organization=organization, amount=amount, reference=f"r:{uuid.uuid4()}"
    )


def test_the_reservation_that_crosses_the_threshold_opens_one_attempt_sent_on_commit(
    organization, django_capture_on_commit_callbacks, monkeypatch
):
    from billing.services import auto_recharge

    sent = []
    monkeypatch.setattr(auto_recharge, "send_recharge", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        _spend(organization, 3)  # 102: still above
        _spend(organization, 3)  # 99: crosses
        _spend(organization, 3)  # 96: stays below
        assert sent == []  # nothing leaves before the commit
    attempt = AutoRechargeAttempt.objects.get()
    assert (attempt.status, attempt.balance) == ("pending", 99)
    assert sent == [{"organization_id": organization.pk}]


def test_a_second_crossing_while_an_attempt_is_open_opens_none(organization):
    _spend(organization, 10)  # 95: crosses
    give_credits(organization, 20)  # 115: back above (a refund, a grant)
    organization.refresh_from_db()
    _spend(organization, 20)  # 95: crosses again
    assert AutoRechargeAttempt.objects.count() == 1


def test_a_crossing_with_auto_recharge_off_opens_nothing(organization):
    AutoRecharge.objects.filter(organization=organization).update(enabled=False)
    _spend(organization, 10)
    assert not AutoRechargeAttempt.objects.exists()


def test_a_failed_submission_rolls_its_attempt_back(organization):
    def submit_and_fail():
        with transaction.atomic():
            _spend(organization, 10)
            raise RuntimeError("the job could not be published")

    with pytest.raises(RuntimeError):
        submit_and_fail()
    assert not AutoRechargeAttempt.objects.exists()


def test_the_sweep_sends_only_attempts_left_waiting(organization, monkeypatch):
    from billing.services import recharging

    sent = []
    monkeypatch.setattr(recharging, "send_recharge", lambda **kwargs: sent.append(kwargs))
    _spend(organization, 10)
    assert services.send_unsent_recharges() == 0
    later = timezone.now() + timedelta(minutes=3)
    assert services.send_unsent_recharges(now=later) == 1
    assert sent == [{"organization_id": organization.pk}]


def test_staff_see_auto_recharges_and_their_attempts_read_only(admin_client, organization):
    _spend(organization, 10)
    assert organization.name in admin_client.get("/admin/billing/autorecharge/").content.decode()
    page = admin_client.get("/admin/billing/autorechargeattempt/").content.decode()
    assert "Waiting to charge" in page
    assert admin_client.get("/admin/billing/autorecharge/add/").status_code == 403


def test_a_suspended_organization_buys_nothing(organization):
    _spend(organization, 10)
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    attempt = services.recharge(organization_id=organization.pk)
    assert attempt.status == AutoRechargeAttempt.Status.CANCELED
    assert not PackPurchase.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_crossings_at_the_same_moment_open_one_attempt(organization):
    barrier = threading.Barrier(20)
    errors = []

    def cross():
        try:
            with transaction.atomic():
                barrier.wait()
                auto_recharge.open_recharge_if_low(
                    organization=organization, balance_before=100, balance_after=99, threshold=100
                )
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=cross) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AutoRechargeAttempt.objects.filter(organization=organization).count() == 1


def test_an_owner_turns_it_back_on_with_the_card_saved_before(client, organization):
    owner = MembershipFactory(organization=organization)
    client.force_login(owner.user)
    AutoRecharge.objects.filter(organization=organization).update(
        enabled=False, card_label="Visa •••• 4242"
    )
    pack = AutoRecharge.objects.get(organization=organization).pack
    response = client.post("/billing/auto-recharge/", {"pack": pack.pk, "threshold": 50})
    assert response.status_code == 302
    setting = AutoRecharge.objects.get(organization=organization)
    assert (setting.enabled, setting.threshold, setting.payment_method_id) == (True, 50, "pm_test")
    page = client.get("/billing/").content.decode()
    assert (
        "Auto-recharge is on: below 50 credits, your Visa •••• 4242 buys the Starter pack." in page
    )


def test_the_sweep_sends_again_an_attempt_left_charging_five_minutes(organization, monkeypatch):
    from billing.services import recharging

    sent = []
    monkeypatch.setattr(recharging, "send_recharge", lambda **kwargs: sent.append(kwargs))
    _spend(organization, 10)
    AutoRechargeAttempt.objects.update(status=AutoRechargeAttempt.Status.CHARGING)
    assert services.send_unsent_recharges(now=timezone.now() + timedelta(minutes=4)) == 0
    assert services.send_unsent_recharges(now=timezone.now() + timedelta(minutes=6)) == 1
    assert sent == [{"organization_id": organization.pk}]

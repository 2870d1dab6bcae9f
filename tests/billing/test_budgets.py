"""Monthly budgets held by the reservation itself: exact, refunded, alerted once."""

import threading
import uuid
from datetime import date

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.errors import NotAllowed
from accounts.models import ApiKey, Organization
from billing import services
from billing.models import ApiKeyMonthlySpend, BudgetAlert, CreditLedgerEntry
from billing.selectors import ledger_mismatches
from tests.accounts.factories import MembershipFactory, OrganizationFactory, api_key_for
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def _organization(*, budget=None, credits=1000, owner_email="owner@example.com"):
    organization = OrganizationFactory(monthly_credit_budget=budget)
    MembershipFactory(organization=organization, user__email=owner_email)
    give_credits(organization, credits)
    return organization


def _key(organization, *, limit=None) -> ApiKey:
    api_key_for(organization)
    key = ApiKey.objects.filter(organization=organization).latest("pk")
    if limit is not None:
        ApiKey.objects.filter(pk=key.pk).update(monthly_credit_limit=limit)
    return key


def _reserve(organization, amount, *, key=None, reference=None):
    reference = reference or f"job:{uuid.uuid4()}"
    with transaction.atomic():
        return services.reserve_credits(
            organization=organization,
            amount=amount,
            reference=reference,
            job_id=uuid.uuid4(),
            api_key_id=key.pk if key else None,
        )


def _spent(organization) -> int:
    organization.refresh_from_db()
    assert organization.spend_month == services.month_of(timezone.now())
    return organization.month_spend


def test_reservation_over_the_organizations_budget_is_refused_and_charges_nothing():
    organization = _organization(budget=10)
    _reserve(organization, 8)
    with pytest.raises(services.BudgetExceeded) as refused:
        _reserve(organization, 3)
    assert (refused.value.budget, refused.value.limit, refused.value.remaining) == (
        "organization",
        10,
        2,
    )
    assert str(refused.value) == (
        "This request requires 3 credits, but the organization's monthly budget of 10 "
        "credits has 2 left this month"
    )
    assert _balance(organization) == 992
    assert _spent(organization) == 8
    assert CreditLedgerEntry.objects.filter(kind="reserve").count() == 1
    assert ledger_mismatches() == []


def test_reservation_up_to_the_budget_exactly_is_accepted():
    organization = _organization(budget=10)
    _reserve(organization, 4)
    _reserve(organization, 6)
    assert _spent(organization) == 10


def test_reservation_over_the_keys_limit_is_refused_with_the_keys_figures():
    organization = _organization(budget=100)
    key = _key(organization, limit=5)
    _reserve(organization, 4, key=key)
    with pytest.raises(services.BudgetExceeded) as refused:
        _reserve(organization, 2, key=key)
    assert (refused.value.budget, refused.value.limit, refused.value.remaining) == (
        "api_key",
        5,
        1,
    )
    assert "this API key's monthly credit limit of 5 credits has 1 left" in str(refused.value)
    assert ApiKeyMonthlySpend.objects.get(api_key=key).credits == 4
    assert _balance(organization) == 996


def test_a_keys_limit_does_not_hold_back_another_key():
    organization = _organization()
    limited, other = _key(organization, limit=5), _key(organization)
    _reserve(organization, 5, key=limited)
    with pytest.raises(services.BudgetExceeded):
        _reserve(organization, 1, key=limited)
    _reserve(organization, 50, key=other)
    assert _spent(organization) == 55
    assert _balance(organization) == 945


def test_a_limit_set_mid_month_counts_what_the_key_took_so_far():
    organization = _organization()
    owner = MembershipFactory(organization=organization, role="owner").user
    key = _key(organization)
    _reserve(organization, 6, key=key)
    refunded = _reserve(organization, 3, key=key)
    services.refund_reservation(organization=organization, reservation_reference=refunded.reference)
    services.set_api_key_credit_limit(api_key=key, actor=owner, limit=10)
    _reserve(organization, 4, key=key)
    with pytest.raises(services.BudgetExceeded) as refused:
        _reserve(organization, 1, key=key)
    assert refused.value.remaining == 0


def test_refund_gives_the_budget_back():
    organization = _organization(budget=10)
    key = _key(organization, limit=10)
    entry = _reserve(organization, 10, key=key)
    services.refund_reservation(organization=organization, reservation_reference=entry.reference)
    assert _spent(organization) == 0
    assert ApiKeyMonthlySpend.objects.get(api_key=key).credits == 0
    _reserve(organization, 10, key=key)


def test_job_entries_carry_their_api_key():
    organization = _organization()
    key = _key(organization)
    entry = _reserve(organization, 3, key=key)
    refund = services.refund_reservation(
        organization=organization, reservation_reference=entry.reference
    )
    stored = CreditLedgerEntry.objects.filter(pk__in=[entry.pk, refund.pk])
    assert {e.api_key_id for e in stored} == {key.pk}


def test_no_budget_counts_the_spend_all_the_same():
    organization = _organization()
    _reserve(organization, 7)
    assert _spent(organization) == 7


@pytest.mark.postgres
def test_reservation_with_its_budgets_is_still_one_statement_on_postgresql():
    organization = _organization(budget=100)
    key = _key(organization, limit=50)
    with CaptureQueriesContext(connection) as queries:
        services.reserve_credits(
            organization=organization, amount=4, reference="job:1", api_key_id=key.pk
        )
    assert len(queries) == 1
    assert ApiKeyMonthlySpend.objects.get(api_key=key).credits == 4


def test_owners_are_emailed_once_at_80_percent(django_capture_on_commit_callbacks):
    organization = _organization(budget=100)
    with django_capture_on_commit_callbacks(execute=True):
        _reserve(organization, 79)
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        _reserve(organization, 1)
        _reserve(organization, 1)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.com"]
    assert "80 %" in mail.outbox[0].subject
    assert "80 of 100 credits" in mail.outbox[0].body


def test_owners_are_emailed_at_100_percent_once(django_capture_on_commit_callbacks):
    organization = _organization(budget=100)
    with django_capture_on_commit_callbacks(execute=True):
        _reserve(organization, 90)
        entry = _reserve(organization, 10)
        services.refund_reservation(
            organization=organization, reservation_reference=entry.reference
        )
        _reserve(organization, 10)
    assert [m.subject for m in mail.outbox] == [
        "Your Imagen organization has used 80 % of its monthly budget",
        "Your Imagen organization has used 100 % of its monthly budget",
    ]


def test_the_same_thresholds_are_emailed_again_the_next_month(
    django_capture_on_commit_callbacks,
):
    organization = _organization(budget=100)
    with django_capture_on_commit_callbacks(execute=True):
        _reserve(organization, 85)
    # The month turns: what was counted and alerted belongs to the month gone by.
    last_month = date(2000, 1, 1)
    Organization.objects.filter(pk=organization.pk).update(spend_month=last_month)
    ApiKeyMonthlySpend.objects.update(month=last_month)
    BudgetAlert.objects.update(month=last_month)
    with django_capture_on_commit_callbacks(execute=True):
        _reserve(organization, 85)
    assert len(mail.outbox) == 2
    assert BudgetAlert.objects.filter(month=services.month_of(timezone.now())).count() == 1


def test_the_refused_submission_alerts_100_percent_once(django_capture_on_commit_callbacks):
    organization = _organization(budget=100)
    _reserve(organization, 98)
    for _ in range(2):
        with pytest.raises(services.BudgetExceeded) as refused:
            _reserve(organization, 5)
        with django_capture_on_commit_callbacks(execute=True):
            services.announce_budget_used_up(organization=organization, refusal=refused.value)
    assert [m.subject for m in mail.outbox] == [
        "Your Imagen organization has used 100 % of its monthly budget"
    ]


def test_a_keys_refusal_alerts_nobody(django_capture_on_commit_callbacks):
    organization = _organization(budget=100)
    key = _key(organization, limit=1)
    with pytest.raises(services.BudgetExceeded) as refused:
        _reserve(organization, 2, key=key)
    with django_capture_on_commit_callbacks(execute=True):
        services.announce_budget_used_up(organization=organization, refusal=refused.value)
    assert mail.outbox == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_set_the_budget_and_key_limits(role):
    organization = OrganizationFactory()
    person = MembershipFactory(organization=organization, role=role).user
    key = _key(organization)
    services.set_organization_budget(organization=organization, actor=person, budget=500)
    services.set_api_key_credit_limit(api_key=key, actor=person, limit=50)
    organization.refresh_from_db()
    key.refresh_from_db()
    assert (organization.monthly_credit_budget, key.monthly_credit_limit) == (500, 50)


def test_members_cannot_set_the_budget_or_key_limits():
    organization = OrganizationFactory()
    member = MembershipFactory(organization=organization, role="member").user
    key = _key(organization)
    with pytest.raises(NotAllowed):
        services.set_organization_budget(organization=organization, actor=member, budget=5)
    with pytest.raises(NotAllowed):
        services.set_api_key_credit_limit(api_key=key, actor=member, limit=5)
    organization.refresh_from_db()
    key.refresh_from_db()
    assert (organization.monthly_credit_budget, key.monthly_credit_limit) == (None, None)


def _race(count: int, reserve) -> list[str]:
    results: list[str] = []
    barrier = threading.Barrier(count)

    def run(n: int):
        barrier.wait()
        try:
            reserve(n)
            results.append("ok")
        except services.BudgetExceeded:
            results.append("over")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reservations_cannot_both_pass_the_organizations_budget():
    organization = _organization(budget=10)
    results = _race(2, lambda n: _reserve(organization, 6))
    assert sorted(results) == ["ok", "over"]
    assert _spent(organization) == 6
    assert _balance(organization) == 994
    assert ledger_mismatches() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_hold_a_keys_limit_exactly():
    organization = _organization()
    key = _key(organization, limit=10)
    results = _race(16, lambda n: _reserve(organization, 1, key=key))
    assert results.count("ok") == 10
    assert ApiKeyMonthlySpend.objects.get(api_key=key).credits == 10
    assert _balance(organization) == 990


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_crossings_email_the_owners_once():
    organization = _organization(budget=100)
    _reserve(organization, 70)
    _race(8, lambda n: _reserve(organization, 5))
    assert BudgetAlert.objects.filter(organization=organization).count() == 2
    assert [m.subject for m in mail.outbox] == [
        "Your Imagen organization has used 80 % of its monthly budget",
        "Your Imagen organization has used 100 % of its monthly budget",
    ]

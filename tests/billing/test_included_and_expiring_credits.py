from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Organization
from billing import services, tasks
from billing.models import CreditLedgerEntry
from billing.selectors import expiring_credits, ledger_mismatches
from tests.accounts.factories import OrganizationFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def _grant(organization, amount, reference, expires_at=None):
    return services.grant_credits(
        organization=organization, amount=amount, reference=reference, expires_at=expires_at
    )


def _reserve(organization, amount, reference):
    return services.reserve_credits(organization=organization, amount=amount, reference=reference)


def test_sign_up_gives_the_free_plan_its_monthly_credits():
    signed_up = account_services.sign_up(email="new@example.com", password="a-long-password-1")
    organization = signed_up.organization
    assert _balance(organization) == organization.plan.monthly_credits == 50
    entry = CreditLedgerEntry.objects.get(organization=organization)
    assert entry.reference == f"monthly:{organization.pk}:{organization.created_at:%Y-%m}"
    assert entry.expires_at == services.add_months(organization.created_at, 1)


def _personal_organization(**fields):
    return OrganizationFactory(personal_of=UserFactory(), **fields)


def test_monthly_credits_arrive_on_the_sign_up_anniversary_once():
    organization = _personal_organization(created_at=datetime(2026, 10, 20, 9, 0, tzinfo=UTC))
    assert services.grant_monthly_credits(organization=organization, now=NOW) is not None
    services.grant_monthly_credits(organization=organization, now=NOW)
    entries = CreditLedgerEntry.objects.filter(organization=organization)
    assert [e.reference for e in entries] == [f"monthly:{organization.pk}:2026-11"]
    assert entries[0].expires_at == datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
    assert _balance(organization) == 50


def test_no_monthly_credits_before_the_first_anniversary():
    organization = _personal_organization(created_at=datetime(2026, 11, 2, tzinfo=UTC))
    assert services.grant_monthly_credits(organization=organization, now=NOW) is None
    assert _balance(organization) == 0


def test_anniversary_on_the_31st_falls_on_the_last_day_of_a_short_month():
    organization = OrganizationFactory(created_at=datetime(2026, 1, 31, 10, 0, tzinfo=UTC))
    index, start = services.included_credit_period(
        organization=organization, now=datetime(2026, 2, 28, 11, 0, tzinfo=UTC)
    )
    assert (index, start) == (1, datetime(2026, 2, 28, 10, 0, tzinfo=UTC))


def test_paid_plans_get_no_monthly_grant_from_the_schedule():
    organization = _personal_organization(
        plan=PlanFactory(slug="pro"), created_at=datetime(2026, 9, 1, tzinfo=UTC)
    )
    assert services.grant_monthly_credits(organization=organization, now=NOW) is None


def test_a_free_organization_that_is_nobodys_personal_one_gets_no_monthly_grant():
    organization = OrganizationFactory(created_at=datetime(2026, 10, 20, 9, 0, tzinfo=UTC))
    assert services.grant_monthly_credits(organization=organization, now=NOW) is None
    assert _balance(organization) == 0


def test_monthly_task_grants_each_due_free_organization_once():
    due = _personal_organization(created_at=timezone.now() - timedelta(days=40))
    new = _personal_organization()
    tasks.grant_monthly_credits()
    tasks.grant_monthly_credits()
    assert _balance(due) == 50
    assert _balance(new) == 0


def test_expiry_removes_the_unused_rest_of_a_grant_once():
    organization = OrganizationFactory()
    _grant(organization, 30, "g1", expires_at=NOW - timedelta(hours=1))
    _reserve(organization, 12, "job:1")
    services.expire_credits(organization=organization, now=NOW)
    services.expire_credits(organization=organization, now=NOW)
    expiry = CreditLedgerEntry.objects.get(kind="expiry")
    assert (expiry.amount, expiry.reference) == (-18, "expiry:g1")
    assert _balance(organization) == 0
    assert ledger_mismatches() == []


def test_spending_uses_expiring_credits_before_credits_that_never_expire():
    organization = OrganizationFactory()
    _grant(organization, 100, "pack", expires_at=None)
    _grant(organization, 50, "monthly", expires_at=NOW - timedelta(minutes=1))
    _reserve(organization, 40, "job:1")
    services.expire_credits(organization=organization, now=NOW)
    assert CreditLedgerEntry.objects.get(kind="expiry").amount == -10
    assert _balance(organization) == 100


def test_the_grant_expiring_first_is_spent_first():
    organization = OrganizationFactory()
    _grant(organization, 20, "late", expires_at=NOW + timedelta(days=20))
    _grant(organization, 20, "soon", expires_at=NOW + timedelta(days=2))
    _reserve(organization, 25, "job:1")
    assert expiring_credits(organization=organization, now=NOW) == [
        {"expires_at": NOW + timedelta(days=20), "credits": 15},
    ]


def test_a_refund_goes_back_to_the_grant_it_was_taken_from():
    organization = OrganizationFactory()
    _grant(organization, 10, "pack", expires_at=None)
    _grant(organization, 10, "monthly", expires_at=NOW - timedelta(minutes=1))
    _reserve(organization, 8, "job:1")
    services.refund_reservation(organization=organization, reservation_reference="job:1")
    services.expire_credits(organization=organization, now=NOW)
    assert CreditLedgerEntry.objects.get(kind="expiry").amount == -10
    assert _balance(organization) == 10


def test_expiring_credits_lists_what_expires_when():
    organization = OrganizationFactory()
    first, second = NOW + timedelta(days=3), NOW + timedelta(days=30)
    _grant(organization, 5, "a", expires_at=first)
    _grant(organization, 7, "b", expires_at=second)
    _grant(organization, 9, "c", expires_at=None)
    assert expiring_credits(organization=organization, now=NOW) == [
        {"expires_at": first, "credits": 5},
        {"expires_at": second, "credits": 7},
    ]


def test_expiry_task_expires_every_due_grant_and_is_idempotent():
    organization = OrganizationFactory()
    _grant(organization, 30, "g1", expires_at=timezone.now() - timedelta(hours=1))
    _grant(organization, 5, "g2", expires_at=timezone.now() + timedelta(days=1))
    assert tasks.expire_credits() == 1
    assert tasks.expire_credits() == 0
    assert _balance(organization) == 5

"""billing reacts to accounts' organization_created: a sign-up's organization gets its credits."""

import pytest

from accounts import services as account_services
from accounts.models import Organization, User
from billing import services
from billing.models import CreditLedgerEntry
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def _sign_up():
    return account_services.sign_up(email="new@example.com", password="a-long-password-1")


def test_a_sign_up_is_granted_its_credits_once():
    organization = _sign_up().organization
    assert CreditLedgerEntry.objects.filter(organization=organization).count() == 1
    assert Organization.objects.get(pk=organization.pk).credit_balance == 50


def test_an_organization_created_outside_sign_up_gets_no_credits():
    organization = account_services.create_organization(name="Side", owner=UserFactory())
    assert organization.personal_of is not None
    assert not CreditLedgerEntry.objects.filter(organization=organization).exists()


def test_a_failed_grant_undoes_the_sign_up(monkeypatch):
    def failing_grant(*, organization):
        raise RuntimeError("the ledger is unavailable")

    monkeypatch.setattr(services, "grant_signup_credits", failing_grant)
    with pytest.raises(RuntimeError):
        _sign_up()
    assert not User.objects.filter(email="new@example.com").exists()
    assert not Organization.objects.exists()

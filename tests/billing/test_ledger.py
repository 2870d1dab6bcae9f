import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Organization
from billing import services
from billing.models import CreditLedgerEntry
from billing.selectors import ledger_mismatches
from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.billing.factories import give_credits

pytestmark = pytest.mark.django_db


def _balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def test_grant_adds_credits_and_records_the_balance_after():
    organization = OrganizationFactory()
    entry = services.grant_credits(organization=organization, amount=30, reference="g1")
    assert (entry.kind, entry.amount, entry.balance_after) == ("grant", 30, 30)
    assert _balance(organization) == 30


def test_replayed_grant_changes_nothing():
    organization = OrganizationFactory()
    first = services.grant_credits(organization=organization, amount=30, reference="stripe:evt_1")
    again = services.grant_credits(organization=organization, amount=30, reference="stripe:evt_1")
    assert again.pk == first.pk
    assert _balance(organization) == 30
    assert CreditLedgerEntry.objects.count() == 1


def test_reserve_takes_credits():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    entry = services.reserve_credits(organization=organization, amount=4, reference="job:1")
    assert (entry.kind, entry.amount, entry.balance_after) == ("reserve", -4, 6)
    assert _balance(organization) == 6


def test_reserve_fails_when_balance_is_short():
    organization = OrganizationFactory()
    give_credits(organization, 2)
    with pytest.raises(services.InsufficientCredits) as error:
        services.reserve_credits(organization=organization, amount=5, reference="job:1")
    assert (error.value.required, error.value.available) == (5, 2)
    assert str(error.value) == "This request requires 5 credits, but you have 2 remaining"
    assert _balance(organization) == 2
    assert not CreditLedgerEntry.objects.filter(reference="job:1").exists()


def test_replayed_reservation_is_charged_once():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    services.reserve_credits(organization=organization, amount=4, reference="job:1")
    services.reserve_credits(organization=organization, amount=4, reference="job:1")
    assert _balance(organization) == 6


def test_reference_reused_for_a_different_change_is_refused():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    services.reserve_credits(organization=organization, amount=4, reference="job:1")
    with pytest.raises(ValueError, match="another change"):
        services.reserve_credits(organization=organization, amount=5, reference="job:1")
    assert _balance(organization) == 6


def test_refund_gives_back_the_whole_reservation_once():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    services.reserve_credits(organization=organization, amount=4, reference="job:1")
    services.refund_reservation(organization=organization, reservation_reference="job:1")
    services.refund_reservation(organization=organization, reservation_reference="job:1")
    assert _balance(organization) == 10
    assert CreditLedgerEntry.objects.filter(kind="refund").count() == 1


def test_refund_of_another_organizations_reservation_is_refused():
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    give_credits(theirs, 10)
    services.reserve_credits(organization=theirs, amount=4, reference="job:theirs")
    with pytest.raises(CreditLedgerEntry.DoesNotExist):
        services.refund_reservation(organization=mine, reservation_reference="job:theirs")
    assert _balance(mine) == 0


def test_staff_adjustment_appends_an_entry_with_actor_and_reason():
    organization = OrganizationFactory()
    give_credits(organization, 10)
    staff = UserFactory(is_staff=True)
    entry = services.adjust_credits(
        organization=organization, amount=-3, reason="Duplicate grant", actor=staff, reference="a1"
    )
    assert (entry.kind, entry.amount, entry.actor, entry.memo) == (
        "adjustment",
        -3,
        staff,
        "Duplicate grant",
    )
    assert CreditLedgerEntry.objects.filter(organization=organization).count() == 2
    assert _balance(organization) == 7


def test_adjustment_cannot_take_the_balance_below_zero():
    organization = OrganizationFactory()
    give_credits(organization, 2)
    with pytest.raises(services.InsufficientCredits):
        services.adjust_credits(
            organization=organization, amount=-3, reason="x", actor=UserFactory(), reference="a1"
        )
    assert _balance(organization) == 2


def _columns(entry) -> dict:
    return {f.attname: getattr(entry, f.attname) for f in CreditLedgerEntry._meta.concrete_fields}


def _reserve_for_a_job(organization, staff):
    return services.reserve_credits(
        organization=organization, amount=4, reference="job:1", job_id=uuid.uuid4()
    )


def _refund_a_job(organization, staff):
    _reserve_for_a_job(organization, staff)
    return services.refund_reservation(
        organization=organization, reservation_reference="job:1", memo="The engine failed"
    )


def _grant_that_expires(organization, staff):
    return services.grant_credits(
        organization=organization,
        amount=5,
        reference="monthly:1",
        memo="Free plan: monthly included credits",
        expires_at=timezone.now() + timedelta(days=30),
    )


def _adjust_by_staff(organization, staff):
    return services.adjust_credits(
        organization=organization, amount=-3, reason="Duplicate grant", actor=staff, reference="a1"
    )


@pytest.mark.parametrize(
    "write", [_reserve_for_a_job, _refund_a_job, _grant_that_expires, _adjust_by_staff]
)
def test_returned_entry_equals_the_row_stored(write):
    organization = OrganizationFactory()
    give_credits(organization, 100)
    staff = UserFactory(is_staff=True)
    before = timezone.now()
    entry = write(organization, staff)
    stored = CreditLedgerEntry.objects.get(pk=entry.pk)
    assert _columns(entry) == _columns(stored)
    assert (entry._state.adding, entry._state.db) == (False, stored._state.db)
    assert before <= entry.created_at <= timezone.now()
    assert organization.credit_balance == entry.balance_after == _balance(organization)


def test_replayed_reservation_returns_the_first_entry():
    organization = OrganizationFactory()
    give_credits(organization, 100)
    job_id = uuid.uuid4()
    first = services.reserve_credits(
        organization=organization, amount=4, reference="job:1", job_id=job_id
    )
    again = services.reserve_credits(
        organization=organization, amount=4, reference="job:1", job_id=job_id
    )
    assert _columns(again) == _columns(first)
    assert CreditLedgerEntry.objects.filter(reference="job:1").count() == 1
    assert _balance(organization) == 96


def test_reference_used_by_another_organization_is_refused():
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    services.grant_credits(organization=theirs, amount=5, reference="stripe:evt_1")
    with pytest.raises(ValueError, match="another change"):
        services.grant_credits(organization=mine, amount=5, reference="stripe:evt_1")
    assert (_balance(mine), _balance(theirs)) == (0, 5)


def test_short_balance_writes_no_entry_whatever_the_organization_object_says():
    organization = OrganizationFactory()
    give_credits(organization, 2)
    organization.credit_balance = 100  # a stale copy: the database decides
    with pytest.raises(services.InsufficientCredits) as error:
        services.reserve_credits(organization=organization, amount=5, reference="job:1")
    assert error.value.available == organization.credit_balance == _balance(organization) == 2
    assert CreditLedgerEntry.objects.filter(organization=organization).count() == 1
    assert ledger_mismatches() == []


def test_negative_balance_is_impossible_even_through_the_orm():
    organization = OrganizationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(credit_balance=-1)


def test_failed_caller_transaction_rolls_the_reservation_back():
    organization = OrganizationFactory()
    give_credits(organization, 10)

    def submit_then_fail_to_enqueue():
        with transaction.atomic():
            services.reserve_credits(organization=organization, amount=4, reference="job:1")
            raise RuntimeError("enqueue failed")

    with pytest.raises(RuntimeError):
        submit_then_fail_to_enqueue()
    assert _balance(organization) == 10
    assert not CreditLedgerEntry.objects.filter(reference="job:1").exists()


def _reserve_queries(organization) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.reserve_credits(organization=organization, amount=1, reference=str(uuid.uuid4()))
    return len(queries)


def test_reserve_costs_the_same_queries_with_10_or_10000_ledger_rows():
    organization = OrganizationFactory()
    give_credits(organization, 100_000)
    CreditLedgerEntry.objects.bulk_create(
        CreditLedgerEntry(
            organization=organization, kind="grant", amount=1, balance_after=1, reference=f"b{i}"
        )
        for i in range(9)
    )
    small = _reserve_queries(organization)
    CreditLedgerEntry.objects.bulk_create(
        CreditLedgerEntry(
            organization=organization, kind="grant", amount=1, balance_after=1, reference=f"c{i}"
        )
        for i in range(9990)
    )
    assert _reserve_queries(organization) == small <= 2


@pytest.mark.postgres
def test_reservation_is_one_statement_on_postgresql():
    organization = OrganizationFactory()
    give_credits(organization, 100)
    with CaptureQueriesContext(connection) as queries:
        entry = services.reserve_credits(
            organization=organization, amount=4, reference="job:1", job_id=uuid.uuid4()
        )
    assert len(queries) == 1
    assert CreditLedgerEntry.objects.filter(pk=entry.pk, balance_after=96).exists()
    assert _balance(organization) == 96


def test_verify_ledger_is_clean_after_normal_use(capsys):
    organization = OrganizationFactory()
    give_credits(organization, 10)
    services.reserve_credits(organization=organization, amount=3, reference="job:1")
    call_command("verify_ledger")
    assert "verified" in capsys.readouterr().out


def test_verify_ledger_exits_1_and_names_a_drifted_organization(capsys):
    organization = OrganizationFactory()
    give_credits(organization, 10)
    Organization.objects.filter(pk=organization.pk).update(credit_balance=11)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert organization.slug in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_64_concurrent_reservations_against_32_credits_accept_exactly_32():
    organization = OrganizationFactory()
    give_credits(organization, 32)
    results: list[str] = []
    barrier = threading.Barrier(64)

    def reserve(n: int):
        barrier.wait()
        try:
            services.reserve_credits(organization=organization, amount=1, reference=f"job:{n}")
            results.append("ok")
        except services.InsufficientCredits:
            results.append("short")
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 32
    assert results.count("short") == 32
    assert _balance(organization) == 0
    assert ledger_mismatches() == []

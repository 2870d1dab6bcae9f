"""A submission sent in one round trip on PostgreSQL (common.db.one_round_trip): the same
outcomes as the careful way, which takes over for every refusal and every announcement."""

import threading

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey
from billing.models import (
    ApiKeyMonthlySpend,
    AutoRecharge,
    AutoRechargeAttempt,
    BudgetAlert,
    CreditLedgerEntry,
)
from billing.selectors import ledger_mismatches
from generation.models import Job
from tests.accounts.factories import MembershipFactory, api_key_for
from tests.billing.factories import CreditPackFactory
from tests.generation.factories import ASYNC, customer, headers
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Event, EventType

# Transactional: a test's own transaction would leave the submission no COMMIT to send.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ONE_CREDIT = {"prompt": "a lighthouse", "width": 1024, "height": 1024}


def post(client, key, body=ONE_CREDIT):
    return client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key, **ASYNC)
    )


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


def _key(secret: str) -> ApiKey:
    return ApiKey.objects.get(prefix=secret.removeprefix("sk_live_").split("_")[0])


def _reservations_sent(queries) -> int:
    table = CreditLedgerEntry._meta.db_table
    return sum(f"INSERT INTO {table}" in q["sql"] for q in queries)


def test_a_plain_submission_is_one_reservation_statement_that_charges_once(client):
    organization, key = customer(plan="pro", credits=100)
    with CaptureQueriesContext(connection) as queries:
        response = post(client, key)
    assert response.status_code == 202
    assert _reservations_sent(queries.captured_queries) == 1
    assert any("decline_quick_path" in q["sql"] for q in queries.captured_queries)
    assert balance(organization) == 99
    job = Job.objects.get()
    entry = CreditLedgerEntry.objects.get(kind="reserve")
    assert (entry.amount, entry.job_id, entry.api_key_id) == (-1, job.id, _key(key).pk)
    assert organization.month_spend == 1
    assert ledger_mismatches() == []


def test_a_prompt_with_quotes_and_percent_signs_is_stored_as_written(client):
    _, key = customer(plan="pro", credits=100)
    prompt = "50% off %s %(name)s; it's a \\ 'sale'"
    assert post(client, key, {**ONE_CREDIT, "prompt": prompt}).status_code == 202
    assert Job.objects.get().prompt == prompt


def test_a_submission_the_balance_does_not_cover_is_402_and_leaves_no_job(client):
    organization, key = customer(plan="pro", credits=1)
    response = post(client, key, {**ONE_CREDIT, "num_images": 2})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert balance(organization) == 1
    assert not Job.objects.exists()
    assert not CreditLedgerEntry.objects.filter(kind="reserve").exists()


def test_the_submission_that_takes_credits_below_the_threshold_announces_it(client):
    organization, key = customer(plan="pro", credits=12, low_credit_threshold=10)
    WebhookEndpointFactory(organization=organization)
    assert post(client, key).status_code == 202  # 11
    assert not Event.objects.filter(type=EventType.CREDITS_LOW).exists()
    assert post(client, key, {**ONE_CREDIT, "num_images": 2}).status_code == 202  # 9
    event = Event.objects.get(type=EventType.CREDITS_LOW)
    assert event.data["balance"] == 9
    assert balance(organization) == 9


def test_the_submission_that_crosses_the_recharge_threshold_opens_an_attempt(client):
    organization, key = customer(plan="pro", credits=101, low_credit_threshold=0)
    AutoRecharge.objects.create(
        organization=organization,
        enabled=True,
        pack=CreditPackFactory(),
        threshold=100,
        payment_method_id="pm_test",
    )
    assert post(client, key).status_code == 202  # 100: not below yet
    assert not AutoRechargeAttempt.objects.exists()
    assert post(client, key).status_code == 202  # 99
    assert AutoRechargeAttempt.objects.get().balance == 99


def test_the_submission_reaching_80_percent_of_the_budget_emails_the_owners_once(client):
    organization, key = customer(plan="pro", credits=100, monthly_credit_budget=10)
    MembershipFactory(organization=organization, user__email="owner@example.com")
    for _ in range(9):
        assert post(client, key).status_code == 202
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["owner@example.com"], "Your Imagen organization has used 80 % of its monthly budget")
    ]
    assert list(BudgetAlert.objects.values_list("threshold", flat=True)) == [80]


def test_a_submission_over_the_budget_is_402_and_charges_nothing(client):
    organization, key = customer(plan="pro", credits=100, monthly_credit_budget=4)
    assert post(client, key, {**ONE_CREDIT, "num_images": 3}).status_code == 202
    response = post(client, key, {**ONE_CREDIT, "num_images": 2})
    assert response.status_code == 402
    assert response.json()["error"]["details"] == (
        "This request requires 2 credits, but the organization's monthly budget of 4 credits "
        "has 1 left this month"
    )
    assert balance(organization) == 97
    assert Job.objects.count() == 1


def test_a_keys_limit_refuses_its_key_and_leaves_the_other_keys_alone(client):
    organization, limited = customer(plan="pro", credits=100)
    other = api_key_for(organization)
    ApiKey.objects.filter(pk=_key(limited).pk).update(monthly_credit_limit=1)
    assert post(client, limited).status_code == 202
    response = post(client, limited)
    assert response.status_code == 402
    assert (
        "this API key's monthly credit limit of 1 credits has 0 left"
        in (response.json()["error"]["details"])
    )
    assert post(client, other).status_code == 202
    assert balance(organization) == 98
    assert ApiKeyMonthlySpend.objects.get(api_key=_key(limited)).credits == 1


def _race(count: int, submit) -> list[int]:
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def run():
        barrier.wait()
        try:
            statuses.append(submit())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_submissions_hold_a_keys_limit_exactly(client):
    organization, key = customer(plan="enterprise", credits=100)
    ApiKey.objects.filter(pk=_key(key).pk).update(monthly_credit_limit=10)
    statuses = _race(16, lambda: post(client, key).status_code)
    assert sorted(statuses) == [202] * 10 + [402] * 6
    assert ApiKeyMonthlySpend.objects.get(api_key=_key(key)).credits == 10
    assert balance(organization) == 90
    assert Job.objects.count() == 10
    assert ledger_mismatches() == []


def test_concurrent_submissions_spend_the_balance_exactly(client):
    organization, key = customer(plan="enterprise", credits=10, low_credit_threshold=0)
    statuses = _race(16, lambda: post(client, key).status_code)
    assert sorted(statuses) == [202] * 10 + [402] * 6
    assert balance(organization) == 0
    assert Job.objects.count() == 10
    assert ledger_mismatches() == []

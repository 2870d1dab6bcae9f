"""Monthly budgets through the API: 402 `budget_exceeded` in every dialect, nothing charged."""

import pytest
from django.core import mail

from accounts.models import ApiKey
from billing.models import CreditLedgerEntry
from generation.models import Job
from tests.accounts.factories import MembershipFactory, api_key_for
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db

ONE_CREDIT = {"prompt": "a lighthouse", "width": 1024, "height": 1024}
# Four credits in each dialect.
DIALECTS = [
    ("/v1/text-to-image", {**ONE_CREDIT, "num_images": 4}),
    (
        "/v2/images/generate",
        {"prompt": "a lighthouse", "model": "imagen-v2", "parameters": {"num_images": 4}},
    ),
    ("/v1/images/generations", {"prompt": "a lighthouse", "model": "imagen-v2", "n": 4}),
    ("/v1/tasks/async", {"text_data": "a lighthouse", "options": {"num_images": 4}}),
    ("/v1/tasks/sync", {"text_data": "a lighthouse", "options": {"num_images": 4}}),
]
ORGANIZATION_REFUSAL = (
    "This request requires 4 credits, but the organization's monthly budget of 4 credits "
    "has 3 left this month"
)


def post(client, key, path, body):
    return client.post(path, body, content_type="application/json", **headers(key, **ASYNC))


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


def _key(secret: str) -> ApiKey:
    return ApiKey.objects.get(prefix=secret.removeprefix("sk_live_").split("_")[0])


def _limit(secret: str, limit: int) -> ApiKey:
    key = _key(secret)
    key.monthly_credit_limit = limit
    key.save(update_fields=["monthly_credit_limit"])
    return key


@pytest.mark.parametrize(("path", "body"), DIALECTS)
def test_a_submission_over_the_organizations_budget_is_402_and_charges_nothing(client, path, body):
    organization, key = customer(plan="pro", credits=100, monthly_credit_budget=4)
    assert post(client, key, "/v1/text-to-image", ONE_CREDIT).status_code == 202
    response = post(client, key, path, body)
    assert response.status_code == 402
    assert response.json() == {
        "error": {
            "code": "budget_exceeded",
            "message": "Monthly budget exceeded",
            "details": ORGANIZATION_REFUSAL,
        }
    }
    assert balance(organization) == 99
    assert Job.objects.count() == 1
    assert CreditLedgerEntry.objects.filter(kind="reserve").count() == 1


@pytest.mark.parametrize(("path", "body"), DIALECTS)
def test_a_submission_over_the_keys_limit_is_402_naming_the_key(client, path, body):
    organization, key = customer(plan="pro", credits=100)
    _limit(key, 2)
    response = post(client, key, path, body)
    assert response.status_code == 402
    assert response.json()["error"] == {
        "code": "budget_exceeded",
        "message": "Monthly budget exceeded",
        "details": "This request requires 4 credits, but this API key's monthly credit limit "
        "of 2 credits has 2 left this month",
    }
    assert balance(organization) == 100
    assert Job.objects.count() == 0


def test_a_keys_limit_leaves_the_other_keys_alone(client):
    organization, limited = customer(plan="pro", credits=100)
    other = api_key_for(organization)
    _limit(limited, 1)
    assert post(client, limited, "/v1/text-to-image", ONE_CREDIT).status_code == 202
    assert post(client, limited, "/v1/text-to-image", ONE_CREDIT).status_code == 402
    assert post(client, other, "/v1/text-to-image", ONE_CREDIT).status_code == 202
    assert post(client, other, "/v1/text-to-image", ONE_CREDIT).status_code == 202
    assert balance(organization) == 97


def test_a_canceled_job_gives_its_credits_back_to_the_budget(client):
    _, key = customer(plan="pro", credits=100, monthly_credit_budget=4)
    job = post(client, key, "/v1/text-to-image", {**ONE_CREDIT, "num_images": 4}).json()
    assert post(client, key, "/v1/text-to-image", ONE_CREDIT).status_code == 402
    assert post(client, key, f"/v1/jobs/{job['id']}/cancel", {}).status_code == 200
    assert post(client, key, "/v1/text-to-image", ONE_CREDIT).status_code == 202


def test_the_submission_reaching_80_percent_emails_the_owners_once(
    client, django_capture_on_commit_callbacks
):
    organization, key = customer(plan="pro", credits=100, monthly_credit_budget=10)
    MembershipFactory(organization=organization, user__email="owner@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(9):
            assert post(client, key, "/v1/text-to-image", ONE_CREDIT).status_code == 202
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["owner@example.com"], "Your Imagen organization has used 80 % of its monthly budget")
    ]


def test_the_first_refusal_emails_the_owners_that_the_budget_is_used_up(
    client, django_capture_on_commit_callbacks
):
    organization, key = customer(plan="pro", credits=100, monthly_credit_budget=2)
    MembershipFactory(organization=organization, user__email="owner@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, key, "/v1/text-to-image", ONE_CREDIT).status_code == 202
        for _ in range(3):
            response = post(client, key, "/v1/text-to-image", {**ONE_CREDIT, "num_images": 2})
            assert response.status_code == 402
    assert [m.subject for m in mail.outbox] == [
        "Your Imagen organization has used 100 % of its monthly budget"
    ]
    assert "1 of 2 credits" in mail.outbox[0].body

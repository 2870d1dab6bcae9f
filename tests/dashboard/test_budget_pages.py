"""The budget on the billing page, a key's limit on its page, usage per key: who may do what."""

import uuid

import pytest

from accounts.models import ApiKey
from billing import services
from generation.models import Job
from tests.accounts.factories import MembershipFactory, OrganizationFactory, api_key_for
from tests.accounts.pages import page_messages
from tests.billing.factories import give_credits
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


def _signed_in(client, role: str):
    membership = MembershipFactory(role=role)
    client.force_login(membership.user)
    return membership.organization


def _key(organization, **fields) -> ApiKey:
    api_key_for(organization)
    key = ApiKey.objects.filter(organization=organization).latest("pk")
    ApiKey.objects.filter(pk=key.pk).update(**fields)
    key.refresh_from_db()
    return key


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_set_the_monthly_budget_on_the_billing_page(client, role):
    organization = _signed_in(client, role)
    response = client.post("/billing/budget/", {"credits": "1500"}, follow=True)
    assert "The monthly budget is 1,500 credits." in response.content.decode()
    organization.refresh_from_db()
    assert organization.monthly_credit_budget == 1500


def test_an_empty_budget_removes_it(client):
    organization = _signed_in(client, "owner")
    organization.monthly_credit_budget = 10
    organization.save(update_fields=["monthly_credit_budget"])
    client.post("/billing/budget/", {"credits": ""})
    organization.refresh_from_db()
    assert organization.monthly_credit_budget is None


def test_a_member_cannot_set_the_budget(client):
    organization = _signed_in(client, "member")
    assert client.post("/billing/budget/", {"credits": "5"}).status_code == 403
    page = client.get("/billing/").content.decode()
    assert "Only owners and admins can change the budget." in page
    organization.refresh_from_db()
    assert organization.monthly_credit_budget is None


def test_the_billing_page_shows_the_months_spend_against_the_budget(client):
    organization = _signed_in(client, "owner")
    organization.monthly_credit_budget = 200
    organization.save(update_fields=["monthly_credit_budget"])
    give_credits(organization, 100)
    services.reserve_credits(organization=organization, amount=50, reference="job:1")
    page = client.get("/billing/").content.decode()
    assert '<strong id="budget-spent">50</strong> of 200 credits used' in page
    assert "25 %, 150 left." in page


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_set_a_keys_monthly_limit_on_its_page(client, role):
    organization = _signed_in(client, role)
    key = _key(organization)
    response = client.post(f"/keys/{key.pk}/", {"credits": "300"}, follow=True)
    assert "may spend 300 credits a month" in response.content.decode()
    key.refresh_from_db()
    assert key.monthly_credit_limit == 300


def test_a_member_sees_a_keys_limit_but_cannot_set_it(client):
    organization = _signed_in(client, "member")
    key = _key(organization, monthly_credit_limit=40)
    assert client.post(f"/keys/{key.pk}/", {"credits": "5000"}).status_code == 403
    page = client.get(f"/keys/{key.pk}/").content.decode()
    assert "of a limit of 40" in page
    assert "Only owners and admins can change the limit." in page
    key.refresh_from_db()
    assert key.monthly_credit_limit == 40


def test_another_organizations_key_page_is_404(client):
    _signed_in(client, "owner")
    theirs = _key(OrganizationFactory())
    assert client.get(f"/keys/{theirs.pk}/").status_code == 404
    assert client.post(f"/keys/{theirs.pk}/", {"credits": "1"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.monthly_credit_limit is None


def test_the_usage_page_shows_usage_and_credits_per_key_per_day(client):
    organization = _signed_in(client, "member")
    nightly, batch = _key(organization, name="nightly"), _key(organization, name="batch")
    JobFactory(organization=organization, api_key=nightly, status="completed", credits_used=3)
    JobFactory(organization=organization, api_key=nightly, status="completed", credits_used=2)
    JobFactory(organization=organization, api_key=batch, status="completed", credits_used=7)
    JobFactory(organization=OrganizationFactory(), status="completed", credits_used=99)
    page = client.get("/keys/usage/").content.decode()
    assert (
        f'<a href="/keys/{nightly.pk}/">nightly</a></td>\n        <td>2</td><td>2</td><td>5</td>'
        in page
    )
    assert (
        f'<a href="/keys/{batch.pk}/">batch</a></td>\n        <td>1</td><td>1</td><td>7</td>'
        in page
    )
    assert "99" not in page


def test_the_credit_history_links_a_jobs_entry_to_its_key(client):
    organization = _signed_in(client, "owner")
    key = _key(organization, name="nightly")
    give_credits(organization, 10)
    job_id = uuid.uuid4()
    services.reserve_credits(
        organization=organization,
        amount=3,
        reference=f"job:{job_id}",
        job_id=job_id,
        api_key_id=key.pk,
    )
    page = client.get("/billing/ledger/").content.decode()
    assert (
        f'Image generation (<a href="/jobs/{job_id}/">the job</a>), with the key '
        f'<a href="/keys/{key.pk}/">nightly</a>' in page
    )


def test_the_admins_ledger_links_a_jobs_entry_to_its_job_and_key(admin_client):
    organization = OrganizationFactory()
    key = _key(organization)
    give_credits(organization, 10)
    job = JobFactory(organization=organization, api_key=key)
    services.reserve_credits(
        organization=organization, amount=1, reference="job:x", job_id=job.pk, api_key_id=key.pk
    )
    page = admin_client.get("/admin/billing/creditledgerentry/").content.decode()
    assert f"/admin/generation/job/{job.pk}/change/" in page
    assert f"/admin/accounts/apikey/{key.pk}/change/" in page


def test_the_playground_is_held_to_the_monthly_budget(client):
    organization = _signed_in(client, "owner")
    organization.monthly_credit_budget = 1
    organization.save(update_fields=["monthly_credit_budget"])
    give_credits(organization, 100)
    form = {"prompt": "a lighthouse", "model": "imagen-v2", "size": "512x512", "steps": 20}
    response = client.post("/playground/", {**form, "guidance_scale": 7.5, "num_images": 2})
    assert response.status_code == 200
    assert not Job.objects.exists()
    assert any(
        "Monthly budget exceeded. This request requires 2 credits, but the organization's "
        "monthly budget of 1 credits has 1 left this month" in message
        for message in page_messages(response)
    )

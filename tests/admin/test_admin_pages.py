"""Every admin page is for staff only; the pages staff run the business from load."""

from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.accounts.factories import UserFactory
from tests.billing.factories import PackPurchaseFactory
from tests.generation.factories import JobFactory, customer

pytestmark = pytest.mark.django_db

CHANGELISTS = sorted(
    f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
    for model in admin.site._registry
)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_loads_for_staff(staff_client, name):
    customer(credits=5)
    JobFactory()
    assert staff_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_sends_a_customer_to_the_admin_login(client, name):
    client.force_login(UserFactory())
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_sends_a_visitor_to_the_admin_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_organization_page_shows_balance_members_keys_and_ledger(staff_client):
    organization, _ = customer(credits=7)
    page = staff_client.get(reverse("admin:accounts_organization_change", args=[organization.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Adjust credits" in content
    assert "Recent ledger" in content
    assert 'name="credit_balance"' not in content  # shown, never editable
    assert "sk_live_" in content  # the key inline


def test_organization_ledger_shows_readable_times_with_their_zone(staff_client):
    organization, _ = customer(credits=7)
    organization.ledger_entries.update(created_at=datetime(2026, 11, 10, 9, 5, 7, 123456, UTC))
    page = staff_client.get(reverse("admin:accounts_organization_change", args=[organization.pk]))
    content = page.content.decode()
    assert "<td>2026-11-10 09:05:07 UTC</td>" in content
    assert "123456" not in content


def test_job_page_loads_read_only(staff_client):
    job = JobFactory()
    page = staff_client.get(reverse("admin:generation_job_change", args=[job.pk]))
    assert page.status_code == 200
    assert b'name="status"' not in page.content


def test_jobs_filter_to_one_organization_from_its_page(staff_client):
    mine, _other = JobFactory(), JobFactory()
    page = staff_client.get(
        reverse("admin:accounts_organization_change", args=[mine.organization.pk])
    )
    link = reverse("admin:generation_job_changelist") + (
        f"?organization__id__exact={mine.organization.pk}"
    )
    assert link in page.content.decode()
    listed = staff_client.get(link).context["cl"].result_list
    assert [job.pk for job in listed] == [mine.pk]


def test_pack_purchase_page_shows_what_was_bought_read_only(staff_client):
    purchase = PackPurchaseFactory(pack__credits=250, pack__price_cents=1000)
    listing = staff_client.get(
        reverse("admin:billing_packpurchase_changelist"),
        {"q": purchase.stripe_payment_intent_id},
    ).content.decode()
    assert purchase.stripe_payment_intent_id in listing
    assert "250" in listing
    assert "1000" in listing
    page = staff_client.get(reverse("admin:billing_packpurchase_change", args=[purchase.pk]))
    assert page.status_code == 200
    assert b'name="credits"' not in page.content

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job, JobImage
from tests.accounts.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.accounts.pages import logged_in
from tests.billing.factories import give_credits
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


def completed_job(organization, **fields) -> Job:
    job = JobFactory(organization=organization, status=Job.Status.COMPLETED, **fields)
    JobImage.objects.filter(job=job).update(storage_path=f"images/{job.pk}/0.png")
    return job


def test_overview_shows_balance_plan_and_its_limits(client):
    owner = MembershipFactory(organization__plan=PlanFactory(slug="pro"))
    give_credits(owner.organization, 1234)
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "1,234" in content
    assert "Pro" in content
    assert f"{owner.organization.requests_per_minute:,} requests / minute" in content
    assert f"Images kept {owner.organization.output_retention_days} day" in content


def test_overview_counts_one_of_a_limit_in_the_singular(client):
    owner = MembershipFactory(
        organization__max_concurrent_jobs_override=1,
        organization__output_retention_days_override=1,
    )
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "1 job at once" in content
    assert "Images kept 1 day<" in content


def test_overview_draws_the_last_30_days_of_usage_as_svg(client):
    owner = MembershipFactory()
    completed_job(owner.organization, credits_used=7)
    completed_job(
        owner.organization, credits_used=5, created_at=timezone.now() - timedelta(days=40)
    )
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "<svg" in content
    assert content.count('class="bar"') == 30
    assert "7 credits · 1 images" in content
    assert "busiest day 7 credits" in content


def test_overview_without_usage_says_so_instead_of_an_empty_chart(client):
    content = logged_in(client, MembershipFactory()).get("/dashboard/").content.decode()
    assert "<svg" not in content
    assert "No usage in the last 30 days" in content
    assert "No jobs yet" in content


def test_overview_lists_recent_jobs_with_signed_thumbnails(client):
    owner = MembershipFactory()
    job = completed_job(owner.organization, prompt="a red lighthouse")
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert f'href="/jobs/{job.public_id}/"' in content
    assert '<img src="http://testserver/images/' in content
    assert "a red lighthouse" in content


def test_overview_shows_credits_expiring_soon(client):
    from billing import services

    owner = MembershipFactory()
    services.grant_credits(
        organization=owner.organization,
        amount=50,
        reference="grant:expiring",
        expires_at=timezone.now() + timedelta(days=3),
    )
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "<strong>50</strong> on" in content


def test_overview_warns_below_the_low_credit_threshold(client):
    owner = MembershipFactory(organization__low_credit_threshold=100)
    give_credits(owner.organization, 20)
    content = logged_in(client, owner).get("/dashboard/").content.decode()
    assert "below your low-credit threshold of 100 credits" in content


def test_overview_shows_none_of_another_organizations_jobs(client):
    completed_job(OrganizationFactory(), prompt="their secret prompt")
    content = logged_in(client, MembershipFactory()).get("/dashboard/").content.decode()
    assert "their secret prompt" not in content
    assert "No jobs yet" in content


def test_every_dashboard_page_links_the_api_docs_and_the_sections(client):
    logged_in(client, MembershipFactory())
    for path in ("/dashboard/", "/playground/", "/jobs/", "/settings/", "/keys/", "/team/"):
        content = client.get(path).content.decode()
        for href in ("/playground/", "/jobs/", "/settings/", "/billing/", "/webhooks/", "/docs/"):
            assert f'href="{href}"' in content, (path, href)


def test_overview_names_the_role_with_its_article(client):
    owner = MembershipFactory(role="owner")
    client.force_login(owner.user)
    assert "You are an owner of this organization." in client.get("/dashboard/").content.decode()

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job, JobImage
from tests.accounts.factories import MembershipFactory, OrganizationFactory
from tests.accounts.pages import logged_in
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


def completed_job(organization, **fields) -> Job:
    job = JobFactory(organization=organization, status=Job.Status.COMPLETED, **fields)
    JobImage.objects.filter(job=job).update(storage_path=f"images/{job.pk}/0.png")
    return job


def test_job_history_lists_the_organizations_jobs_with_thumbnails(client):
    owner = MembershipFactory()
    job = completed_job(owner.organization, prompt="a green fox")
    content = logged_in(client, owner).get("/jobs/").content.decode()
    assert job.public_id in content
    assert "a green fox" in content
    assert 'class="thumb" src="http://testserver/images/' in content


def test_job_history_filters_by_status(client):
    owner = MembershipFactory()
    completed_job(owner.organization, prompt="done one")
    JobFactory(organization=owner.organization, status=Job.Status.FAILED, prompt="broken one")
    content = logged_in(client, owner).get("/jobs/", {"status": "failed"}).content.decode()
    assert "broken one" in content
    assert "done one" not in content


def test_job_history_filters_by_model(client):
    owner = MembershipFactory()
    completed_job(owner.organization, prompt="v3 one", model_id="imagen-v3")
    completed_job(owner.organization, prompt="fast one", model_id="imagen-fast")
    content = logged_in(client, owner).get("/jobs/", {"model": "imagen-v3"}).content.decode()
    assert "v3 one" in content
    assert "fast one" not in content


def test_job_history_filters_by_date(client):
    owner = MembershipFactory()
    completed_job(
        owner.organization, prompt="old one", created_at=timezone.now() - timedelta(days=10)
    )
    completed_job(owner.organization, prompt="new one")
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    content = logged_in(client, owner).get("/jobs/", {"created_from": since}).content.decode()
    assert "new one" in content
    assert "old one" not in content


def test_job_history_empty_and_filtered_empty_states(client):
    logged_in(client, MembershipFactory())
    assert "No jobs yet" in client.get("/jobs/").content.decode()
    assert (
        "No jobs match these filters" in client.get("/jobs/", {"status": "failed"}).content.decode()
    )


def test_job_history_shows_none_of_another_organizations_jobs(client):
    completed_job(OrganizationFactory(), prompt="their prompt")
    content = logged_in(client, MembershipFactory()).get("/jobs/").content.decode()
    assert "their prompt" not in content


def test_job_detail_shows_parameters_images_and_cost(client):
    owner = MembershipFactory()
    job = completed_job(
        owner.organization, prompt="a blue whale", seed=1234, steps=25, credits_used=3
    )
    content = logged_in(client, owner).get(f"/jobs/{job.public_id}/").content.decode()
    assert "a blue whale" in content
    assert "<dt>Seed</dt><dd>1234</dd>" in content
    assert "<dt>Steps</dt><dd>25</dd>" in content
    assert "3 used" in content
    assert '<img src="http://testserver/images/' in content


def test_another_organizations_job_detail_is_404(client):
    theirs = completed_job(OrganizationFactory())
    logged_in(client, MembershipFactory())
    assert client.get(f"/jobs/{theirs.public_id}/").status_code == 404
    assert client.get("/jobs/img_doesnotexist/").status_code == 404


def test_another_organizations_job_detail_by_its_uuid_is_404(client):
    # The credit history links a job by its UUID; that route is fenced like the img_ one.
    theirs = completed_job(OrganizationFactory())
    logged_in(client, MembershipFactory())
    assert client.get(f"/jobs/{theirs.pk}/").status_code == 404


def test_job_detail_lists_the_jobs_webhook_deliveries(client):
    from generation.events import emit_job_event
    from tests.webhooks.factories import WebhookEndpointFactory

    owner = MembershipFactory()
    WebhookEndpointFactory(organization=owner.organization, url="https://hooks.example.com/a")
    job = completed_job(owner.organization)
    emit_job_event(job=job, event_type="job.completed")
    other = completed_job(owner.organization)
    emit_job_event(job=other, event_type="job.failed")
    content = logged_in(client, owner).get(f"/jobs/{job.public_id}/").content.decode()
    assert "job.completed" in content
    assert "job.failed" not in content
    assert "https://hooks.example.com/a" in content


def test_job_detail_without_webhooks_says_how_to_get_them(client):
    owner = MembershipFactory()
    job = completed_job(owner.organization)
    content = logged_in(client, owner).get(f"/jobs/{job.public_id}/").content.decode()
    assert "No webhook was sent for this job" in content

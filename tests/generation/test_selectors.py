"""The job read's hand-written query gives the same Job the ORM would."""

import uuid

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from generation import selectors
from generation.models import Job
from tests.accounts.factories import OrganizationFactory
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


def _every_field(job: Job) -> dict:
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


def test_a_job_read_by_its_uuid_equals_the_orm_row_in_every_field():
    job = JobFactory(
        status=Job.Status.FAILED,
        strength=0.4,
        webhook_url="https://example.com/hook",
        webhook_events=["job.completed", "job.failed"],
        error_code="engine_error",
        error_message="Ünïcode ✓ and emoji 🦊",
        completed_at=timezone.now(),
    )
    read = selectors.get_job(organization=job.organization, job_ref=str(job.pk))
    assert _every_field(read) == _every_field(Job.objects.get(pk=job.pk))
    assert read.webhook_events == ["job.completed", "job.failed"]
    assert model_to_dict(read)["organization"] == job.organization_id


def test_a_job_read_by_its_public_id_is_the_same_job():
    job = JobFactory()
    read = selectors.get_job(organization=job.organization, job_ref=job.public_id)
    assert read.pk == job.pk
    assert read.started_at is None
    assert read.created_at == Job.objects.get(pk=job.pk).created_at


def test_another_organizations_job_is_not_found():
    job = JobFactory()
    assert selectors.get_job(organization=OrganizationFactory(), job_ref=str(job.pk)) is None
    assert selectors.get_job(organization=OrganizationFactory(), job_ref=job.public_id) is None


def test_an_unknown_or_malformed_id_is_not_found():
    organization = OrganizationFactory()
    assert selectors.get_job(organization=organization, job_ref=str(uuid.uuid4())) is None
    assert selectors.get_job(organization=organization, job_ref="not-a-uuid") is None

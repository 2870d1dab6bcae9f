"""common.fastpaths.orm.insert stores exactly the row the ORM's own save would."""

import pytest
from django.utils import timezone

from common.fastpaths import orm
from generation.models import Job
from tests.accounts.factories import OrganizationFactory
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db


def _every_field(job: Job) -> dict:
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


def test_an_inserted_job_reads_back_equal_in_every_field():
    job = JobFactory.build(
        organization=OrganizationFactory(),
        strength=0.4,
        webhook_url="https://example.com/hook",
        webhook_events=["job.completed", "job.failed"],
        error_message="Ünïcode ✓ and emoji 🦊",
        completed_at=timezone.now(),
    )
    orm.insert(job)
    assert _every_field(Job.objects.get(pk=job.pk)) == _every_field(job)


def test_an_inserted_job_is_saved_in_the_orms_eyes():
    job = JobFactory.build(organization=OrganizationFactory())
    orm.insert(job)
    assert job._state.adding is False
    job.progress = 50
    job.save(update_fields=["progress"])
    assert Job.objects.get(pk=job.pk).progress == 50


def test_an_instance_without_a_primary_key_is_refused():
    job = JobFactory.build(organization=OrganizationFactory())
    job.pk = None
    with pytest.raises(ValueError, match="primary key"):
        orm.insert(job)

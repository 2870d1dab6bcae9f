"""`kill -9` of the Celery worker in the middle of a job, with real worker processes.

The job is then either finished by another worker (the unacknowledged message comes back
after Redis's visibility timeout; acks_late) or failed and refunded by the reaper, and
its credits are reserved once and refunded at most once, whatever happens next.
"""

import os
import signal
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import CreditLedgerEntry
from generation.models import Job
from generation.tasks import reap_stuck_jobs
from tests.billing.conftest import wait_for
from tests.generation.factories import ASYNC, customer, headers
from tests.integration.conftest import COST
from tests.integration.faults import assert_ledger_consistent

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _submit_slow_job(client, key) -> Job:
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a slow fox", "model": "imagen-slow", "width": 512, "height": 512},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert response.status_code == 202, response.content
    return Job.objects.get(public_id=response.json()["id"])


def _kill_mid_job(worker, job, runs: Path) -> None:
    started = wait_for(
        lambda: list(runs.iterdir()) and Job.objects.get(pk=job.pk).status == "running",
        timeout=90,
    )
    assert started, "the worker never started the job"
    worker.kill()  # SIGKILL: no cleanup, no ack, no failure handler
    worker.wait(timeout=30)
    assert Job.objects.get(pk=job.pk).status == "running"


def _entries(job, kind: str) -> int:
    return CreditLedgerEntry.objects.filter(job_id=job.pk, kind=kind).count()


def test_a_job_whose_worker_is_killed_is_finished_by_another_worker_and_charged_once(
    client, start_worker, slow_model
):
    organization, key = customer(credits=10)
    first = start_worker()
    job = _submit_slow_job(client, key)
    _kill_mid_job(first, job, slow_model)

    start_worker(visibility_timeout=5)

    finished = wait_for(lambda: Job.objects.get(pk=job.pk).status == "completed", timeout=120)
    assert finished, Job.objects.get(pk=job.pk).status
    job.refresh_from_db()
    assert (job.attempts, job.credits_used) == (2, COST)
    assert len(list(slow_model.iterdir())) == 2  # rendered again, from the start
    assert (_entries(job, "reserve"), _entries(job, "refund")) == (1, 0)
    organization.refresh_from_db()
    assert organization.credit_balance == 10 - COST
    assert_ledger_consistent(organization)


def test_a_job_whose_worker_is_killed_is_refunded_once_by_the_reaper_and_never_rerun(
    client, start_worker, slow_model
):
    organization, key = customer(credits=10)
    worker = start_worker()
    job = _submit_slow_job(client, key)
    _kill_mid_job(worker, job, slow_model)

    # No worker is left; the job's deadline passes and the beat task reaps it.
    Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now())
    assert reap_stuck_jobs() == 1
    job.refresh_from_db()
    assert (job.status, job.error_code, job.credits_used) == ("failed", "timeout", 0)
    assert (_entries(job, "reserve"), _entries(job, "refund")) == (1, 1)

    # A worker comes back and Redis redelivers the dead worker's message: nothing happens.
    late = start_worker(visibility_timeout=5)
    redelivered = wait_for(
        lambda: (
            "generation.tasks.run_job" in late.log_path.read_text()
            and "succeeded" in late.log_path.read_text()
        ),
        timeout=90,
    )
    assert redelivered, late.log_path.read_text()
    job.refresh_from_db()
    assert job.status == "failed"
    assert len(list(slow_model.iterdir())) == 1
    assert (_entries(job, "reserve"), _entries(job, "refund")) == (1, 1)
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert_ledger_consistent(organization)


def test_a_killed_pool_process_is_replaced_and_its_job_rerun_once(client, start_worker, slow_model):
    """The OOM killer's case: the prefork child dies, the worker itself lives on."""
    organization, key = customer(credits=10)
    start_worker(pool="prefork")
    job = _submit_slow_job(client, key)
    first_run = wait_for(lambda: list(slow_model.iterdir()), timeout=90)
    assert first_run, "the worker never started the job"
    child_pid = int(first_run[0].read_text())

    os.kill(child_pid, signal.SIGKILL)

    # reject_on_worker_lost puts the message back at once; a fresh child runs it again.
    finished = wait_for(lambda: Job.objects.get(pk=job.pk).status == "completed", timeout=120)
    assert finished, Job.objects.get(pk=job.pk).status
    job.refresh_from_db()
    assert (job.attempts, job.credits_used) == (2, COST)
    assert (_entries(job, "reserve"), _entries(job, "refund")) == (1, 0)
    organization.refresh_from_db()
    assert organization.credit_balance == 10 - COST
    assert_ledger_consistent(organization)

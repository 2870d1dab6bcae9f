"""Concurrent-job limits and fair turns with real `celery worker` processes on Redis.

What ran at once is read back from the jobs' own `started_at` / `completed_at`, as a
customer would see them in the API.
"""

import pytest
from django.utils import timezone

from billing.models import CreditLedgerEntry
from generation.models import Job
from generation.tasks import reap_stuck_jobs
from tests.billing.conftest import wait_for
from tests.generation.factories import ASYNC, customer, headers
from tests.integration.conftest import COST, add_slow_model
from tests.integration.faults import assert_ledger_consistent

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BACKLOG = 8
WORKER_SLOTS = 3


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    add_slow_model("imagen-large", seconds=1.5, runs=folder)
    add_slow_model("imagen-small", seconds=0.2, runs=folder)
    return folder


@pytest.fixture
def workers(start_worker, runs):
    """WORKER_SLOTS worker processes, one job at a time each."""
    return [start_worker() for _ in range(WORKER_SLOTS)]


def submit(client, key, model: str) -> Job:
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a lighthouse", "model": model, "width": 256, "height": 256},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert response.status_code == 202, response.content
    return Job.objects.get(public_id=response.json()["id"])


def all_finished(jobs, timeout: float = 120) -> list[Job]:
    ids = [job.pk for job in jobs]
    done = wait_for(
        lambda: not Job.objects.filter(pk__in=ids, status__in=Job.UNFINISHED).exists(),
        timeout=timeout,
    )
    assert done, list(Job.objects.filter(pk__in=ids).values_list("status", flat=True))
    return list(Job.objects.filter(pk__in=ids))


def most_at_once(jobs) -> int:
    """The most jobs running at one moment, from when each started and completed."""
    moments = sorted(
        [(job.started_at, 1) for job in jobs] + [(job.completed_at, -1) for job in jobs],
        key=lambda moment: (moment[0], moment[1]),  # a finish before a start at one instant
    )
    now = most = 0
    for _, change in moments:
        now += change
        most = max(most, now)
    return most


def test_a_free_organization_never_runs_more_than_two_jobs_at_once(client, workers):
    _, key = customer(plan="free", credits=100)
    backlog = [submit(client, key, "imagen-large") for _ in range(BACKLOG)]

    finished = all_finished(backlog)

    assert {job.status for job in finished} == {Job.Status.COMPLETED}
    assert most_at_once(finished) == 2


def test_another_organizations_small_job_finishes_while_the_backlog_still_waits(client, workers):
    _, free_key = customer(plan="free", credits=100)
    _, pro_key = customer(plan="pro", credits=100)
    backlog = [submit(client, free_key, "imagen-large") for _ in range(BACKLOG)]
    small = submit(client, pro_key, "imagen-small")

    (small,) = all_finished([small])
    finished = all_finished(backlog)

    assert small.status == Job.Status.COMPLETED
    started_after_it = [job for job in finished if job.started_at > small.completed_at]
    assert len(started_after_it) >= BACKLOG // 2


def test_a_killed_workers_slot_is_freed_and_its_job_refunded_once(client, workers, runs):
    organization, key = customer(plan="free", credits=20, max_concurrent_jobs_override=1)
    first = submit(client, key, "imagen-large")
    second = submit(client, key, "imagen-large")
    started = wait_for(lambda: Job.objects.get(pk=first.pk).status == "running", timeout=60)
    assert started
    run = wait_for(lambda: list(runs.iterdir()), timeout=30)
    (rendering,) = [worker for worker in workers if worker.pid == int(run[0].read_text())]
    rendering.kill()  # SIGKILL: no ack, no failure handler; the slot stays taken
    rendering.wait(timeout=30)
    assert Job.objects.get(pk=second.pk).status == "queued"

    # Its message stays with the dead worker (a long visibility timeout): the reaper frees it.
    Job.objects.filter(pk=first.pk).update(deadline_at=timezone.now())
    assert reap_stuck_jobs() == 1

    (second,) = all_finished([second])
    first.refresh_from_db()
    assert (first.status, first.error_code, second.status) == ("failed", "timeout", "completed")
    assert second.started_at > first.completed_at
    reserved, refunded = (
        CreditLedgerEntry.objects.filter(job_id=first.pk, kind=kind).count()
        for kind in ("reserve", "refund")
    )
    assert (reserved, refunded) == (1, 1)
    organization.refresh_from_db()
    assert organization.credit_balance == 20 - COST
    assert_ledger_consistent(organization)

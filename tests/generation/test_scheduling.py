"""Which waiting job a turn starts: concurrent-job limits, the fair pick, lost turns.

Each pick runs twice: with the database's own claim (one SQL statement on PostgreSQL) and
with the portable one the embedded SQLite default uses. tests/integration/
test_scheduling_workers.py runs the same rules with real workers.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from generation import lifecycle, scheduling
from generation.models import Job
from tests.billing.conftest import wait_for
from tests.celery_worker import in_thread_worker
from tests.generation.factories import ASYNC, JobFactory, customer, headers, image_bytes, new_turn

pytestmark = pytest.mark.django_db

QUEUES = ("local", "upstream", "gpu")


@pytest.fixture(params=["database", "portable"], autouse=True)
def claim(request, monkeypatch):
    if request.param == "portable":
        monkeypatch.setattr(scheduling, "claim_next_job", scheduling._claim_next_job_portably)


def empty_broker_queues() -> None:
    """The broker's generation queues, emptied of what submissions or earlier tests left."""
    with app.connection_for_write() as connection:
        for queue in QUEUES:
            connection.default_channel.queue_purge(queue)


@pytest.fixture
def empty_queues():
    empty_broker_queues()


def submit(client, key, body) -> str:
    response = client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key, **ASYNC)
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def unfinished(**fields) -> Job:
    job = JobFactory(**fields)
    job.images.all().delete()  # written with their files, when it completes
    return job


def waiting(organization, *, minutes_ago: float = 0, **fields) -> Job:
    return unfinished(
        organization=organization,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def running(organization, *, started_minutes_ago: float = 1) -> Job:
    return unfinished(
        organization=organization,
        status=Job.Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=started_minutes_ago),
    )


def finished(organization, *, started_minutes_ago: float) -> Job:
    started = timezone.now() - timedelta(minutes=started_minutes_ago)
    return JobFactory(
        organization=organization,
        status=Job.Status.COMPLETED,
        started_at=started,
        completed_at=started + timedelta(seconds=5),
    )


def take_turn(job: Job) -> Job | None:
    return lifecycle.take_turn(turn_id=new_turn(), job_id=job.pk)


def test_a_turn_goes_to_the_organization_that_started_a_job_least_recently():
    recent, _ = customer()
    earlier, _ = customer()
    finished(recent, started_minutes_ago=1)
    finished(earlier, started_minutes_ago=10)
    first_in_line = waiting(recent, minutes_ago=5)
    later = waiting(earlier, minutes_ago=1)
    assert take_turn(first_in_line) == later
    assert Job.objects.get(pk=first_in_line.pk).status == Job.Status.QUEUED


def test_an_organization_that_never_started_a_job_goes_first():
    veteran, _ = customer()
    newcomer, _ = customer()
    finished(veteran, started_minutes_ago=60)
    waiting(veteran, minutes_ago=5)
    fresh = waiting(newcomer, minutes_ago=1)
    assert take_turn(fresh) == fresh


def test_an_organization_gets_its_oldest_waiting_job_started():
    organization, _ = customer()
    newer = waiting(organization, minutes_ago=1)
    older = waiting(organization, minutes_ago=2)
    assert take_turn(newer) == older


def test_an_organization_at_its_limit_is_skipped():
    busy, _ = customer(plan="free")  # two jobs at once
    other, _ = customer(plan="free")
    running(busy)
    running(busy)
    held = waiting(busy, minutes_ago=10)
    other_job = waiting(other, minutes_ago=1)
    assert take_turn(held) == other_job
    assert Job.objects.get(pk=held.pk).status == Job.Status.QUEUED


def test_a_turn_with_every_waiting_organization_at_its_limit_starts_nothing():
    busy, _ = customer(plan="free")
    running(busy)
    running(busy)
    held = waiting(busy)
    assert take_turn(held) is None
    held.refresh_from_db()
    assert (held.status, held.started_at) == (Job.Status.QUEUED, None)


def test_the_staff_override_of_the_limit_is_honoured():
    raised, _ = customer(plan="free", max_concurrent_jobs_override=3)
    lowered, _ = customer(plan="pro", max_concurrent_jobs_override=1)
    running(raised)
    running(raised)
    running(lowered)
    third = waiting(raised)
    held = waiting(lowered)
    assert take_turn(third) == third
    assert take_turn(held) is None


def test_a_turn_starts_only_jobs_of_its_engine_family():
    organization, _ = customer()
    gpu_job = waiting(organization, minutes_ago=5, queue="gpu")
    local_job = waiting(organization, minutes_ago=1)
    assert take_turn(local_job) == local_job
    assert Job.objects.get(pk=gpu_job.pk).status == Job.Status.QUEUED
    assert take_turn(gpu_job) == gpu_job


def test_jobs_of_other_families_count_against_the_limit():
    organization, _ = customer(plan="free")
    running(organization)
    JobFactory(organization=organization, status=Job.Status.RUNNING, queue="gpu")
    held = waiting(organization)
    assert take_turn(held) is None


def test_a_redelivered_turn_runs_its_own_job_again_rather_than_another():
    organization, _ = customer(plan="pro")
    first = waiting(organization, minutes_ago=2)
    second = waiting(organization, minutes_ago=1)
    turn = new_turn()
    assert lifecycle.take_turn(turn_id=turn, job_id=first.pk) == first
    again = lifecycle.take_turn(turn_id=turn, job_id=first.pk)
    assert (again, again.attempts) == (first, 2)
    assert Job.objects.get(pk=second.pk).status == Job.Status.QUEUED


def test_a_turn_for_a_job_not_yet_committed_raises_so_it_is_retried():
    with pytest.raises(Job.DoesNotExist):
        lifecycle.take_turn(turn_id=new_turn(), job_id="00000000-0000-0000-0000-000000000000")


def test_a_waiting_job_shows_processing_and_no_start_until_it_runs(client):
    _, key = customer()
    public_id = submit(client, key, {"prompt": "p"})
    before = client.get(f"/v1/jobs/{public_id}", **headers(key)).json()
    assert (before["status"], before["started_at"]) == ("processing", None)
    take_turn(Job.objects.get(public_id=public_id))
    body = client.get(f"/v1/jobs/{public_id}", **headers(key)).json()
    assert body["status"] == "processing"
    assert body["started_at"].endswith("Z")


def test_a_waiting_v2_job_is_queued_until_it_runs(client):
    _, key = customer()
    job_id = client.post(
        "/v2/images/generate",
        {"prompt": "p", "model": "imagen-v2"},
        content_type="application/json",
        **headers(key),
    ).json()["jobId"]
    before = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
    assert (before["status"], before["startedAt"]) == ("QUEUED", None)
    take_turn(Job.objects.get(pk=job_id))
    after = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
    assert after["status"] == "PROCESSING"
    assert after["startedAt"].endswith("Z")


def test_the_dashboard_shows_a_waiting_job_waits_for_a_slot_then_when_it_started(client):
    from tests.accounts.factories import MembershipFactory
    from tests.accounts.pages import logged_in

    owner = MembershipFactory(organization=customer(plan="free")[0])
    job = waiting(owner.organization)
    page = logged_in(client, owner)
    assert "Waiting for a free slot (2 jobs at once)" in page.get(
        f"/jobs/{job.public_id}/"
    ).content.decode("utf-8")
    started = take_turn(job).started_at
    content = page.get(f"/jobs/{job.public_id}/").content.decode("utf-8")
    assert f"<dt>Started</dt><dd>{started:%-d %b %Y, %H:%M:%S} UTC</dd>" in content


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_finished_job_gives_its_slot_to_the_organizations_next_waiting_job(empty_queues):
    organization, _ = customer(plan="free")
    first, second = running(organization), running(organization)
    held = waiting(organization, minutes_ago=2)
    waiting(organization, minutes_ago=1)
    assert take_turn(held) is None
    lifecycle.complete_job(job=first, images=[image_bytes("PNG", size=(1024, 1024))])
    assert scheduling.turns_queued("local") == 1  # one slot, one turn
    assert take_turn(held) == held
    assert Job.objects.get(pk=second.pk).status == Job.Status.RUNNING


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_finished_job_publishes_the_turn_on_the_family_where_its_organization_waits(
    empty_queues,
):
    organization, _ = customer(plan="free", max_concurrent_jobs_override=1)
    rendering = running(organization)
    held = waiting(organization, queue="gpu")
    lifecycle.complete_job(job=rendering, images=[image_bytes("PNG", size=(1024, 1024))])
    assert (scheduling.turns_queued("local"), scheduling.turns_queued("gpu")) == (0, 1)
    assert take_turn(held) == held


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_canceled_running_gpu_job_frees_its_slot_and_publishes_a_turn(client):
    from generation.models import ModelCatalogEntry

    _, key = customer(plan="free", max_concurrent_jobs_override=1)
    ModelCatalogEntry.objects.create(
        id="imagen-gpu-test",
        name="GPU",
        engine="diffusers",
        credits_per_image=1,
        capabilities=["text-to-image"],
    )
    rendering, held = (
        Job.objects.get(public_id=submit(client, key, {"prompt": "p", "model": "imagen-gpu-test"}))
        for _ in range(2)
    )
    assert take_turn(rendering) == rendering
    assert take_turn(held) is None
    empty_broker_queues()  # the submissions' turns, spent above

    response = client.post(f"/v1/jobs/{rendering.public_id}/cancel", **headers(key))

    assert response.json()["status"] == "canceled"
    assert scheduling.turns_queued("gpu") == 1
    assert take_turn(held) == held


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_sweep_reissues_turns_a_broker_lost(empty_queues):
    busy, _ = customer(plan="free")
    idle, _ = customer(plan="pro")
    running(busy)
    waiting(busy, minutes_ago=3)
    waiting(busy, minutes_ago=2)  # beyond the free slot: it needs no turn yet
    waiting(idle, minutes_ago=1, queue="gpu")

    assert scheduling.reissue_lost_turns() == 2

    assert (scheduling.turns_queued("local"), scheduling.turns_queued("gpu")) == (1, 1)
    assert scheduling.reissue_lost_turns() == 0  # the turns are there now


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_reissued_turn_starts_the_waiting_job(empty_queues):

    organization, _ = customer()
    lost = waiting(organization, width=256, height=256, steps=4)
    scheduling.reissue_lost_turns()
    with in_thread_worker(["local"], purge=False):
        assert wait_for(lambda: Job.objects.get(pk=lost.pk).status == Job.Status.COMPLETED)

"""Previews from the worker to the streaming request: in order, then the job's end."""

import uuid

import pytest

from generation import previews, waiting


def publish_then_finish(job_id):
    previews.publish(job_id, index=0, image=b"first")
    previews.publish(job_id, index=1, image=b"second")
    waiting.notify_job_finished(job_id)


def drain(job_id) -> list:
    listener = previews.PreviewListener(job_id)
    return [listener.next(2) for _ in range(3)]


def test_without_redis_previews_arrive_in_order_then_the_end(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    job_id = uuid.uuid4()
    publish_then_finish(job_id)
    assert drain(job_id) == [
        previews.Preview(0, b"first"),
        previews.Preview(1, b"second"),
        previews.FINISHED,
    ]
    assert not (tmp_path / "job-previews" / str(job_id)).exists()


@pytest.mark.redis
def test_with_redis_previews_arrive_in_order_then_the_end():
    job_id = uuid.uuid4()
    publish_then_finish(job_id)
    assert drain(job_id) == [
        previews.Preview(0, b"first"),
        previews.Preview(1, b"second"),
        previews.FINISHED,
    ]


def test_without_redis_nothing_published_times_out(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    assert previews.PreviewListener(uuid.uuid4()).next(0.2) is None


@pytest.mark.django_db
def test_a_preview_that_cannot_be_published_never_fails_the_job(client, monkeypatch):
    import redis

    from generation import tasks
    from generation.models import Job
    from tests.generation.factories import ASYNC, customer, headers

    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "width": 256, "height": 256},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    job = Job.objects.get(public_id=response.json()["id"])
    Job.objects.filter(pk=job.pk).update(partial_images=2)

    def redis_down(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(previews, "publish", redis_down)
    tasks.run_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (job.status, job.credits_used) == (Job.Status.COMPLETED, 1)


def test_without_redis_previews_nobody_streamed_are_swept(settings, tmp_path):
    import os
    import time

    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    abandoned, recent = uuid.uuid4(), uuid.uuid4()
    for job_id in (abandoned, recent):
        previews.publish(job_id, index=0, image=b"preview")
    old = time.time() - 3600
    os.utime(tmp_path / "job-previews" / str(abandoned), (old, old))
    previews.sweep_stale_previews()
    assert sorted(p.name for p in (tmp_path / "job-previews").iterdir()) == [str(recent)]

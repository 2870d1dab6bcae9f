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

"""The Procfile is production's command set: every job and task lands in a queue one of
its worker lines consumes."""

import pytest

from config.celery import app
from generation import engines
from tests import procfile

WORKER_LINES = ["worker", "webhooks"]


def consumed_queues() -> set[str]:
    return {queue for line in WORKER_LINES for queue in procfile.queues(line)}


def test_the_procfile_names_every_process_type():
    assert list(procfile.processes()) == ["web", "worker", "webhooks", "beat"]


@pytest.mark.parametrize("engine", sorted(engines._ENGINES))
def test_every_engine_queue_is_consumed_by_the_generation_worker(engine):
    assert engines.queue_for(engine) in procfile.queues("worker")


def test_a_job_on_an_unknown_engine_reaches_the_generation_worker_to_be_failed():
    assert engines.queue_for("no-such-engine") in procfile.queues("worker")


def test_the_webhooks_worker_consumes_both_delivery_queues():
    assert {"webhooks", "webhooks_retry"} <= set(procfile.queues("webhooks"))


def test_every_periodic_task_lands_in_a_consumed_queue():
    for entry in app.conf.beat_schedule.values():
        route = app.amqp.router.route({}, entry["task"], args=(), kwargs={})
        assert route["queue"].name in consumed_queues(), entry["task"]


def test_the_generation_worker_takes_one_job_per_slot():
    command = procfile.arguments("worker")
    assert command[command.index("--prefetch-multiplier") + 1] == "1"

"""The Procfile is production's command set: every job and task lands in a queue one of
its worker lines consumes."""

import pytest

from config.celery import app
from generation import engines
from tests import procfile

WORKER_LINES = ["worker", "upstream", "gpu", "webhooks", "webhooks_slow"]
GENERATION_LINES = ["worker", "upstream", "gpu"]


def consumed_queues() -> set[str]:
    return {queue for line in WORKER_LINES for queue in procfile.queues(line)}


def test_the_procfile_names_every_process_type():
    assert list(procfile.processes()) == [
        "web",
        "worker",
        "upstream",
        "gpu",
        "webhooks",
        "webhooks_slow",
        "beat",
    ]


@pytest.mark.parametrize("engine", sorted(engines._ENGINES))
def test_every_engine_queue_is_consumed_by_a_generation_worker(engine):
    assert any(engines.queue_for(engine) in procfile.queues(line) for line in GENERATION_LINES)


def test_diffusers_jobs_go_to_the_gpu_worker_only():
    assert engines.queue_for("diffusers") == "gpu"
    assert procfile.queues("gpu") == ["gpu"]
    assert "gpu" not in procfile.queues("worker")


@pytest.mark.parametrize("option", ["--concurrency", "--prefetch-multiplier"])
def test_the_gpu_worker_runs_one_job_at_a_time_in_one_process(option):
    command = procfile.arguments("gpu")
    assert command[command.index(option) + 1] == "1"


def test_each_gpu_worker_of_a_host_has_its_own_node_name():
    # One gpu line per GPU, each with its own CUDA_VISIBLE_DEVICES (README, Production).
    line = procfile.processes()["gpu"]
    assert "--hostname gpu${CUDA_VISIBLE_DEVICES:-}@%h" in line


def test_a_job_on_an_unknown_engine_reaches_the_generation_worker_to_be_failed():
    assert engines.queue_for("no-such-engine") in procfile.queues("worker")


def test_the_webhooks_worker_consumes_both_delivery_queues():
    assert {"webhooks", "webhooks_retry"} <= set(procfile.queues("webhooks"))


def test_the_slow_lane_has_workers_of_its_own():
    assert procfile.queues("webhooks_slow") == ["webhooks_slow"]
    assert "webhooks_slow" not in procfile.queues("webhooks")


def test_every_periodic_task_lands_in_a_consumed_queue():
    for entry in app.conf.beat_schedule.values():
        route = app.amqp.router.route({}, entry["task"], args=(), kwargs={})
        assert route["queue"].name in consumed_queues(), entry["task"]


@pytest.mark.parametrize("line", ["worker", "upstream"])
def test_a_generation_worker_takes_one_job_per_slot(line):
    command = procfile.arguments(line)
    assert command[command.index("--prefetch-multiplier") + 1] == "1"


def test_upstream_jobs_have_a_threaded_worker_of_their_own():
    # They mostly wait on another server: many slots in threads, none taken from `local`.
    assert procfile.queues("upstream") == [engines.queue_for("openai_compatible")]
    assert "upstream" not in procfile.queues("worker")
    command = procfile.arguments("upstream")
    assert command[command.index("--pool") + 1] == "threads"


@pytest.mark.parametrize("line", ["web", "upstream"])
def test_the_many_at_once_processes_share_a_database_pool(line):
    assert "DATABASE_POOL_SIZE" in procfile.environment(line)


def test_the_web_processes_wait_in_greenlets():
    command = procfile.arguments("web")
    assert command[command.index("--worker-class") + 1] == "gevent"

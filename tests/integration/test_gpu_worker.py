"""The Procfile's `gpu` line as production runs it (prefork, one process): its worker process
loads and warms up the catalog's diffusers models before its first job, then runs jobs."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tests import procfile
from tests.billing.conftest import wait_for
from tests.generation.factories import ASYNC, customer, headers
from tests.generation.tiny_diffusers import build_tiny_pipeline
from tests.integration.faults import PROJECT_ROOT, child_database_url, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tiny_model(tmp_path):
    path = build_tiny_pipeline(tmp_path / "tiny")
    call_command(
        "add_diffusers_model",
        *("--id", "tiny", "--path", str(path), "--device", "cpu", "--dtype", "float32"),
        *("--steps", "2"),
        stdout=io.StringIO(),
    )


@pytest.fixture
def gpu_worker(tiny_model, tmp_path):
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("gpu")
    command = procfile.arguments("gpu")
    command[0] = str(Path(sys.executable).with_name("celery"))
    log_path = tmp_path / "gpu-worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": child_database_url(),
                # One thread on this machine's shared cores (tests/generation/tiny_diffusers).
                "OMP_NUM_THREADS": "1",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.log_path = log_path
    yield process
    stop(process)


def test_the_gpu_worker_warms_up_its_models_before_running_their_jobs(client, gpu_worker):
    def log() -> str:
        return gpu_worker.log_path.read_text()

    assert wait_for(lambda: "Diffusers model tiny loaded and warmed up" in log(), 120), log()
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "model": "tiny", "width": 256, "height": 256},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    job_id = response.json()["id"]

    def status() -> str:
        return client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["status"]

    assert wait_for(lambda: status() == "completed", 60), log()
    assert log().count("Loaded diffusers pipeline") == 1  # at the start, not again for the job

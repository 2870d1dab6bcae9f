import os
import subprocess
import sys

import pytest
import redis

from generation import catalog
from generation.models import ModelCatalogEntry
from tests import procfile
from tests.integration.faults import PROJECT_ROOT, child_database_url, stop

# Credits per image of the slow engine's models.
COST = 2


@pytest.fixture(autouse=True)
def _fresh_catalog():
    # The catalog is cached per process; each test's database starts from the seed.
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()


@pytest.fixture
def start_worker(tmp_path):
    """Start `celery worker` processes on the test database and broker; kill them after."""
    from config.celery import app

    with app.connection_for_write() as connection:
        for queue in procfile.queues("worker"):
            connection.default_channel.queue_purge(queue)
    # Messages abandoned by earlier runs would otherwise be redelivered to these workers.
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(
        "unacked", "unacked_index", "unacked_mutex"
    )
    started = []

    def start(*, visibility_timeout: float = 3600, pool: str = "solo") -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": child_database_url(),
            "VISIBILITY_TIMEOUT": str(visibility_timeout),
            "WORKER_POOL": pool,
        }
        log_path = tmp_path / f"worker-{len(started)}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.slow_worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    stop(*started)


def add_slow_model(model_id: str, *, seconds: float, runs) -> None:
    """A catalog model of the test-only slow engine (tests/integration/slow_engine.py)."""
    ModelCatalogEntry.objects.create(
        id=model_id,
        name=model_id,
        engine="slow",
        engine_settings={"seconds": seconds, "runs_dir": str(runs)},
        credits_per_image=COST,
        capabilities=["text-to-image"],
    )
    catalog.clear_local_cache()


@pytest.fixture
def slow_model(tmp_path):
    """`imagen-slow`, 3 s a job; returns the folder where each run leaves a file."""
    runs = tmp_path / "runs"
    runs.mkdir()
    add_slow_model("imagen-slow", seconds=3, runs=runs)
    return runs

import pytest

from config.celery import app as celery_app
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def run_tasks_inline():
    """Run enqueued tasks in this process (Celery's eager mode) instead of a broker.

    A retry's delayed task runs at once too, and finds its delivery not yet due: waits
    are exercised by making deliveries due explicitly (see `make_due_and_deliver`).
    """
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False

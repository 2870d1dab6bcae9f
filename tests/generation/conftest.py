import pytest

from generation import catalog


@pytest.fixture(autouse=True)
def _fresh_catalog():
    # The catalog is cached per process; each test's database starts from the seed.
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()


@pytest.fixture
def broken_model(monkeypatch):
    """A catalog model whose engine always fails."""
    from generation import engines
    from generation.models import ModelCatalogEntry

    monkeypatch.setitem(
        engines._ENGINES,
        "broken",
        engines.Registered("tests.generation.engines.BrokenEngine", queue="local"),
    )
    return ModelCatalogEntry.objects.create(
        id="imagen-broken",
        name="Broken",
        engine="broken",
        credits_per_image=3,
        capabilities=["text-to-image", "image-to-image", "variations"],
    )


@pytest.fixture
def queue_down():
    """Point the Celery app at a broker address where nothing listens."""
    from config.celery import app

    def use(url):
        app.conf.broker_url = url
        app.conf.broker_transport_options = {"socket_connect_timeout": 1, "max_retries": 0}
        app._pool = None
        app.amqp._producer_pool = None

    original = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    use("redis://127.0.0.1:9/0")
    yield
    use(original[0])
    app.conf.broker_transport_options = original[1]


@pytest.fixture
def steady_window(monkeypatch):
    """Hold django-ratelimit's clock still, so a test never straddles a window edge."""
    import time
    import types

    from django_ratelimit import core

    frozen = time.time()
    monkeypatch.setattr(core, "time", types.SimpleNamespace(time=lambda: frozen))


@pytest.fixture
def worker_queues():
    """The queues the Procfile's generation worker consumes (a test may name fewer)."""
    from tests import procfile

    return procfile.queues("worker")


@pytest.fixture
def celery_worker(transactional_db, worker_queues):
    """A real Celery worker, in a thread, consuming the configured broker (Redis in CI)."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from config.celery import app

    def close_worker_connections(**kwargs):
        # The worker thread's own connections, so the test database can be dropped.
        connections.close_all()

    task_postrun.connect(close_worker_connections, weak=False)
    with app.connection_for_write() as connection:
        # Messages earlier tests published for jobs that no longer exist.
        for queue in worker_queues:
            connection.default_channel.queue_purge(queue)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=worker_queues,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_worker_connections)


@pytest.fixture
def public_site(live_server, settings):
    """Image URLs point at the live server, as SITE_URL does in production."""
    settings.SITE_URL = live_server.url
    return live_server


@pytest.fixture
def flagged_model(monkeypatch):
    """A catalog model whose engine renders an image the real detector flags."""
    from tests.generation.engines import register_flagged_model

    return register_flagged_model(monkeypatch)

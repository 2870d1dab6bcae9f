import pytest

from generation import catalog
from tests.celery_worker import in_thread_worker


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
    with in_thread_worker(worker_queues) as worker:
        yield worker


@pytest.fixture
def public_site(live_server, settings):
    """Image URLs point at the live server, as SITE_URL does in production."""
    settings.SITE_URL = live_server.url
    return live_server


@pytest.fixture
def sdk(public_site, celery_worker):
    """Build SDK clients for the live server, with a worker running the jobs."""
    import openai

    clients = []

    def build(key):
        clients.append(openai.OpenAI(base_url=f"{public_site.url}/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def flagged_model(monkeypatch):
    """A catalog model whose engine renders an image the real detector flags."""
    from tests.generation.engines import register_flagged_model

    return register_flagged_model(monkeypatch)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-protocol server on a free loopback port, for the whole session."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, settings):
    """A new private bucket on the loopback S3 server, used as the default storage.

    The AWS_* settings are the ones config/settings/base.py reads from the environment
    when AWS_STORAGE_BUCKET_NAME is set; STORAGES is set last, which makes Django drop
    its cached storage backends. Yields a boto3 Bucket to look into it.
    """
    import uuid

    import boto3

    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    bucket = boto3.resource(
        "s3", endpoint_url=s3_server, region_name="us-east-1", **credentials
    ).Bucket(f"imagen-test-{uuid.uuid4().hex[:12]}")
    bucket.create()
    settings.AWS_STORAGE_BUCKET_NAME = bucket.name
    settings.AWS_S3_ENDPOINT_URL = s3_server
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_S3_ADDRESSING_STYLE = "path"
    settings.AWS_S3_ACCESS_KEY_ID = credentials["aws_access_key_id"]
    settings.AWS_S3_SECRET_ACCESS_KEY = credentials["aws_secret_access_key"]
    settings.AWS_DEFAULT_ACL = "private"
    settings.AWS_QUERYSTRING_AUTH = True
    settings.AWS_S3_SIGNATURE_VERSION = "s3v4"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }
    yield bucket
    bucket.objects.all().delete()
    bucket.delete()

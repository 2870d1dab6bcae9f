"""Jobs announce their state changes: submitted through each dialect, run by the real
run_job task, delivered to a loopback receiver and verified with `standardwebhooks`."""

import json

import pytest
from standardwebhooks.webhooks import Webhook

from config.celery import app as celery_app
from generation.models import Job
from generation.tasks import run_job
from tests.generation.factories import customer, headers
from tests.webhooks.factories import WebhookEndpointFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_networks_allowed", "run_tasks_inline"),
]

JOB_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def submit(client, django_capture_on_commit_callbacks):
    """Submit through the API, then take the job's turn in this process as a worker would;
    the deliveries its commits enqueue are sent (eager)."""

    def _submit(key, path, body):
        # The turn goes to the broker as in production: an eager run_job would run before
        # the job is written.
        with django_capture_on_commit_callbacks(execute=True):
            celery_app.conf.task_always_eager = False
            try:
                response = client.post(
                    path,
                    body,
                    content_type="application/json",
                    **headers(key, prefer="respond-async"),
                )
            finally:
                celery_app.conf.task_always_eager = True
        assert response.status_code == 202, response.content
        with django_capture_on_commit_callbacks(execute=True):
            for job in Job.objects.filter(status=Job.Status.QUEUED):
                run_job.apply(args=[str(job.pk)])
        return response.json()

    return _submit


@pytest.fixture
def submit_and_run(submit):
    def _submit_and_run(key, path, body):
        submitted = submit(key, path, body)
        assert Job.objects.get().status == Job.Status.COMPLETED
        return submitted

    return _submit_and_run


def bodies(receiver):
    return [json.loads(r.body) for r in receiver.received]


def test_v1_webhook_url_gets_completed_with_the_v1_job(client, receiver, submit_and_run):
    organization, key = customer(credits=10)
    submitted = submit_and_run(
        key,
        "/v1/text-to-image",
        {"prompt": "a fox", "width": 256, "height": 256, "webhook_url": receiver.url()},
    )
    (received,) = receiver.received  # no progress: v1 URLs get completed and failed
    body = Webhook(organization.webhook_signing_secret).verify(received.body, received.headers)
    assert body["type"] == "job.completed"
    job = client.get(f"/v1/jobs/{submitted['id']}", **headers(key)).json()
    assert list(body["data"]) == list(job)
    assert body["data"]["id"] == submitted["id"]
    assert (body["data"]["status"], len(body["data"]["images"])) == ("completed", 1)


def test_v1_webhook_secret_signs_the_jobs_events(receiver, submit_and_run):
    _, key = customer(credits=10)
    submit_and_run(
        key,
        "/v1/text-to-image",
        {
            "prompt": "a fox",
            "width": 256,
            "height": 256,
            "webhook_url": receiver.url(),
            "webhook_secret": JOB_SECRET,
        },
    )
    (received,) = receiver.received
    assert Webhook(JOB_SECRET).verify(received.body, received.headers)["type"] == "job.completed"


def test_v2_gets_progress_then_completed_in_order_in_the_v2_shape(receiver, submit_and_run):
    _, key = customer(credits=10)
    submitted = submit_and_run(
        key,
        "/v2/images/generate",
        {
            "prompt": "a fox",
            "model": "imagen-v2",
            "webhookUrl": receiver.url(),
            "parameters": {"width": 256, "height": 256},
        },
    )
    events = bodies(receiver)
    types = [e["type"] for e in events]
    assert types[0] == "job.progress"
    assert types[-1] == "job.completed"
    assert set(types[:-1]) == {"job.progress"}
    assert all(0 <= e["data"]["progress"] <= 100 for e in events[:-1])
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["jobId"] == submitted["jobId"]
    assert events[-1]["data"]["status"] == "COMPLETED"


def test_v2_subscribed_to_completed_gets_no_progress(receiver, submit_and_run):
    _, key = customer(credits=10)
    submit_and_run(
        key,
        "/v2/images/generate",
        {
            "prompt": "a fox",
            "model": "imagen-v2",
            "webhookUrl": receiver.url(),
            "webhookEvents": ["completed"],
            "parameters": {"width": 256, "height": 256},
        },
    )
    assert [e["type"] for e in bodies(receiver)] == ["job.completed"]


def test_tasks_callback_url_gets_the_result(receiver, submit_and_run):
    _, key = customer(credits=10)
    submitted = submit_and_run(
        key, "/v1/tasks/async", {"text_data": "a house", "callback_url": receiver.url()}
    )
    (event,) = bodies(receiver)
    assert (event["type"], event["data"]["id"]) == ("job.completed", submitted["id"])
    assert event["data"]["width"] == 1024


V1_JOB_KEYS = [
    "id",
    "status",
    "prompt",
    "negative_prompt",
    "model",
    "width",
    "height",
    "steps",
    "guidance_scale",
    "seed",
    "style",
    "num_images",
    "credits_used",
    "created_at",
    "started_at",
    "completed_at",
    "expires_at",
    "images",
    "error",
]
V2_JOB_KEYS = [
    "jobId",
    "status",
    "progress",
    "model",
    "prompt",
    "createdAt",
    "startedAt",
    "completedAt",
    "creditsUsed",
    "result",
    "error",
]


@pytest.mark.parametrize(
    ("path", "body", "keys", "images_at", "image_keys"),
    [
        (
            "/v1/text-to-image",
            {"prompt": "a fox", "width": 256, "height": 256},
            V1_JOB_KEYS,
            ("images",),
            ["url", "width", "height"],
        ),
        (
            "/v1/tasks/async",
            {"text_data": "a fox"},
            V1_JOB_KEYS,
            ("images",),
            ["url", "width", "height"],
        ),
        (
            "/v2/images/generate",
            {"prompt": "a fox", "model": "imagen-v2", "parameters": {"width": 256, "height": 256}},
            V2_JOB_KEYS,
            ("result", "images"),
            ["url", "width", "height"],
        ),
        (
            "/v1/images/generations",
            {"prompt": "a fox", "size": "256x256"},
            ["created", "data", "output_format", "size", "quality", "background", "meta"],
            ("data",),
            ["url"],
        ),
    ],
)
def test_job_completed_data_keeps_its_dialects_keys_in_order(
    receiver, submit_and_run, path, body, keys, images_at, image_keys
):
    organization, key = customer(credits=100)
    WebhookEndpointFactory(organization=organization, url=receiver.url())
    submit_and_run(key, path, body)
    data = bodies(receiver)[-1]["data"]
    assert list(data) == keys
    images = data
    for name in images_at:
        images = images[name]
    assert [list(image) for image in images] == [image_keys]


@pytest.fixture
def broken_model(monkeypatch):
    """A catalog model whose engine reports some progress, then fails."""
    from generation import catalog, engines
    from generation.models import ModelCatalogEntry

    monkeypatch.setitem(
        engines._ENGINES,
        "broken",
        engines.Registered("tests.generation.engines.BrokenEngine", queue="local"),
    )
    catalog.clear_local_cache()
    yield ModelCatalogEntry.objects.create(
        id="imagen-broken",
        name="Broken",
        engine="broken",
        credits_per_image=3,
        capabilities=["text-to-image", "image-to-image", "variations"],
    )
    catalog.clear_local_cache()


def test_a_failed_job_sends_job_failed(receiver, broken_model, submit):
    _, key = customer(credits=10)
    submitted = submit(
        key,
        "/v1/text-to-image",
        {"prompt": "a fox", "model": broken_model.id, "webhook_url": receiver.url()},
    )
    (event,) = bodies(receiver)
    assert (event["type"], event["data"]["id"]) == ("job.failed", submitted["id"])
    assert event["data"]["status"] == "failed"
    assert event["data"]["error"] == {"code": "engine_error", "message": "The renderer crashed"}


def test_organization_endpoints_get_every_job_event(receiver, submit_and_run):
    organization, key = customer(credits=100)
    WebhookEndpointFactory(organization=organization, url=receiver.url())
    submit_and_run(key, "/v1/text-to-image", {"prompt": "a fox", "width": 256, "height": 256})
    types = [e["type"] for e in bodies(receiver)]
    assert types[0] == "job.progress"
    assert types[-1] == "job.completed"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/text-to-image", {"prompt": "a fox", "width": 256, "height": 256}),
        ("/v1/tasks/async", {"text_data": "a fox"}),
        ("/v1/images/generations", {"prompt": "a fox", "size": "256x256"}),
    ],
)
def test_every_progress_event_carries_its_progress_and_none_repeats_another(
    receiver, submit_and_run, path, body
):
    organization, key = customer(credits=100)
    WebhookEndpointFactory(organization=organization, url=receiver.url())
    submit_and_run(key, path, body)
    progress = [e["data"] for e in bodies(receiver) if e["type"] == "job.progress"]
    figures = [data["progress"] for data in progress]
    assert figures
    assert all(0 <= figure < 100 for figure in figures)
    assert figures == sorted(set(figures))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/text-to-image",
            {"prompt": "p", "webhook_url": "http://169.254.169.254/"},
            "webhook_url",
        ),
        (
            "/v1/text-to-image",
            {"prompt": "p", "webhook_url": "http://localhost/hook"},
            "webhook_url",
        ),
        (
            "/v2/images/generate",
            {"prompt": "p", "model": "imagen-v2", "webhookUrl": "http://[::ffff:127.0.0.1]/"},
            "webhookUrl",
        ),
        ("/v1/tasks/async", {"text_data": "p", "callback_url": "http://10.0.0.1/"}, "callback_url"),
    ],
)
def test_a_non_public_webhook_url_is_refused_at_submission(client, settings, path, body, field):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    organization, key = customer(credits=10)
    response = client.post(path, body, content_type="application/json", **headers(key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert field in error["fields"]
    assert "non-public" in error["fields"][field][0]
    assert not Job.objects.exists()
    organization.refresh_from_db()
    assert organization.credit_balance == 10

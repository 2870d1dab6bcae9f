"""The diffusers engine through the public API, with a real Celery worker on the `gpu` queue
running a tiny Stable-Diffusion-shaped pipeline on the CPU (tests/generation/tiny_diffusers)."""

import io
import json
import shutil
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from billing.models import CreditLedgerEntry
from generation import pipeline
from generation.engines import diffusers as diffusers_engine
from generation.models import Job, ModelCatalogEntry
from tests.generation.factories import ASYNC, customer, headers, image_base64
from tests.generation.tiny_diffusers import build_tiny_pipeline

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

MODEL = "tiny-diffusion"
FAST = {"width": 264, "height": 256}  # and the model's own 3 steps


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-diffusion"))


@pytest.fixture
def worker_queues():
    return ["gpu"]


@pytest.fixture
def tiny_model(tiny_pipeline):
    """The tiny pipeline in the catalog, registered the way an operator does it."""
    call_command(
        "add_diffusers_model",
        "--id",
        MODEL,
        "--path",
        str(tiny_pipeline),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--credits-per-image",
        "2",
        "--steps",
        "3",
        stdout=io.StringIO(),
    )
    return ModelCatalogEntry.objects.get(pk=MODEL)


@pytest.fixture
def unet(tiny_model):
    """The resident pipeline's UNet, shared by the worker thread (hooks go on it)."""
    return diffusers_engine.load(tiny_model.engine_settings).text.unet


def generate(client, key, **fields) -> dict:
    body = {"prompt": "a red fox in the snow", "model": MODEL, **FAST, **fields}
    response = client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key)
    )
    assert response.status_code == 200, response.content
    return response.json()


def image_to_image(client, key, path="/v1/image-to-image", **fields) -> dict:
    body = {"model": MODEL, **FAST, **fields}
    response = client.post(path, body, content_type="application/json", **headers(key))
    assert response.status_code == 200, response.content
    return response.json()


def pngs(client, job: dict) -> list[bytes]:
    assert job["status"] == "completed", job
    contents = []
    for image in job["images"]:
        response = client.get(image["url"])
        assert response.status_code == 200
        contents.append(b"".join(response.streaming_content))
    return contents


def wait_for(client, key, job_id: str, status: str) -> dict:
    for _ in range(300):
        body = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
        if body["status"] == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {body['status']}, not {status}")


def refunds(job_public_id: str) -> int:
    job = Job.objects.get(public_id=job_public_id)
    return CreditLedgerEntry.objects.filter(
        job_id=job.pk, kind=CreditLedgerEntry.Kind.REFUND
    ).count()


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_text_to_image_returns_pngs_of_exactly_the_requested_size(client):
    _, key = customer(credits=20)
    job = generate(client, key, num_images=2, seed=7)
    assert job["credits_used"] == 4
    images = [Image.open(io.BytesIO(content)) for content in pngs(client, job)]
    assert [(image.format, image.size) for image in images] == [("PNG", (264, 256))] * 2
    assert images[0].tobytes() != images[1].tobytes()


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_the_same_seed_gives_identical_bytes_and_another_seed_differs(client):
    _, key = customer(credits=20)
    first = pngs(client, generate(client, key, seed=42))
    again = pngs(client, generate(client, key, seed=42))
    other = pngs(client, generate(client, key, seed=43))
    assert first == again
    assert first != other


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_image_to_image_uses_its_input(client):
    _, key = customer(credits=20)
    red = image_base64(size=(264, 256), color=(220, 30, 30))
    blue = image_base64(size=(264, 256), color=(20, 40, 230))
    common = {"prompt": "the same scene", "seed": 5, "strength": 0.8}
    from_red = pngs(client, image_to_image(client, key, image=red, **common))
    from_red_again = pngs(client, image_to_image(client, key, image=red, **common))
    from_blue = pngs(client, image_to_image(client, key, image=blue, **common))
    assert from_red == from_red_again
    assert from_red != from_blue
    assert Image.open(io.BytesIO(from_red[0])).size == (264, 256)


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_image_to_image_at_strength_zero_returns_the_input(client):
    _, key = customer(credits=20)
    source = Image.new("RGB", (264, 256), (10, 200, 90))
    job = image_to_image(
        client,
        key,
        image=image_base64(size=(264, 256), color=(10, 200, 90)),
        prompt="anything",
        strength=0.0,
    )
    result = Image.open(io.BytesIO(pngs(client, job)[0])).convert("RGB")
    assert result.tobytes() == source.tobytes()


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_variations_return_images_of_the_requested_size(client):
    _, key = customer(credits=20)
    job = image_to_image(
        client,
        key,
        path="/v1/variations",
        image=image_base64(size=(512, 384)),
        num_images=2,
        width=256,
        height=256,
    )
    sizes = [Image.open(io.BytesIO(content)).size for content in pngs(client, job)]
    assert sizes == [(256, 256)] * 2


@pytest.mark.usefixtures("celery_worker", "tiny_model")
def test_progress_events_arrive_in_order_before_completion(client, settings, monkeypatch):
    from webhooks.models import Event

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    monkeypatch.setattr(pipeline, "PROGRESS_WRITE_INTERVAL", 0)
    _, key = customer(credits=20)
    response = client.post(
        "/v2/images/generate",
        {
            "prompt": "a lighthouse",
            "model": MODEL,
            "webhookUrl": "http://127.0.0.1:9/hooks",
            "webhookEvents": ["progress", "completed"],
            "parameters": {**FAST, "steps": 5},
        },
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 202, response.content
    wait_for(client, key, response.json()["jobId"], "COMPLETED")
    events = Event.objects.filter(job_id=response.json()["jobId"]).order_by("sequence")
    types = [event.type for event in events]
    progress = [json.loads(event.payload)["progress"] for event in events]
    assert types == ["job.progress"] * (len(types) - 1) + ["job.completed"]
    # The start, each of the 5 steps (up to 95 %: the decoding follows), the completion.
    assert progress == [0, 19, 38, 57, 76, 95, 100]


class HeldAtSecondStep:
    """Holds the worker inside the UNet's second step until `release()`, counting steps.

    Progress (and with it the job's status) is checked at every step here, not every half
    second: the tiny model's steps take milliseconds.
    """

    def __init__(self, unet, monkeypatch):
        monkeypatch.setattr(pipeline, "PROGRESS_WRITE_INTERVAL", 0)
        self.steps = 0
        self.reached, self.released = threading.Event(), threading.Event()
        self.hook = unet.register_forward_pre_hook(self._step)

    def _step(self, module, args):
        self.steps += 1
        if self.steps == 2:
            self.reached.set()
            self.released.wait(30)

    def release(self):
        self.released.set()

    def remove(self):
        self.released.set()
        self.hook.remove()


def submit_slow_job(client, key) -> str:
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a slow snail", "model": MODEL, **FAST, "steps": 10},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    return response.json()["id"]


@pytest.mark.usefixtures("celery_worker")
def test_cancel_between_steps_stops_the_job_and_refunds_it(client, unet, monkeypatch):
    organization, key = customer(credits=20)
    held = HeldAtSecondStep(unet, monkeypatch)
    try:
        job_id = submit_slow_job(client, key)
        assert held.reached.wait(30)
        cancel = client.post(f"/v1/jobs/{job_id}/cancel", **headers(key))
        held.release()
        assert cancel.status_code == 200, cancel.content
        assert (cancel.json()["status"], cancel.json()["credits_used"]) == ("canceled", 0)
        # The solo worker takes the next job only once it let go of the canceled one.
        generate(client, key, steps=2)
    finally:
        held.remove()
    assert held.steps == 2 + 2  # two of the canceled job's 10 steps, then the next job's two
    body = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()
    assert (body["status"], body["images"], body["credits_used"]) == ("canceled", [], 0)
    organization.refresh_from_db()
    assert organization.credit_balance == 20 - 2
    assert refunds(job_id) == 1


@pytest.mark.usefixtures("celery_worker")
def test_a_pipeline_out_of_memory_fails_the_job_and_refunds_it_once(client, unet):
    import torch

    organization, key = customer(credits=20)

    def out_of_memory(module, args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    hook = unet.register_forward_pre_hook(out_of_memory)
    try:
        response = client.post(
            "/v1/text-to-image",
            {"prompt": "a huge mural", "model": MODEL, **FAST, "num_images": 3},
            content_type="application/json",
            **headers(key),
        )
    finally:
        hook.remove()
    body = response.json()
    assert (body["status"], body["credits_used"]) == ("failed", 0), body
    assert body["error"]["code"] == "engine_out_of_memory"
    organization.refresh_from_db()
    assert organization.credit_balance == 20
    assert refunds(body["id"]) == 1


@pytest.mark.usefixtures("celery_worker")
def test_a_model_whose_directory_no_longer_loads_fails_its_jobs_with_a_refund(
    client, tiny_pipeline, tmp_path
):
    copy = shutil.copytree(tiny_pipeline, tmp_path / "moved")
    call_command(
        "add_diffusers_model",
        "--id",
        "gone",
        "--path",
        str(copy),
        "--device",
        "cpu",
        stdout=io.StringIO(),
    )
    shutil.rmtree(copy)
    organization, key = customer(credits=20)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "model": "gone", **FAST},
        content_type="application/json",
        **headers(key),
    )
    body = response.json()
    assert (body["status"], body["error"]["code"]) == ("failed", "engine_unavailable"), body
    organization.refresh_from_db()
    assert organization.credit_balance == 20
    assert refunds(body["id"]) == 1


@pytest.mark.usefixtures("celery_worker")
def test_a_job_reaped_while_running_stops_at_its_next_step(client, unet, monkeypatch):
    from generation import lifecycle

    organization, key = customer(credits=20)
    held = HeldAtSecondStep(unet, monkeypatch)
    try:
        job_id = submit_slow_job(client, key)
        assert held.reached.wait(30)
        Job.objects.filter(public_id=job_id).update(deadline_at=timezone.now())
        assert lifecycle.reap_stuck_jobs(now=timezone.now() + timedelta(seconds=1)) == 1
        held.release()
        generate(client, key, steps=2)
    finally:
        held.remove()
    assert held.steps == 2 + 2
    body = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()
    assert (body["status"], body["error"]["code"], body["images"]) == ("failed", "timeout", [])
    organization.refresh_from_db()
    assert organization.credit_balance == 20 - 2
    assert refunds(job_id) == 1

"""`manage.py add_diffusers_model`: a directory that loads becomes a catalog model customers
can name; one that does not is refused and leaves the catalog as it was."""

import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from generation import diffusers_models
from generation.models import ModelCatalogEntry
from tests.generation.factories import ASYNC, customer, headers
from tests.generation.tiny_diffusers import build_tiny_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-diffusion"))


def add(*arguments) -> dict:
    out = io.StringIO()
    call_command("add_diffusers_model", *arguments, stdout=out)
    return json.loads(out.getvalue())


def test_a_pipeline_that_loads_becomes_a_model_customers_can_list(client, tiny_pipeline):
    line = add("--id", "tiny", "--path", str(tiny_pipeline), "--name", "Tiny", "--device", "cpu")
    assert line["created"] is True
    _, key = customer()
    models = {m["id"]: m for m in client.get("/v1/models", **headers(key)).json()["data"]}
    assert models["tiny"]["name"] == "Tiny"
    assert models["tiny"]["credits_per_image"] == 1
    assert models["tiny"]["capabilities"] == ["text-to-image", "image-to-image", "variations"]
    entry = ModelCatalogEntry.objects.get(pk="tiny")
    assert entry.engine == "diffusers"
    assert entry.engine_settings == {
        "path": str(tiny_pipeline),
        "device": "cpu",
        "dtype": "bfloat16",
    }


def test_a_gpu_model_is_checked_on_the_cpu_when_there_is_no_gpu(tiny_pipeline):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the check runs there")
    add("--id", "tiny", "--path", str(tiny_pipeline), "--dtype", "float16")
    settings = ModelCatalogEntry.objects.get(pk="tiny").engine_settings
    assert (settings["device"], settings["dtype"]) == ("cuda", "float16")


def test_adding_again_updates_the_model_and_keeps_what_is_not_given(tiny_pipeline, tmp_path):
    add("--id", "tiny", "--path", str(tiny_pipeline), "--credits-per-image", "3", "--steps", "4")
    moved = shutil.copytree(tiny_pipeline, tmp_path / "moved")
    line = add("--id", "tiny", "--path", str(moved), "--device", "cpu")
    assert line["created"] is False
    entry = ModelCatalogEntry.objects.get(pk="tiny")
    assert entry.credits_per_image == 3
    assert entry.engine_settings["path"] == str(moved)
    assert (entry.engine_settings["steps"], entry.engine_settings["device"]) == (4, "cpu")


def test_a_directory_without_a_pipeline_is_refused(tmp_path):
    with pytest.raises(CommandError, match="was not added"):
        add("--id", "empty", "--path", str(tmp_path))
    assert not ModelCatalogEntry.objects.filter(pk="empty").exists()


def test_a_pipeline_whose_weights_are_damaged_is_refused(tiny_pipeline, tmp_path):
    damaged = shutil.copytree(tiny_pipeline, tmp_path / "damaged")
    for weights in (damaged / "unet").glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CommandError, match="was not added"):
        add("--id", "damaged", "--path", str(damaged), "--device", "cpu")
    assert not ModelCatalogEntry.objects.filter(pk="damaged").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--credits-per-image", "0"), ("--steps", "0"), ("--steps", "101")]
)
def test_numbers_outside_the_limits_are_refused(tiny_pipeline, option, value):
    with pytest.raises(CommandError, match=option):
        add("--id", "tiny", "--path", str(tiny_pipeline), option, value)
    assert not ModelCatalogEntry.objects.filter(pk="tiny").exists()


def test_a_request_naming_no_steps_gets_the_models_own(client, tiny_pipeline):
    add("--id", "tiny", "--path", str(tiny_pipeline), "--steps", "4", "--guidance-scale", "2")
    _, key = customer()
    body = {"prompt": "a fox", "model": "tiny", "width": 256, "height": 256}
    job = client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key, **ASYNC)
    ).json()
    assert (job["steps"], job["guidance_scale"]) == (4, 2.0)
    named = {**body, "steps": 9, "guidance_scale": 3.5}
    job = client.post(
        "/v1/text-to-image", named, content_type="application/json", **headers(key, **ASYNC)
    ).json()
    assert (job["steps"], job["guidance_scale"]) == (9, 3.5)


def test_a_request_to_a_model_without_defaults_gets_the_apis(client):
    _, key = customer()
    body = {"prompt": "a fox", "model": "imagen-v2", "width": 256, "height": 256}
    job = client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key, **ASYNC)
    ).json()
    assert (job["steps"], job["guidance_scale"]) == (30, 7.5)


def test_a_worker_loads_and_warms_up_every_enabled_diffusers_model(tiny_pipeline, tmp_path):
    add("--id", "tiny", "--path", str(tiny_pipeline), "--device", "cpu", "--dtype", "float32")
    copy = shutil.copytree(tiny_pipeline, tmp_path / "gone")
    add("--id", "gone", "--path", str(copy), "--device", "cpu", "--dtype", "float32")
    shutil.rmtree(copy)
    add("--id", "off", "--path", str(tiny_pipeline), "--device", "cpu")
    ModelCatalogEntry.objects.filter(pk="off").update(enabled=False)
    assert diffusers_models.load_diffusers_models() == ["tiny"]

"""The openai_compatible engine against a fake upstream on loopback: directly and via the API."""

import io
import json
import socket

import pytest
from PIL import Image

from generation.engines import EngineError, EngineRequest, get_engine
from generation.models import Job, ModelCatalogEntry
from generation.tasks import run_job
from tests.generation.factories import ASYNC, customer, headers, image_base64
from tests.generation.fake_upstream import FakeUpstream

KEY_VARIABLE = "FAKE_UPSTREAM_API_KEY"
KEY = "sk-upstream-test-0123456789"


@pytest.fixture
def upstream(settings, monkeypatch):
    # A loopback upstream needs the SSRF guard lifted, as in development.
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.UPSTREAM_ALLOW_PRIVATE_NETWORKS = None
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    server = FakeUpstream().start()
    yield server
    server.stop()


def engine_settings(upstream, **overrides) -> dict:
    return {
        "base_url": upstream.base_url,
        "model": "upstream-image-1",
        "api_key_env": KEY_VARIABLE,
        "timeout_seconds": 5,
        **overrides,
    }


def engine_request(upstream, **fields) -> EngineRequest:
    settings = engine_settings(upstream, **fields.pop("settings", {}))
    values = {"prompt": "A lighthouse at dusk", "width": 512, "height": 384, "seed": 7}
    return EngineRequest(**{**values, **fields}, settings=settings)


def render(request: EngineRequest, progress=None) -> list[bytes]:
    return get_engine("openai_compatible").generate(request, progress or (lambda _: None))


def pixels(png: bytes) -> tuple[str, tuple[int, int]]:
    image = Image.open(io.BytesIO(png))
    return image.format, image.size


def failure(request: EngineRequest) -> EngineError:
    with pytest.raises(EngineError) as caught:
        render(request)
    return caught.value


# --- the engine on its own -------------------------------------------------------------


def test_b64_json_answer_gives_pngs_of_the_requested_size(upstream):
    images = render(engine_request(upstream, num_images=2))
    assert [pixels(png) for png in images] == [("PNG", (512, 384))] * 2


def test_request_carries_the_key_and_openais_images_body(upstream):
    render(engine_request(upstream, negative_prompt="fog", style="vintage", num_images=2))
    (sent,) = upstream.generation_requests()
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": "upstream-image-1",
        "prompt": "A lighthouse at dusk",
        "n": 2,
        "size": "512x384",
        "response_format": "b64_json",
        "seed": 7,
        "negative_prompt": "fog",
        "style": "vintage",
    }


def test_a_transparent_background_is_asked_of_the_upstream(upstream):
    render(engine_request(upstream, background="transparent"))
    assert upstream.generation_requests()[0].json()["background"] == "transparent"


def test_the_upstream_is_sent_no_background_for_an_opaque_job(upstream):
    render(engine_request(upstream))
    assert "background" not in upstream.generation_requests()[0].json()


def test_no_previews_are_handed_over_even_when_asked(upstream):
    previews = []
    get_engine("openai_compatible").generate(
        engine_request(upstream, partial_images=3),
        lambda value, preview=None: previews.append(preview) if preview else None,
    )
    assert previews == []


def test_url_answer_is_downloaded_without_the_key(upstream):
    images = render(engine_request(upstream, num_images=2, settings={"response_format": "url"}))
    assert [pixels(png) for png in images] == [("PNG", (512, 384))] * 2
    assert upstream.generation_requests()[0].json()["response_format"] == "url"
    downloads = [r for r in upstream.received if r.method == "GET"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


def test_another_size_and_format_is_converted_to_a_png_of_the_stated_size(upstream):
    upstream.image_size, upstream.image_format = (1024, 1024), "JPEG"
    (png,) = render(engine_request(upstream, settings={"response_format": "url"}))
    assert pixels(png) == ("PNG", (512, 384))


def test_progress_is_reported_before_and_after(upstream):
    reported = []
    render(engine_request(upstream), reported.append)
    assert reported == [0, 100]


def test_upstream_error_reports_its_status_and_message_without_the_key(upstream):
    error = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}
    upstream.reply = (401, json.dumps(error).encode())
    raised = failure(engine_request(upstream))
    assert raised.code == "upstream_error"
    assert "401" in raised.message
    assert "Incorrect API key provided" in raised.message
    assert KEY not in raised.message


def test_unreachable_upstream_is_an_upstream_error(upstream):
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{closed_port}/v1"
    raised = failure(engine_request(upstream, settings={"base_url": base_url}))
    assert (raised.code, raised.message) == ("upstream_error", "The upstream could not be reached.")


def test_undecodable_image_is_an_invalid_response(upstream):
    upstream.reply = (200, json.dumps({"data": [{"b64_json": "bm90IGFuIGltYWdl"}]}).encode())
    assert failure(engine_request(upstream)).code == "upstream_invalid_response"


def test_fewer_images_than_asked_is_an_invalid_response(upstream):
    upstream.reply = (200, upstream.images_answer({"size": "512x384", "n": 1}))
    assert failure(engine_request(upstream, num_images=2)).code == "upstream_invalid_response"


def test_unset_key_variable_is_misconfigured_and_sends_nothing(upstream, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE)
    raised = failure(engine_request(upstream))
    assert raised.code == "upstream_misconfigured"
    assert KEY_VARIABLE not in raised.message
    assert upstream.received == []


def test_private_address_is_refused_without_the_allow_setting(upstream, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    assert failure(engine_request(upstream)).code == "upstream_misconfigured"
    assert upstream.received == []


def test_upstream_allow_setting_overrides_the_webhook_one(upstream, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.UPSTREAM_ALLOW_PRIVATE_NETWORKS = True
    assert len(render(engine_request(upstream))) == 1


def test_upstream_allow_setting_can_refuse_what_webhooks_may_reach(upstream, settings):
    settings.UPSTREAM_ALLOW_PRIVATE_NETWORKS = False
    assert failure(engine_request(upstream)).code == "upstream_misconfigured"


def test_only_text_to_image_is_supported(upstream):
    raised = failure(engine_request(upstream, mode="variations", init_image=b"x"))
    assert raised.code == "invalid_parameters"
    assert upstream.received == []


# --- through the API and the worker task ---------------------------------------------


def upstream_model(upstream, **overrides) -> ModelCatalogEntry:
    return ModelCatalogEntry.objects.create(
        id="upstream-image",
        name="Upstream Image",
        engine="openai_compatible",
        engine_settings=engine_settings(upstream, **overrides),
        credits_per_image=2,
        capabilities=["text-to-image"],
    )


def submit_and_run(client, key, body: dict) -> dict:
    created = client.post(
        "/v1/text-to-image",
        {"model": "upstream-image", "prompt": "A lighthouse", **body},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert created.status_code == 202, created.content
    job = Job.objects.get(public_id=created.json()["id"])
    run_job(str(job.pk))
    return client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


@pytest.mark.django_db
@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_job_completes_with_images_at_the_stated_size_and_keeps_its_credits(
    client, upstream, response_format
):
    upstream_model(upstream, response_format=response_format)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {"width": 512, "height": 384, "num_images": 2})
    assert (job["status"], job["credits_used"]) == ("completed", 4)
    assert balance(organization) == 6
    for image in job["images"]:
        response = client.get(image["url"])
        assert response.status_code == 200
        assert pixels(b"".join(response.streaming_content)) == ("PNG", (512, 384))


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 400])
def test_upstream_error_fails_the_job_with_a_full_refund(client, upstream, status):
    upstream.reply = (status, json.dumps({"error": {"message": "Upstream says no"}}).encode())
    upstream_model(upstream)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "upstream_error"
    assert str(status) in job["error"]["message"]
    assert "Upstream says no" in job["error"]["message"]
    assert (job["credits_used"], balance(organization)) == (0, 10)


@pytest.mark.django_db
def test_upstream_that_hangs_past_the_timeout_fails_the_job_with_a_full_refund(client, upstream):
    upstream.delay = 3
    upstream_model(upstream, timeout_seconds=0.5)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {})
    assert (job["status"], job["error"]["code"]) == ("failed", "upstream_timeout")
    assert balance(organization) == 10


@pytest.mark.django_db
def test_garbage_answer_fails_the_job_with_a_full_refund(client, upstream):
    upstream.reply = (200, b"<html>not json</html>")
    upstream_model(upstream)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {})
    assert (job["status"], job["error"]["code"]) == ("failed", "upstream_invalid_response")
    assert balance(organization) == 10


@pytest.mark.django_db
def test_missing_key_fails_the_job_as_misconfigured_with_a_full_refund(
    client, upstream, monkeypatch
):
    monkeypatch.delenv(KEY_VARIABLE)
    upstream_model(upstream)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {})
    assert (job["status"], job["error"]["code"]) == ("failed", "upstream_misconfigured")
    assert balance(organization) == 10


@pytest.mark.django_db
def test_private_upstream_is_refused_without_the_allow_setting(client, upstream, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    upstream_model(upstream)
    organization, key = customer(credits=10)
    job = submit_and_run(client, key, {})
    assert (job["status"], job["error"]["code"]) == ("failed", "upstream_misconfigured")
    assert balance(organization) == 10
    assert upstream.received == []


@pytest.mark.django_db
def test_upstream_model_refuses_image_to_image_at_submission(client, upstream):
    upstream_model(upstream)
    _, key = customer(credits=10)
    response = client.post(
        "/v1/variations",
        {"model": "upstream-image", "image": image_base64()},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert response.status_code == 400
    assert "does not do variations" in json.dumps(response.json())
    assert upstream.received == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("worker_queues", [["upstream"]])
@pytest.mark.usefixtures("celery_worker")
def test_an_upstream_job_is_run_by_a_worker_consuming_only_the_upstream_queue(client, upstream):
    upstream_model(upstream)
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"model": "upstream-image", "prompt": "A lighthouse", "width": 512, "height": 384},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], len(upstream.received)) == ("completed", 1)

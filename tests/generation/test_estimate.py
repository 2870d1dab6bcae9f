"""POST /v1/estimate: a dialect's body priced as its submission would be, nothing charged."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from common.api import rate_limits
from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers, image_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_window")]


def estimate(client, key, body, endpoint=None):
    path = "/v1/estimate" + (f"?endpoint={endpoint}" if endpoint else "")
    return client.post(path, body, content_type="application/json", **headers(key))


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


@pytest.mark.parametrize(
    ("endpoint", "body", "credits"),
    [
        (None, {"prompt": "p"}, 1),
        (
            "/v1/text-to-image",
            {"prompt": "p", "model": "imagen-v3", "width": 1920, "height": 1080, "num_images": 2},
            8,
        ),
        (
            "/v2/images/generate",
            {"prompt": "p", "model": "imagen-v3", "parameters": {"width": 2048, "height": 2048}},
            8,
        ),
        ("/v1/images/generations", {"prompt": "p", "n": 3, "size": "1032x1024"}, 6),
        ("/v1/tasks/async", {"text_data": "p", "options": {"num_images": 6}}, 6),
        ("/v1/tasks/sync", {"text_data": "p"}, 1),
    ],
)
def test_estimate_answers_the_cost_and_the_balance(client, endpoint, body, credits):
    _, key = customer(plan="pro", credits=40)
    response = estimate(client, key, body, endpoint)
    assert response.status_code == 200
    assert response.json() == {"credits": credits, "balance": 40}


def test_estimate_prices_an_input_image_at_its_fitted_size(client):
    _, key = customer(credits=5)
    image = image_bytes(size=(3000, 2000))
    response = client.post(
        "/v1/estimate?endpoint=/v1/image-to-image",
        {"prompt": "p", "model": "imagen-fast", "image": SimpleUploadedFile("in.png", image)},
        **headers(key),
    )
    assert response.status_code == 200
    assert response.json() == {"credits": 3, "balance": 5}


def test_estimate_creates_no_job_and_charges_nothing(client):
    organization, key = customer(credits=3)
    estimate(client, key, {"prompt": "p", "num_images": 4})
    assert not Job.objects.exists()
    assert balance(organization) == 3


def test_estimate_above_the_balance_still_answers_the_cost(client):
    _, key = customer(credits=2)
    response = estimate(client, key, {"prompt": "p", "model": "imagen-v3", "num_images": 4})
    assert response.status_code == 200
    assert response.json() == {"credits": 8, "balance": 2}


def test_estimate_refuses_a_body_exactly_as_its_dialect_does(client):
    _, key = customer(credits=10)
    body = {"prompt": "p", "model": "imagen-v2", "parameters": {"width": 1001}}
    refused = client.post(
        "/v2/images/generate", body, content_type="application/json", **headers(key, **ASYNC)
    )
    response = estimate(client, key, body, "/v2/images/generate")
    assert response.status_code == refused.status_code == 400
    assert response.json() == refused.json()


def test_estimate_refuses_an_unknown_model_as_a_submission_does(client):
    _, key = customer(credits=10)
    response = estimate(client, key, {"prompt": "p", "model": "nope"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["model"][0].startswith("Unknown model 'nope'.")


def test_estimate_names_the_endpoints_it_knows_when_given_another(client):
    _, key = customer(credits=10)
    response = estimate(client, key, {"prompt": "p"}, "/v1/jobs")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert "/v1/text-to-image" in error["fields"]["endpoint"][0]


def test_estimates_use_no_submission_slot(client):
    _, key = customer(plan="free", credits=100)
    for _ in range(12):
        assert estimate(client, key, {"prompt": "p"}).status_code == 200
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "p"},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    assert response.status_code == 202
    assert response["X-RateLimit-Remaining"] == "9"


def test_estimates_count_against_the_keys_read_cap(client, monkeypatch):
    monkeypatch.setattr(rate_limits, "READS_PER_MINUTE_PER_KEY", 2)
    _, key = customer(credits=10)
    statuses = [estimate(client, key, {"prompt": "p"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_models_list_states_the_pricing_formula(client):
    _, key = customer(credits=0)
    models = client.get("/v1/models", **headers(key)).json()["data"]
    v3 = next(model for model in models if model["id"] == "imagen-v3")
    assert v3["credits_per_image"] == 2
    assert v3["pricing"] == {
        "credits_per_image": 2,
        "megapixel": 1_048_576,
        "formula": "credits_per_image * num_images * ceil(width * height / 1048576)",
    }

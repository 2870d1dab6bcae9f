import pytest

from generation.models import ModelCatalogEntry
from tests.accounts.factories import UserFactory
from tests.generation.factories import JobFactory, customer, headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_staff_edit_of_a_price_shows_in_the_api_at_once(staff_client):
    entry = ModelCatalogEntry.objects.get(id="imagen-fast")
    form = {
        "id": entry.id,
        "name": entry.name,
        "description": entry.description,
        "engine": entry.engine,
        "engine_settings": '{"detail": 2}',
        "credits_per_image": 5,
        "capabilities": '["text-to-image"]',
        "enabled": "on",
        "sort_order": 2,
    }
    response = staff_client.post(f"/admin/generation/modelcatalogentry/{entry.id}/change/", form)
    assert response.status_code == 302
    _, key = customer()
    models = {m["id"]: m for m in staff_client.get("/v1/models", **headers(key)).json()["data"]}
    assert models["imagen-fast"]["credits_per_image"] == 5
    assert models["imagen-fast"]["capabilities"] == ["text-to-image"]


def test_disabled_model_disappears_and_is_refused(client):
    ModelCatalogEntry.objects.filter(id="imagen-artistic").update(enabled=False)
    from generation import catalog

    catalog.invalidate()
    _, key = customer()
    ids = [m["id"] for m in client.get("/v1/models", **headers(key)).json()["data"]]
    assert ids == ["imagen-v2", "imagen-v3", "imagen-fast"]
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "p", "model": "imagen-artistic"},
        content_type="application/json",
        **headers(key, prefer="respond-async"),
    )
    assert response.status_code == 400
    assert "model" in response.json()["error"]["fields"]


def test_jobs_are_listed_and_read_only_in_the_admin(staff_client):
    job = JobFactory()
    assert staff_client.get("/admin/generation/job/").status_code == 200
    page = staff_client.get(f"/admin/generation/job/{job.pk}/change/")
    assert page.status_code == 200
    assert b'name="status"' not in page.content


def test_seeded_catalog_has_the_four_models_with_distinct_settings():
    models = {m.id: m for m in ModelCatalogEntry.objects.all()}
    assert set(models) == {"imagen-v2", "imagen-v3", "imagen-fast", "imagen-artistic"}
    assert [m.id for m in models.values() if m.is_default] == ["imagen-v2"]
    assert len({str(m.engine_settings) for m in models.values()}) == 4
    assert {m.id: m.credits_per_image for m in models.values()} == {
        "imagen-v2": 1,
        "imagen-v3": 2,
        "imagen-fast": 1,
        "imagen-artistic": 2,
    }


def test_openapi_describes_every_generation_endpoint(client):
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/models",
        "/v1/usage",
        "/v1/text-to-image",
        "/v1/image-to-image",
        "/v1/variations",
        "/v1/jobs",
        "/v1/jobs/{job_ref}",
        "/v1/jobs/{job_ref}/cancel",
        "/v1/images/generations",
        "/v1/tasks/sync",
        "/v1/tasks/async",
        "/v2/images/generate",
        "/v2/jobs/{job_ref}",
    ):
        assert path in schema["paths"], path
    text_to_image = schema["paths"]["/v1/text-to-image"]["post"]
    assert "200" in text_to_image["responses"]
    assert "402" in text_to_image["responses"]
    request = schema["components"]["schemas"]["TextToImageRequest"]
    assert request["properties"]["width"]["maximum"] == 2048


@pytest.mark.parametrize("field", ["end_user", "safety_identifier"])
def test_staff_filter_jobs_by_the_end_user_the_customer_named(staff_client, field):
    organization, _ = customer(credits=0)
    named = JobFactory(organization=organization, **{field: "customer-42"})
    other = JobFactory(organization=organization, **{field: "customer-7"})
    response = staff_client.get(f"/admin/generation/job/?{field}=customer-42")
    assert response.status_code == 200
    page = response.content.decode()
    assert named.public_id in page
    assert other.public_id not in page


def test_a_jobs_user_and_safety_identifier_show_to_staff(staff_client):
    organization, _ = customer(credits=0)
    job = JobFactory(organization=organization, end_user="customer-42", safety_identifier="h42")
    page = staff_client.get(f"/admin/generation/job/{job.pk}/change/").content.decode()
    assert "customer-42" in page
    assert "h42" in page


def test_staff_are_told_what_is_wrong_with_a_diffusers_models_settings(staff_client):
    form = {
        "id": "flux-schnell",
        "name": "FLUX.1 [schnell]",
        "engine": "diffusers",
        "engine_settings": '{"path": "/models/flux", "dtype": "float8"}',
        "credits_per_image": 2,
        "capabilities": '["text-to-image"]',
        "enabled": "on",
        "sort_order": 9,
    }
    response = staff_client.post("/admin/generation/modelcatalogentry/add/", form)
    assert response.status_code == 200
    assert "engine_settings.dtype is &#x27;float8&#x27;" in response.content.decode()
    assert not ModelCatalogEntry.objects.filter(id="flux-schnell").exists()
    form["engine_settings"] = '{"path": "/models/flux", "dtype": "bfloat16", "steps": 4}'
    assert staff_client.post("/admin/generation/modelcatalogentry/add/", form).status_code == 302
    assert ModelCatalogEntry.objects.get(id="flux-schnell").engine_settings["steps"] == 4

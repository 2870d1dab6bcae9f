"""Cost, reservation and refunds, seen through the API and the balance."""

import pytest

from billing.models import CreditLedgerEntry
from generation import catalog
from generation.models import Job
from generation.pricing import request_cost
from generation.tasks import run_job
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


def post(client, key, path, body, **extra):
    options = {**ASYNC, **extra}
    return client.post(path, body, content_type="application/json", **headers(key, **options))


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


@pytest.mark.parametrize(
    ("model_id", "num_images", "width", "height", "cost"),
    [
        ("imagen-v2", 1, 1024, 1024, 1),
        ("imagen-v2", 1, 1024, 1032, 2),
        ("imagen-v3", 2, 1920, 1080, 8),
        ("imagen-fast", 4, 256, 256, 4),
        ("imagen-artistic", 3, 2048, 2048, 24),
    ],
)
def test_cost_is_price_times_images_times_started_megapixels(
    model_id, num_images, width, height, cost
):
    model = catalog.get_model(model_id)
    assert request_cost(model=model, num_images=num_images, width=width, height=height) == cost


def test_submission_reserves_its_cost_from_the_balance(client):
    organization, key = customer(plan="pro", credits=20)
    body = {
        "prompt": "dragon",
        "model": "imagen-v3",
        "width": 1920,
        "height": 1080,
        "num_images": 2,
    }
    assert post(client, key, "/v1/text-to-image", body).status_code == 202
    assert balance(organization) == 12
    assert Job.objects.get().credits_reserved == 8


def test_short_balance_is_402_with_the_exact_sentence(client):
    organization, key = customer(credits=2)
    body = {"text_data": "house", "options": {"num_images": 5}}
    response = post(client, key, "/v1/tasks/async", body)
    assert response.status_code == 402
    assert response.json() == {
        "error": {
            "code": "insufficient_credits",
            "message": "Insufficient credits to complete request",
            "details": "This request requires 5 credits, but you have 2 remaining",
        }
    }
    assert balance(organization) == 2
    assert Job.objects.count() == 0


def test_invalid_request_charges_nothing(client):
    organization, key = customer(credits=10)
    entries = CreditLedgerEntry.objects.count()
    assert post(client, key, "/v1/text-to-image", {"prompt": "p", "steps": 0}).status_code == 400
    assert balance(organization) == 10
    assert CreditLedgerEntry.objects.count() == entries


@pytest.mark.usefixtures("steady_window")
def test_rate_limited_request_charges_nothing(client):
    organization, key = customer(credits=50)
    for _ in range(10):
        assert post(client, key, "/v1/text-to-image", {"prompt": "p"}).status_code == 202
    assert post(client, key, "/v1/text-to-image", {"prompt": "p"}).status_code == 429
    assert balance(organization) == 40
    assert Job.objects.count() == 10


def test_queue_down_is_503_and_leaves_balance_and_jobs_untouched(client, queue_down):
    organization, key = customer(credits=10)
    entries = CreditLedgerEntry.objects.count()
    response = post(client, key, "/v1/text-to-image", {"prompt": "p"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert balance(organization) == 10
    assert CreditLedgerEntry.objects.count() == entries
    assert Job.objects.count() == 0


def test_queue_down_on_v2_is_503_too(client, queue_down):
    organization, key = customer(credits=10)
    response = post(client, key, "/v2/images/generate", {"prompt": "p", "model": "imagen-v2"})
    assert response.status_code == 503
    assert balance(organization) == 10


def test_engine_failure_refunds_in_full_and_reports_the_error(client, broken_model):
    organization, key = customer(credits=10)
    job_id = post(
        client, key, "/v1/text-to-image", {"prompt": "p", "model": broken_model.id}
    ).json()["id"]
    assert balance(organization) == 7
    run_job(str(Job.objects.get(public_id=job_id).pk))
    assert balance(organization) == 10
    body = client.get(f"/v1/jobs/{job_id}", **headers(key)).json()
    assert body["status"] == "failed"
    assert body["credits_used"] == 0
    assert body["error"] == {"code": "engine_error", "message": "The renderer crashed"}
    assert body["images"] == []


def test_unexpected_engine_crash_refunds_and_hides_the_internals(client, broken_model, monkeypatch):
    from generation import engines

    monkeypatch.setitem(
        engines._ENGINES,
        "broken",
        engines.Registered("tests.generation.engines.CrashingEngine", queue="local"),
    )
    organization, key = customer(credits=10)
    job_id = post(
        client, key, "/v2/images/generate", {"prompt": "p", "model": broken_model.id}
    ).json()["jobId"]
    run_job(job_id)
    assert balance(organization) == 10
    body = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "engine_error"
    assert "segfault" not in body["error"]["message"]


def test_cancel_of_a_queued_job_refunds_in_full(client):
    organization, key = customer(credits=10)
    job_id = post(client, key, "/v1/text-to-image", {"prompt": "p", "num_images": 3}).json()["id"]
    assert balance(organization) == 7
    response = post(client, key, f"/v1/jobs/{job_id}/cancel", {})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["credits_used"]) == ("canceled", 0)
    assert balance(organization) == 10


def test_canceled_job_is_not_run_by_the_worker(client):
    organization, key = customer(credits=10)
    job_id = post(client, key, "/v1/text-to-image", {"prompt": "p"}).json()["id"]
    post(client, key, f"/v1/jobs/{job_id}/cancel", {})
    job = Job.objects.get(public_id=job_id)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED
    assert balance(organization) == 10


def test_cancel_twice_is_409_and_refunds_once(client):
    organization, key = customer(credits=10)
    job_id = post(client, key, "/v1/text-to-image", {"prompt": "p"}).json()["id"]
    post(client, key, f"/v1/jobs/{job_id}/cancel", {})
    response = post(client, key, f"/v1/jobs/{job_id}/cancel", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_not_cancelable"
    assert balance(organization) == 10


def test_cancel_of_a_running_job_is_409(client):
    organization, key = customer(credits=10)
    job_id = post(client, key, "/v1/text-to-image", {"prompt": "p"}).json()["id"]
    Job.objects.filter(public_id=job_id).update(status=Job.Status.RUNNING)
    response = post(client, key, f"/v1/jobs/{job_id}/cancel", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_not_cancelable"
    assert balance(organization) == 9


def test_time_limit_fails_the_job_with_a_full_refund(client, broken_model, monkeypatch):
    from generation import engines

    monkeypatch.setitem(
        engines._ENGINES,
        "broken",
        engines.Registered("tests.generation.engines.TimedOutEngine", queue="local"),
    )
    organization, key = customer(credits=10)
    body = {"prompt": "p", "model": broken_model.id}
    job_id = post(client, key, "/v1/text-to-image", body).json()["id"]
    run_job(str(Job.objects.get(public_id=job_id).pk))
    assert balance(organization) == 10
    assert client.get(f"/v1/jobs/{job_id}", **headers(key)).json()["error"]["code"] == "timeout"


def test_run_job_has_time_limits_and_survives_worker_loss():
    assert run_job.acks_late
    assert run_job.reject_on_worker_lost
    assert 0 < run_job.soft_time_limit < run_job.time_limit

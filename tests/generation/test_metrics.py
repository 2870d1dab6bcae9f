"""What generation, billing and the rate limits count, as a scrape of /metrics shows it."""

import pytest

from generation import tasks
from generation.models import Job
from tests.common.scraping import TOKEN, scrape, value
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def submit(client, key, body=None):
    return client.post(
        "/v2/images/generate",
        body or {"prompt": "a lighthouse", "model": "imagen-fast"},
        content_type="application/json",
        **headers(key, **ASYNC),
    )


def test_an_accepted_submission_is_counted_by_dialect_and_plan(client):
    _, key = customer(plan="pro", credits=100)
    labels = {"dialect": "v2", "plan": "pro", "outcome": "accepted"}
    before = value(scrape(client), "imagen_submissions_total", **labels)
    assert submit(client, key).status_code == 202
    assert value(scrape(client), "imagen_submissions_total", **labels) - before == 1


def test_a_refused_submission_is_counted_by_its_error_code(client):
    _, key = customer(plan="pro", credits=0)
    labels = {"dialect": "v2", "plan": "pro", "outcome": "insufficient_credits"}
    before = value(scrape(client), "imagen_submissions_total", **labels)
    assert submit(client, key).status_code == 402
    assert value(scrape(client), "imagen_submissions_total", **labels) - before == 1


def test_an_invalid_body_is_counted_in_its_dialect(client):
    _, key = customer(plan="pro", credits=100)
    labels = {"dialect": "v2", "plan": "pro", "outcome": "invalid_parameters"}
    before = value(scrape(client), "imagen_submissions_total", **labels)
    assert submit(client, key, {"prompt": ""}).status_code == 400
    assert value(scrape(client), "imagen_submissions_total", **labels) - before == 1


def test_a_job_completed_by_the_worker_is_counted_with_its_engine_time_and_ledger(
    client, django_capture_on_commit_callbacks
):
    _, key = customer(plan="pro", credits=100)
    samples = scrape(client)
    completed = value(samples, "imagen_jobs_finished_total", status="completed", code="")
    rendered = value(samples, "imagen_engine_duration_seconds_count", model="imagen-fast")
    reserved = value(samples, "imagen_ledger_operations_total", kind="reserve")
    with django_capture_on_commit_callbacks(execute=True):
        job_id = submit(client, key).json()["jobId"]
        tasks.run_job.apply(args=[str(Job.objects.get().pk)])
    assert client.get(f"/v2/jobs/{job_id}", **headers(key)).json()["status"] == "COMPLETED"
    samples = scrape(client)
    assert value(samples, "imagen_jobs_finished_total", status="completed", code="") == (
        completed + 1
    )
    assert value(samples, "imagen_engine_duration_seconds_count", model="imagen-fast") == (
        rendered + 1
    )
    assert value(samples, "imagen_ledger_operations_total", kind="reserve") == reserved + 1


def test_a_failed_job_is_counted_with_its_failure_code(
    client, broken_model, django_capture_on_commit_callbacks
):
    _, key = customer(plan="pro", credits=100)
    labels = {"status": "failed", "code": "engine_error"}
    refunds = value(scrape(client), "imagen_ledger_operations_total", kind="refund")
    before = value(scrape(client), "imagen_jobs_finished_total", **labels)
    with django_capture_on_commit_callbacks(execute=True):
        assert submit(client, key, {"prompt": "p", "model": broken_model.id}).status_code == 202
        tasks.run_job.apply(args=[str(Job.objects.get().pk)])
    samples = scrape(client)
    assert value(samples, "imagen_jobs_finished_total", **labels) - before == 1
    assert value(samples, "imagen_ledger_operations_total", kind="refund") - refunds == 1


@pytest.mark.usefixtures("steady_window")
def test_a_submission_over_the_minute_limit_is_counted_as_a_refusal_of_that_window(client):
    _, key = customer(plan="free", credits=100, requests_per_minute_override=1)
    labels = {"limit": "submissions", "window": "minute"}
    before = value(scrape(client), "imagen_rate_limit_refusals_total", **labels)
    assert submit(client, key).status_code == 202
    assert submit(client, key).status_code == 429
    assert value(scrape(client), "imagen_rate_limit_refusals_total", **labels) - before == 1

"""Reading jobs: one, a page, the v2 shape; tenancy; query budgets."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation import blocklist
from generation.models import Job
from tests.generation.factories import ASYNC, JobFactory, customer, headers

pytestmark = pytest.mark.django_db


def submit(client, key, path="/v1/text-to-image", body=None):
    return client.post(
        path, body or {"prompt": "p"}, content_type="application/json", **headers(key, **ASYNC)
    )


def test_job_is_read_back_by_its_v1_id(client):
    _, key = customer()
    created = submit(client, key, body={"prompt": "a fox", "seed": 7, "style": "anime"}).json()
    response = client.get(f"/v1/jobs/{created['id']}", **headers(key))
    assert response.status_code == 200
    assert response.json() == created
    assert created["id"].startswith("img_")
    assert set(created) == {
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
    }


def test_v2_job_shape(client):
    _, key = customer()
    job_id = submit(
        client, key, "/v2/images/generate", {"prompt": "a fox", "model": "imagen-v3"}
    ).json()["jobId"]
    body = client.get(f"/v2/jobs/{job_id}", **headers(key)).json()
    assert body["jobId"] == job_id
    assert body["status"] == "QUEUED"
    assert (body["progress"], body["model"], body["prompt"]) == (0, "imagen-v3", "a fox")
    assert body["createdAt"].endswith("Z")
    assert (
        body["startedAt"],
        body["completedAt"],
        body["creditsUsed"],
        body["result"],
        body["error"],
    ) == (None, None, 0, None, None)


def test_expires_at_follows_the_plan_retention(client):
    _, key = customer(plan="pro")
    job = Job.objects.get(public_id=submit(client, key).json()["id"])
    assert (job.expires_at - job.created_at).days == 30


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/jobs/{public_id}"),
        ("get", "/v1/jobs/{uuid}"),
        ("get", "/v2/jobs/{uuid}"),
        ("get", "/v2/jobs/{public_id}"),
        ("post", "/v1/jobs/{public_id}/cancel"),
    ],
)
def test_another_organizations_job_is_404(client, method, path):
    theirs = JobFactory()
    _, key = customer()
    url = path.format(public_id=theirs.public_id, uuid=theirs.pk)
    response = getattr(client, method)(url, **headers(key))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.status == Job.Status.QUEUED


def test_list_is_newest_first_and_holds_only_my_jobs(client):
    organization, key = customer()
    JobFactory()  # someone else's
    mine = [JobFactory(organization=organization) for _ in range(3)]
    body = client.get("/v1/jobs", **headers(key)).json()
    assert [job["id"] for job in body["data"]] == [j.public_id for j in reversed(mine)]
    assert body["next_cursor"] is None


def test_list_pages_with_a_cursor(client):
    organization, key = customer()
    jobs = [JobFactory(organization=organization) for _ in range(5)]
    first = client.get("/v1/jobs?limit=2", **headers(key)).json()
    second = client.get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", **headers(key)).json()
    third = client.get(f"/v1/jobs?limit=2&cursor={second['next_cursor']}", **headers(key)).json()
    ids = [j["id"] for page in (first, second, third) for j in page["data"]]
    assert ids == [j.public_id for j in reversed(jobs)]
    assert third["next_cursor"] is None


def test_list_filters_by_status(client):
    organization, key = customer()
    JobFactory(organization=organization, status=Job.Status.COMPLETED)
    running = JobFactory(organization=organization, status=Job.Status.RUNNING)
    body = client.get("/v1/jobs?status=processing", **headers(key)).json()
    assert [j["id"] for j in body["data"]] == [running.public_id]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "status=done", "cursor=zzz"])
def test_list_rejects_bad_query_with_400(client, query):
    _, key = customer()
    response = client.get(f"/v1/jobs?{query}", **headers(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"


def test_submit_costs_at_most_7_queries(client, django_assert_max_num_queries):
    _, key = customer(plan="pro", credits=100)
    client.get("/v1/account", **headers(key))  # the key's last use is recorded once a minute
    blocklist.blocked_terms()  # read once per process, not per submission (generation.blocklist)
    # PostgreSQL moves the key's month in the reservation's statement; SQLite, which has no
    # data-modifying CTEs, sends its counter on its own.
    with django_assert_max_num_queries(7 if connection.vendor == "postgresql" else 8):
        assert (
            submit(
                client, key, "/v2/images/generate", {"prompt": "p", "model": "imagen-v2"}
            ).status_code
            == 202
        )


def test_job_read_costs_at_most_3_queries(client, django_assert_max_num_queries):
    organization, key = customer()
    job = JobFactory(organization=organization, num_images=2)
    client.get("/v1/account", **headers(key))
    with django_assert_max_num_queries(3):
        assert client.get(f"/v2/jobs/{job.pk}", **headers(key)).status_code == 200
    with django_assert_max_num_queries(3):
        assert client.get(f"/v1/jobs/{job.public_id}", **headers(key)).status_code == 200


def test_models_list_reads_no_table_once_cached(client):
    _, key = customer()
    client.get("/v1/models", **headers(key))
    with CaptureQueriesContext(connection) as queries:
        client.get("/v1/models", **headers(key))
    assert not [q for q in queries.captured_queries if "generation_modelcatalogentry" in q["sql"]]

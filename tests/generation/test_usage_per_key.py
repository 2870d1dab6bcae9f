"""GET /v1/usage?api_key=: one key's usage, and only a key of the caller's organization."""

import pytest
from django.utils import timezone

from generation import lifecycle
from generation.models import Job
from tests.accounts.factories import api_key_for
from tests.generation.factories import ASYNC, customer, headers, image_bytes, new_turn

pytestmark = pytest.mark.django_db


def submit(client, key, body):
    response = client.post(
        "/v1/text-to-image", body, content_type="application/json", **headers(key, **ASYNC)
    )
    assert response.status_code == 202
    return response.json()["id"]


def complete(public_id: str, count: int) -> None:
    job = lifecycle.take_turn(turn_id=new_turn(), job_id=Job.objects.get(public_id=public_id).pk)
    lifecycle.complete_job(job=job, images=[image_bytes("PNG", size=(512, 512))] * count)


def key_id(secret: str) -> str:
    return secret.removeprefix("sk_live_").split("_")[0]


def usage(client, key, query: str):
    today = timezone.now().date()
    return client.get(f"/v1/usage?from={today}&to={today}&{query}", **headers(key))


def test_usage_of_one_key_counts_only_that_keys_jobs(client):
    organization, first = customer(credits=50)
    second = api_key_for(organization)
    done = submit(client, first, {"prompt": "p", "width": 512, "height": 512, "num_images": 2})
    complete(done, count=2)
    submit(client, second, {"prompt": "p", "num_images": 3})
    today = str(timezone.now().date())
    assert usage(client, second, f"api_key={key_id(first)}").json() == {
        "data": [{"date": today, "requests": 1, "images": 2, "credits_used": 2}]
    }
    assert usage(client, first, f"api_key={key_id(second)}").json() == {
        "data": [{"date": today, "requests": 1, "images": 0, "credits_used": 0}]
    }
    assert usage(client, first, "").json()["data"][0]["requests"] == 2


def test_another_organizations_key_is_400_as_an_unknown_one(client):
    _, mine = customer()
    _, theirs = customer()
    answers = [
        usage(client, mine, f"api_key={key_id(theirs)}"),
        usage(client, mine, "api_key=nosuchid"),
    ]
    for response in answers:
        assert response.status_code == 400
        assert response.json() == {
            "error": {
                "code": "invalid_parameters",
                "message": "Invalid parameters",
                "details": "api_key: No API key of your organization has this id.",
                "fields": {"api_key": ["No API key of your organization has this id."]},
            }
        }

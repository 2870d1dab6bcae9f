"""Moderation in the product: refused prompts, flagged images, and staff decisions on them.

Images are judged by the real NudeNet detector: the local engine's render passes, and
FlaggedEngine returns a picture the detector really flags (tests/generation/moderation_images).
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts import services as accounts
from generation import moderation_cases, tasks
from generation.models import BlockedTerm, Job, ModerationCase, PromptRefusal
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.generation import moderation_images
from tests.generation.factories import ASYNC, customer, headers
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def post(client, key, body, path="/v1/text-to-image"):
    return client.post(path, body, content_type="application/json", **headers(key, **ASYNC))


def balance(organization) -> int:
    organization.refresh_from_db()
    return organization.credit_balance


def run(public_id: str) -> Job:
    job = Job.objects.get(public_id=public_id)
    tasks.run_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    return job


def flagged_job(client, key, flagged_model) -> Job:
    response = post(client, key, {"prompt": "a clay sculpture", "model": flagged_model.id})
    assert response.status_code == 202, response.content
    return run(response.json()["id"])


# --- Prompts ---------------------------------------------------------------------------


def test_profane_prompt_is_refused_without_charge_and_recorded(client):
    organization, key = customer(credits=10)
    response = post(client, key, {"prompt": "a portrait of you, fucking idiot"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_moderated"
    assert "Nothing was charged" in error["details"]
    assert balance(organization) == 10
    assert not Job.objects.filter(organization=organization).exists()
    refusal = PromptRefusal.objects.get(organization=organization)
    assert (refusal.reason, refusal.prompt) == ("profanity", "a portrait of you, fucking idiot")
    assert refusal.profanity_score >= 0.9
    assert refusal.api_key_id is not None


def test_blocked_term_in_the_negative_prompt_is_refused(client):
    BlockedTerm.objects.create(term="grimlock")
    organization, key = customer(credits=10)
    response = post(client, key, {"prompt": "a castle", "negative_prompt": "GR1MLOCK, blurry"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_moderated"
    assert "grimlock" in response.json()["error"]["details"]
    assert balance(organization) == 10
    refusal = PromptRefusal.objects.get(organization=organization)
    assert (refusal.reason, refusal.matched_terms) == ("blocked_term", ["grimlock"])


def test_removed_blocked_term_is_accepted_again(client):
    term = BlockedTerm.objects.create(term="grimlock")
    _, key = customer(credits=10)
    assert post(client, key, {"prompt": "a grimlock"}).status_code == 400
    term.delete()
    assert post(client, key, {"prompt": "a grimlock"}).status_code == 202


def test_refused_prompt_on_the_openai_endpoint_is_content_moderated(client):
    BlockedTerm.objects.create(term="grimlock")
    organization, key = customer(credits=10)
    response = post(client, key, {"prompt": "grimlock"}, path="/v1/images/generations")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "content_moderated")
    assert balance(organization) == 10


# --- safety_setting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/text-to-image", {"prompt": "p", "safety_setting": "block_none"}),
        ("/v1/images/generations", {"prompt": "p", "safety_setting": "block_none"}),
        (
            "/v2/images/generate",
            {"prompt": "p", "model": "imagen-v2", "parameters": {"safety_setting": "block_none"}},
        ),
    ],
)
def test_unknown_safety_setting_is_invalid_parameters(client, path, body):
    _, key = customer(credits=10)
    response = post(client, key, body, path=path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert "block_only_high" in str(error["fields"])


def test_safety_setting_is_kept_on_the_job_and_defaults_to_medium(client):
    _, key = customer(credits=10)
    strict = post(client, key, {"prompt": "p", "safety_setting": "block_only_high"}).json()["id"]
    default = post(client, key, {"prompt": "p"}).json()["id"]
    assert Job.objects.get(public_id=strict).safety_setting == "block_only_high"
    assert Job.objects.get(public_id=default).safety_setting == "block_medium_and_above"


# --- Images ----------------------------------------------------------------------------


def test_generated_image_passes_the_real_detector_and_is_served(client):
    organization, key = customer(credits=10)
    body = {"prompt": "A lighthouse at dusk", "width": 512, "height": 384, "seed": 1234}
    job = run(post(client, key, body).json()["id"])
    assert job.status == Job.Status.COMPLETED
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    assert client.get(read["images"][0]["url"]).status_code == 200
    assert not ModerationCase.objects.exists()
    assert balance(organization) == 9


def test_flagged_image_fails_the_job_with_a_full_refund(client, flagged_model):
    organization, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    assert (job.status, job.error_code, job.credits_used) == ("failed", "content_moderated", 0)
    assert balance(organization) == 10


def test_flagged_image_is_given_no_url_on_any_read(client, flagged_model):
    _, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    v1 = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    assert (v1["status"], v1["images"], v1["error"]["code"]) == ("failed", [], "content_moderated")
    listed = client.get("/v1/jobs", **headers(key)).json()["data"][0]
    assert listed["images"] == []
    v2 = client.get(f"/v2/jobs/{job.public_id}", **headers(key)).json()
    assert "http" not in str(v2)
    assert v2["status"] == "FAILED"


def test_flagged_image_is_stored_in_quarantine_and_a_case_opens(client, flagged_model):
    organization, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    image = job.images.get()
    assert image.quarantined
    assert image.storage_path.startswith("quarantine/")
    assert default_storage.exists(image.storage_path)
    case = job.moderation_case
    assert (case.status, case.organization, case.safety_setting) == (
        "pending",
        organization,
        "block_medium_and_above",
    )
    assert case.flagged_classes == ["BUTTOCKS_EXPOSED"]
    assert case.scores["BUTTOCKS_EXPOSED"] >= case.thresholds["BUTTOCKS_EXPOSED"]


def test_a_job_quarantined_twice_keeps_one_case_one_image_and_one_refund(client, flagged_model):
    # Two runs of one job (a redelivery while the first run was still going) both flag it.
    organization, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    picture = moderation_images.figure_from_behind()
    verdicts = moderation_cases.judge_images(job=job, images=[picture])
    second = moderation_cases.quarantine_job(job=job, images=[picture], verdicts=verdicts)
    assert second == job.moderation_case
    assert ModerationCase.objects.filter(job=job).count() == 1
    image = job.images.get()
    assert image.quarantined
    assert default_storage.exists(image.storage_path)
    assert balance(organization) == 10


@pytest.mark.parametrize(
    ("safety_setting", "flagged"),
    [("block_medium_and_above", True), ("block_only_high", False)],
)
def test_the_jobs_safety_setting_chooses_the_thresholds(
    client, monkeypatch, safety_setting, flagged
):
    from tests.generation.engines import register_flagged_model

    # Two lightly shaded spheres: the real detector says BUTTOCKS_EXPOSED 0.66.
    model = register_flagged_model(monkeypatch, picture="lightly_shaded_spheres")
    _, key = customer(credits=10)
    body = {"prompt": "two spheres", "model": model.id, "safety_setting": safety_setting}
    job = run(post(client, key, body).json()["id"])
    assert job.status == ("failed" if flagged else "completed")
    assert ModerationCase.objects.filter(job=job).exists() is flagged


# --- Staff decisions -------------------------------------------------------------------


def test_approval_completes_the_job_with_its_images_and_no_charge(
    client, flagged_model, django_capture_on_commit_callbacks
):
    organization, key = customer(credits=10)
    MembershipFactory(organization=organization, user=UserFactory(email="owner@example.com"))
    job = flagged_job(client, key, flagged_model)
    staff = UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        moderation_cases.approve_case(case=job.moderation_case, staff=staff)
    read = client.get(f"/v1/jobs/{job.public_id}", **headers(key)).json()
    assert (read["status"], read["credits_used"], read["error"]) == ("completed", 0, None)
    assert client.get(read["images"][0]["url"]).status_code == 200
    assert balance(organization) == 10
    case = ModerationCase.objects.get(job=job)
    assert (case.status, case.decided_by) == ("approved", staff)
    assert case.decided_at is not None
    assert [message.to for message in mail.outbox] == [["owner@example.com"]]
    assert job.public_id in mail.outbox[0].body


def test_approval_tells_the_jobs_webhook_it_completed(client, flagged_model):
    organization, key = customer(credits=10)
    WebhookEndpointFactory(organization=organization)
    job = flagged_job(client, key, flagged_model)
    moderation_cases.approve_case(case=job.moderation_case, staff=UserFactory(is_staff=True))
    types = list(
        Event.objects.filter(job_id=job.pk).order_by("sequence").values_list("type", flat=True)
    )
    assert types[-2:] == ["job.failed", "job.completed"]


def test_a_case_is_decided_once(client, flagged_model):
    _, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    staff = UserFactory(is_staff=True)
    moderation_cases.reject_case(case=job.moderation_case, staff=staff)
    with pytest.raises(moderation_cases.CaseAlreadyDecided):
        moderation_cases.approve_case(case=job.moderation_case, staff=staff)
    assert not job.images.filter(quarantined=False).exists()


def test_third_rejection_in_30_days_suspends_the_organization(client, flagged_model):
    organization, key = customer(credits=10)
    staff = UserFactory(is_staff=True)
    for _ in range(2):
        job = flagged_job(client, key, flagged_model)
        moderation_cases.reject_case(case=job.moderation_case, staff=staff)
    assert client.get("/v1/models", **headers(key)).status_code == 200
    job = flagged_job(client, key, flagged_model)
    moderation_cases.reject_case(case=job.moderation_case, staff=staff)
    response = client.get("/v1/models", **headers(key))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    assert balance(organization) == 10


def test_rejections_older_than_30_days_do_not_count(client, flagged_model):
    organization, key = customer(credits=10)
    staff = UserFactory(is_staff=True)
    for _ in range(2):
        job = flagged_job(client, key, flagged_model)
        moderation_cases.reject_case(case=job.moderation_case, staff=staff)
    ModerationCase.objects.update(decided_at=timezone.now() - timedelta(days=31))
    job = flagged_job(client, key, flagged_model)
    moderation_cases.reject_case(case=job.moderation_case, staff=staff)
    organization.refresh_from_db()
    assert not organization.is_suspended


def test_unsuspending_restores_the_keys(client):
    organization, key = customer(credits=10)
    accounts.suspend_organization(organization=organization)
    assert client.get("/v1/models", **headers(key)).status_code == 403
    accounts.unsuspend_organization(organization=organization)
    assert client.get("/v1/models", **headers(key)).status_code == 200


# --- With a real worker ----------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
@pytest.mark.parametrize("path", ["/v1/text-to-image", "/v1/images/generations"])
def test_waiting_request_for_a_flagged_image_answers_content_moderated(client, flagged_model, path):
    organization, key = customer(credits=10)
    response = client.post(
        path,
        {"prompt": "a clay sculpture", "model": flagged_model.id},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_moderated"
    assert balance(organization) == 10
    assert ModerationCase.objects.filter(organization=organization, status="pending").exists()

"""The moderation review queue: thumbnails for staff only, approve and reject from the admin."""

import pytest
from django.core import mail
from django.urls import reverse

from generation import tasks
from generation.models import Job, ModerationCase
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


def flagged_job(client, key, model) -> Job:
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a clay sculpture", "model": model.id},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    job = Job.objects.get(public_id=response.json()["id"])
    tasks.run_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    return job


def decide_url(case: ModerationCase, decision: str) -> str:
    return reverse("admin:generation_moderationcase_decide", args=[case.pk, decision])


def thumbnail_url(job: Job) -> str:
    return reverse("admin:generation_job_image", args=[job.images.get().pk])


def test_staff_see_the_quarantined_thumbnail(staff_client, flagged_model):
    _, key = customer(credits=10)
    job = flagged_job(staff_client, key, flagged_model)
    response = staff_client.get(thumbnail_url(job))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_thumbnail_is_refused_to_a_customer(client, flagged_model):
    organization, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    member = UserFactory()
    MembershipFactory(organization=organization, user=member)
    client.force_login(member)
    response = client.get(thumbnail_url(job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_thumbnail_is_refused_to_a_visitor(client, flagged_model):
    _, key = customer(credits=10)
    job = flagged_job(client, key, flagged_model)
    client.logout()
    assert client.get(thumbnail_url(job)).status_code == 302


def test_queue_lists_pending_cases_first(staff_client, staff, flagged_model):
    _, key = customer(credits=20)
    decided = flagged_job(staff_client, key, flagged_model).moderation_case
    pending = flagged_job(staff_client, key, flagged_model).moderation_case
    staff_client.post(
        reverse("admin:generation_moderationcase_decide", args=[decided.pk, "reject"])
    )
    page = staff_client.get(reverse("admin:generation_moderationcase_changelist"))
    assert [case.pk for case in page.context["cl"].result_list] == [pending.pk, decided.pk]
    assert thumbnail_url(pending.job) in page.content.decode()


def test_case_page_shows_prompt_organization_scores_and_thumbnails(staff_client, flagged_model):
    organization, key = customer(credits=10)
    job = flagged_job(staff_client, key, flagged_model)
    page = staff_client.get(
        reverse("admin:generation_moderationcase_change", args=[job.moderation_case.pk])
    )
    content = page.content.decode()
    assert page.status_code == 200
    assert "a clay sculpture" in content
    assert organization.name in content
    assert "BUTTOCKS_EXPOSED" in content
    assert thumbnail_url(job) in content


def test_asking_to_reject_only_confirms(staff_client, flagged_model):
    _, key = customer(credits=10)
    case = flagged_job(staff_client, key, flagged_model).moderation_case
    url = reverse("admin:generation_moderationcase_decide", args=[case.pk, "reject"])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b"Yes, reject" in page.content
    case.refresh_from_db()
    assert case.status == "pending"


def test_approving_from_the_admin_releases_the_images(
    staff_client, staff, flagged_model, django_capture_on_commit_callbacks
):
    organization, key = customer(credits=10)
    MembershipFactory(organization=organization, user=UserFactory(email="owner@example.com"))
    case = flagged_job(staff_client, key, flagged_model).moderation_case
    url = reverse("admin:generation_moderationcase_decide", args=[case.pk, "approve"])
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.post(url).status_code == 302
    case.refresh_from_db()
    assert (case.status, case.decided_by) == ("approved", staff)
    read = staff_client.get(f"/v1/jobs/{case.job.public_id}", **headers(key)).json()
    assert read["status"] == "completed"
    assert len(read["images"]) == 1
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert mail.outbox[0].to == ["owner@example.com"]


def test_three_rejections_from_the_admin_suspend_the_organization(
    staff_client, staff, flagged_model
):
    _, key = customer(credits=10)
    for _ in range(3):
        case = flagged_job(staff_client, key, flagged_model).moderation_case
        staff_client.post(
            reverse("admin:generation_moderationcase_decide", args=[case.pk, "reject"])
        )
    assert set(ModerationCase.objects.values_list("status", "decided_by")) == {
        ("rejected", staff.pk)
    }
    response = staff_client.get("/v1/models", **headers(key))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")

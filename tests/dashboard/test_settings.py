import pytest

from accounts.models import Organization
from tests.accounts.factories import MembershipFactory, PlanFactory
from tests.accounts.pages import logged_in, page_messages

pytestmark = pytest.mark.django_db


def settings_form(**overrides) -> dict:
    return {
        "name": "Renamed Co",
        "billing_email": "Accounts@Example.com",
        "low_credit_threshold": 50,
        "output_retention_days": 3,
        **overrides,
    }


def owner_on_plan(role="owner", retention=7):
    plan = PlanFactory(slug="pro")
    plan.output_retention_days = retention
    plan.save(update_fields=["output_retention_days"])
    return MembershipFactory(role=role, organization__plan=plan)


def test_settings_page_labels_its_fields_with_current_values(client):
    owner = owner_on_plan()
    content = logged_in(client, owner).get("/settings/").content.decode()
    for field in ("name", "billing_email", "low_credit_threshold", "output_retention_days"):
        assert f'<label for="id_{field}"' in content
    assert f'value="{owner.organization.name}"' in content
    assert "at most 7 days" in content


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_change_the_settings(client, role):
    membership = owner_on_plan(role=role)
    response = logged_in(client, membership).post("/settings/", settings_form())
    assert response.status_code == 302
    organization = Organization.objects.get(pk=membership.organization.pk)
    assert organization.name == "Renamed Co"
    assert organization.billing_email == "accounts@example.com"
    assert organization.low_credit_threshold == 50
    assert organization.output_retention_days == 3
    assert page_messages(response) == ["Settings saved."]


def test_a_member_cannot_change_the_settings(client):
    member = owner_on_plan(role="member")
    logged_in(client, member)
    assert "Only owners and admins" in client.get("/settings/").content.decode()
    response = client.post("/settings/", settings_form())
    organization = Organization.objects.get(pk=member.organization.pk)
    assert organization.name != "Renamed Co"
    assert page_messages(response) == [
        "Only owners and admins can change the organization's settings."
    ]


def test_retention_beyond_the_plans_maximum_is_refused(client):
    owner = owner_on_plan(retention=7)
    response = logged_in(client, owner).post("/settings/", settings_form(output_retention_days=30))
    assert response.status_code == 400
    assert "at most 7 days" in response.content.decode()
    assert Organization.objects.get(pk=owner.organization.pk).output_retention_days == 7


@pytest.mark.parametrize("threshold", ["2147483648", "99999999999999999999"])
def test_a_threshold_beyond_what_the_database_holds_is_a_form_error(client, threshold):
    owner = owner_on_plan()
    response = logged_in(client, owner).post(
        "/settings/", settings_form(low_credit_threshold=threshold)
    )
    assert response.status_code == 400
    assert "less than or equal to 2147483647" in response.content.decode()
    assert Organization.objects.get(pk=owner.organization.pk).low_credit_threshold == 10


def test_a_new_job_is_kept_for_the_chosen_retention(client):
    from datetime import timedelta

    from django.utils import timezone

    from generation.models import Job
    from tests.billing.factories import give_credits

    owner = owner_on_plan(retention=7)
    give_credits(owner.organization, 10)
    logged_in(client, owner).post("/settings/", settings_form(output_retention_days=2))
    client.post(
        "/playground/",
        {
            "prompt": "a cat",
            "model": "imagen-v2",
            "size": "512x512",
            "steps": 10,
            "guidance_scale": 7.5,
            "num_images": 1,
        },
    )
    job = Job.objects.get(organization=owner.organization)
    assert job.expires_at - timezone.now() < timedelta(days=2, minutes=1)

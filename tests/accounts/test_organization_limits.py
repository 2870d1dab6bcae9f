"""One person cannot multiply rate-limit windows and Free credits by creating organizations."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse

from accounts import services
from accounts.models import Organization
from billing import tasks
from tests.accounts.factories import UserFactory
from tests.accounts.pages import page_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_up(client):
    """A customer who signed up (their personal organization) and is logged in."""
    signed_up = services.sign_up(email="ada@example.com", password="a-long-passphrase-42")
    client.force_login(signed_up.user)
    return signed_up


def _create(client, name):
    return client.post("/organizations/new/", {"name": name})


def _balance(name) -> int:
    return Organization.objects.get(name=name).credit_balance


def test_a_person_owns_at_most_five_organizations(client, signed_up):
    for n in range(4):
        assert _create(client, f"Side {n}").status_code == 302
    refused = _create(client, "One too many")
    assert refused.status_code == 200
    assert "one person may own at most 5" in refused.content.decode()
    assert not Organization.objects.filter(name="One too many").exists()
    assert Organization.objects.filter(memberships__user=signed_up.user).count() == 5


def test_staff_lift_the_limit_for_one_person_in_the_admin(client, signed_up):
    for n in range(4):
        _create(client, f"Side {n}")
    user = signed_up.user
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    change_url = reverse("admin:accounts_user_change", args=[user.pk])
    saved = client.post(
        change_url,
        {
            "email": user.email,
            "full_name": "",
            "is_active": "on",
            "date_joined_0": f"{user.date_joined:%Y-%m-%d}",
            "date_joined_1": f"{user.date_joined:%H:%M:%S}",
            "max_organizations_override": "8",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.max_organizations_override == 8
    client.force_login(user)
    response = _create(client, "Sixth")
    assert response.status_code == 302
    assert "Organization “Sixth” created." in page_messages(response)


def test_a_persons_second_free_organization_gets_no_free_credits(client, signed_up):
    _create(client, "Side project")
    assert _balance("Side project") == 0
    # Past the first anniversary of both, when the monthly Free grant comes round.
    Organization.objects.update(created_at=F("created_at") - timedelta(days=40))
    tasks.grant_monthly_credits()
    assert _balance("Side project") == 0


def test_a_persons_first_organization_gets_the_free_credits(client, signed_up):
    _create(client, "Side project")
    assert signed_up.organization.credit_balance == 50
    Organization.objects.update(created_at=F("created_at") - timedelta(days=70))
    tasks.grant_monthly_credits()
    assert _balance(signed_up.organization.name) == 100

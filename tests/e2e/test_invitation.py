"""An invitation accepted in a real browser by someone who has no account yet."""

import shutil

import pytest

from accounts import services
from accounts.models import Invitation, Membership
from tests.accounts.factories import MembershipFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


def test_a_new_user_accepting_an_invitation_ends_up_in_exactly_that_organization(page, live_server):
    owner = MembershipFactory(organization__name="Acme")
    invitation = Invitation.objects.create(
        organization=owner.organization, email="lin@example.com", invited_by=owner.user
    )
    page.goto(f"{live_server.url}/invitations/{services.invitation_token(invitation)}/")

    page.click("text=Sign up to accept")
    assert page.input_value("#id_email") == "lin@example.com"
    page.fill("#id_password", "a-long-passphrase-42")
    page.click("button:has-text('Sign up')")

    page.wait_for_selector("text=Welcome to Acme!")
    memberships = Membership.objects.filter(user__email="lin@example.com")
    assert [m.organization.name for m in memberships] == ["Acme"]

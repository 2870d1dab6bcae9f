"""Invitations cannot be used to relay spam or phishing through Imagen's mail."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F

from accounts.models import Invitation
from tests.accounts.factories import MembershipFactory
from tests.accounts.pages import logged_in

pytestmark = pytest.mark.django_db

PHISHING_NAME = "URGENT: verify your account at https://evil.example/login right now"


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks):
    def invite(owner, email):
        logged_in(client, owner)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/team/invite/", {"email": email, "role": "member"})

    return invite


def _age_invitations(**delta):
    Invitation.objects.update(created_at=F("created_at") - timedelta(**delta))


def test_an_organization_sends_at_most_twenty_invitations_an_hour(invite):
    owner = MembershipFactory()
    responses = [invite(owner, f"person{n}@example.com") for n in range(25)]
    assert len(mail.outbox) == 20
    refused = responses[20]
    assert refused.status_code == 429
    assert "20 invitations in the last hour" in refused.content.decode()
    assert Invitation.objects.count() == 20


def test_an_organization_can_invite_again_an_hour_later(invite):
    owner = MembershipFactory()
    for n in range(20):
        invite(owner, f"person{n}@example.com")
    _age_invitations(minutes=61)
    assert invite(owner, "late@example.com").status_code == 302
    assert len(mail.outbox) == 21


def test_an_address_receives_at_most_three_invitations_a_day(invite):
    responses = [invite(MembershipFactory(), "victim@example.com") for _ in range(5)]
    assert len(mail.outbox) == 3
    assert responses[3].status_code == 429
    assert "cannot be invited again today" in responses[3].content.decode()


def test_inviting_again_within_ten_minutes_sends_no_second_email(invite):
    owner = MembershipFactory()
    invite(owner, "lin@example.com")
    again = invite(owner, "lin@example.com")
    assert len(mail.outbox) == 1
    assert "An invitation was sent to lin@example.com recently" in again.content.decode()
    assert Invitation.objects.filter(revoked_at=None).count() == 1


def test_inviting_again_after_the_cool_down_sends_a_fresh_link(invite):
    owner = MembershipFactory()
    invite(owner, "lin@example.com")
    _age_invitations(minutes=11)
    invite(owner, "lin@example.com")
    assert len(mail.outbox) == 2


def test_the_invitation_subject_names_no_organization(invite):
    owner = MembershipFactory(organization__name=PHISHING_NAME)
    invite(owner, "lin@example.com")
    assert mail.outbox[0].subject == "You have been invited to join an organization on Imagen"


def test_the_invitation_body_quotes_a_shortened_name(invite):
    owner = MembershipFactory(organization__name=PHISHING_NAME)
    invite(owner, "lin@example.com")
    email = mail.outbox[0]
    for body in (email.body, email.alternatives[0][0]):
        assert "“URGENT: verify your account at" in body
        assert "right now" not in body


@pytest.mark.parametrize("name", ["https://evil.example/login", "Pay at evil.example today"])
def test_a_web_address_in_the_name_is_never_a_link(invite, name):
    owner = MembershipFactory(organization__name=name)
    invite(owner, "lin@example.com")
    email = mail.outbox[0]
    html = email.alternatives[0][0]
    for body in (email.body, html):
        assert "evil.example" not in body
        assert "https://evil" not in body
    assert all(
        link.startswith("http://testserver/invitations/")
        for link in re.findall(r'href="([^"]*)"', html)
    )

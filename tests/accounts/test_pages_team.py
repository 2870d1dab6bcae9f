import html
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.middleware import SESSION_KEY
from accounts.models import Invitation, Membership
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.accounts.pages import link_in, logged_in, member_of, page_messages

pytestmark = pytest.mark.django_db

Role = Membership.Role


@pytest.fixture
def owner():
    return MembershipFactory(organization__name="Acme")


def _invite(client, django_capture_on_commit_callbacks, email, role="member"):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/team/invite/", {"email": email, "role": role})


def test_team_page_lists_members_and_pending_invitations(client, owner):
    colleague = member_of(owner.organization, email="lin@example.com")
    Invitation.objects.create(organization=owner.organization, email="new@example.com")
    content = logged_in(client, owner).get("/team/").content.decode()
    assert colleague.user.email in content
    assert "new@example.com" in content
    assert '<label for="id_email"' in content


def test_invitation_email_link_lets_the_invitee_join(
    client, owner, django_capture_on_commit_callbacks
):
    logged_in(client, owner)
    response = _invite(client, django_capture_on_commit_callbacks, "Lin@Example.com", "admin")
    assert response.status_code == 302
    assert "Invitation sent to lin@example.com." in page_messages(response)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["lin@example.com"]
    assert "“Acme”" in email.body
    accept_path = link_in(email, "/invitations/")

    invitee = UserFactory(email="lin@example.com")
    client.force_login(invitee)
    assert "Join Acme" in client.get(accept_path).content.decode()
    joined = client.post(accept_path)
    assert joined.status_code == 302
    assert "Welcome to Acme!" in page_messages(joined)
    membership = Membership.objects.get(user=invitee, organization=owner.organization)
    assert membership.role == Role.ADMIN
    assert client.session[SESSION_KEY] == owner.organization.pk
    assert Invitation.objects.get().accepted_at is not None


def _sign_up_link(client, owner, django_capture_on_commit_callbacks, email):
    logged_in(client, owner)
    _invite(client, django_capture_on_commit_callbacks, email)
    accept_path = link_in(mail.outbox[0], "/invitations/")
    client.logout()
    page = client.get(accept_path).content.decode()
    assert "Sign up to accept" in page
    return link_in_page(page, "/signup/?invitation=")


def link_in_page(page: str, prefix: str) -> str:
    start = page.index(f'href="{prefix}') + len('href="')
    return html.unescape(page[start : page.index('"', start)])


def test_invitee_signing_up_joins_in_one_step_and_belongs_to_one_organization(
    client, owner, django_capture_on_commit_callbacks
):
    sign_up_path = _sign_up_link(
        client, owner, django_capture_on_commit_callbacks, "new@example.com"
    )
    form = client.get(sign_up_path).content.decode()
    assert "join <strong>Acme</strong>" in form
    token = parse_qs(urlsplit(sign_up_path).query)["invitation"][0]

    signed_up = client.post(
        "/signup/",
        {"email": "new@example.com", "password": "a-long-passphrase-42", "invitation": token},
    )

    assert signed_up.status_code == 302
    assert "Welcome to Acme!" in page_messages(signed_up)
    memberships = Membership.objects.filter(user__email="new@example.com")
    assert [(m.organization, m.role) for m in memberships] == [(owner.organization, Role.MEMBER)]
    assert client.session[SESSION_KEY] == owner.organization.pk
    assert Invitation.objects.get().accepted_at is not None


def test_invitee_signing_up_with_another_email_is_refused_and_nothing_is_created(
    client, owner, django_capture_on_commit_callbacks
):
    sign_up_path = _sign_up_link(
        client, owner, django_capture_on_commit_callbacks, "new@example.com"
    )
    token = parse_qs(urlsplit(sign_up_path).query)["invitation"][0]

    response = client.post(
        "/signup/",
        {"email": "eve@example.com", "password": "a-long-passphrase-42", "invitation": token},
    )

    assert response.status_code == 200
    assert "This invitation was sent to new@example.com" in response.content.decode()
    assert not Membership.objects.filter(user__email="eve@example.com").exists()
    assert Invitation.objects.get().accepted_at is None


def test_sign_up_with_a_tampered_invitation_is_refused(client):
    response = client.get("/signup/?invitation=1:forged")
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_invitation_cannot_be_accepted_by_someone_else(
    client, owner, django_capture_on_commit_callbacks
):
    logged_in(client, owner)
    _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    accept_path = link_in(mail.outbox[0], "/invitations/")
    stranger = UserFactory(email="eve@example.com")
    client.force_login(stranger)
    response = client.post(accept_path)
    assert any("was sent to lin@example.com" in text for text in page_messages(response))
    assert not Membership.objects.filter(user=stranger, organization=owner.organization).exists()


def test_invitation_link_is_refused_when_tampered(
    client, owner, django_capture_on_commit_callbacks
):
    logged_in(client, owner)
    _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    accept_path = link_in(mail.outbox[0], "/invitations/")
    _, rest = accept_path.removeprefix("/invitations/").split(":", 1)
    other = Invitation.objects.create(organization=owner.organization, email="eve@example.com")
    forged = f"/invitations/{other.pk}:{rest}"
    client.force_login(UserFactory(email="eve@example.com"))
    response = client.get(forged)
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert client.post(forged).status_code == 400
    assert not Membership.objects.filter(user__email="eve@example.com").exists()


def test_invitation_link_is_refused_after_seven_days(client, owner, monkeypatch):
    invitation = Invitation.objects.create(organization=owner.organization, email="lin@example.com")
    eight_days_ago = time.time() - 8 * 24 * 3600
    with monkeypatch.context() as patched:
        patched.setattr("django.core.signing.time.time", lambda: eight_days_ago)
        old_token = services.invitation_token(invitation)
    client.force_login(UserFactory(email="lin@example.com"))
    response = client.post(f"/invitations/{old_token}/")
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user__email="lin@example.com").exists()


def test_withdrawn_invitation_link_stops_working(client, owner, django_capture_on_commit_callbacks):
    logged_in(client, owner)
    _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    accept_path = link_in(mail.outbox[0], "/invitations/")
    invitation = Invitation.objects.get()
    response = client.post(f"/team/invitations/{invitation.pk}/revoke/")
    assert "The invitation to lin@example.com is withdrawn." in page_messages(response)
    client.force_login(UserFactory(email="lin@example.com"))
    assert client.get(accept_path).status_code == 400


def test_inviting_again_replaces_the_earlier_link(
    client, owner, django_capture_on_commit_callbacks
):
    logged_in(client, owner)
    _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    # Past the cool-down in which an invitation is not sent again.
    Invitation.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    first, second = (link_in(email, "/invitations/") for email in mail.outbox)
    client.force_login(UserFactory(email="lin@example.com"))
    assert client.get(first).status_code == 400
    assert client.get(second).status_code == 200


def test_existing_member_is_not_invited(client, owner, django_capture_on_commit_callbacks):
    member_of(owner.organization, email="lin@example.com")
    logged_in(client, owner)
    response = _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    assert response.status_code == 200
    assert "lin@example.com is already a member of Acme." in response.content.decode()
    assert mail.outbox == []


def test_members_cannot_invite(client, owner, django_capture_on_commit_callbacks):
    member = member_of(owner.organization)
    logged_in(client, member)
    assert "Invite someone" not in client.get("/team/").content.decode()
    response = _invite(client, django_capture_on_commit_callbacks, "lin@example.com")
    assert "Only owners and admins can manage the team." in page_messages(response)
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_admins_cannot_invite_owners(client, owner, django_capture_on_commit_callbacks):
    logged_in(client, member_of(owner.organization, role=Role.ADMIN))
    response = _invite(client, django_capture_on_commit_callbacks, "lin@example.com", "owner")
    assert "Only owners can invite owners." in page_messages(response)
    assert not Invitation.objects.exists()


def test_owner_changes_a_members_role(client, owner):
    member = member_of(owner.organization)
    response = logged_in(client, owner).post(f"/team/members/{member.pk}/role/", {"role": "admin"})
    assert response.status_code == 302
    assert f"{member.user.email} is now admin." in page_messages(response)
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_members_cannot_change_roles(client, owner):
    member = member_of(owner.organization)
    other = member_of(owner.organization)
    response = logged_in(client, member).post(f"/team/members/{other.pk}/role/", {"role": "owner"})
    assert "Only owners and admins can manage the team." in page_messages(response)
    other.refresh_from_db()
    assert other.role == Role.MEMBER


def test_admins_cannot_touch_owners(client, owner):
    admin = member_of(owner.organization, role=Role.ADMIN)
    logged_in(client, admin)
    demote = client.post(f"/team/members/{owner.pk}/role/", {"role": "member"})
    assert "Only owners can grant or remove the owner role." in page_messages(demote)
    promote = client.post(f"/team/members/{admin.pk}/role/", {"role": "owner"})
    assert "Only owners can grant or remove the owner role." in page_messages(promote)
    remove = client.post(f"/team/members/{owner.pk}/remove/")
    assert "Only owners can remove an owner." in page_messages(remove)
    assert Membership.objects.filter(organization=owner.organization, role=Role.OWNER).count() == 1


def test_last_owner_cannot_be_demoted(client, owner):
    response = logged_in(client, owner).post(f"/team/members/{owner.pk}/role/", {"role": "admin"})
    assert any("needs an owner" in text for text in page_messages(response))
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_last_owner_cannot_leave(client, owner):
    logged_in(client, owner)
    assert "Leave Acme?" in client.get(f"/team/members/{owner.pk}/remove/").content.decode()
    response = client.post(f"/team/members/{owner.pk}/remove/")
    assert any("needs an owner" in text for text in page_messages(response))
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_owner_can_step_down_once_there_is_another_owner(client, owner):
    second_owner = member_of(owner.organization, role=Role.OWNER)
    response = logged_in(client, owner).post(f"/team/members/{owner.pk}/role/", {"role": "member"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.role == Role.MEMBER
    demote_last = logged_in(client, second_owner).post(
        f"/team/members/{second_owner.pk}/role/", {"role": "admin"}
    )
    assert any("needs an owner" in text for text in page_messages(demote_last))


def test_owner_removes_a_member(client, owner):
    member = member_of(owner.organization)
    response = logged_in(client, owner).post(f"/team/members/{member.pk}/remove/")
    assert f"{member.user.email} was removed from Acme." in page_messages(response)
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_members_cannot_remove_others_but_can_leave(client, owner):
    member = member_of(owner.organization)
    other = member_of(owner.organization)
    logged_in(client, member)
    refused = client.post(f"/team/members/{other.pk}/remove/")
    assert "Only owners and admins can manage the team." in page_messages(refused)
    assert Membership.objects.filter(pk=other.pk).exists()
    left = client.post(f"/team/members/{member.pk}/remove/")
    assert "You left Acme." in page_messages(left)
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_members_cannot_withdraw_invitations(client, owner):
    invitation = Invitation.objects.create(organization=owner.organization, email="x@example.com")
    response = logged_in(client, member_of(owner.organization)).post(
        f"/team/invitations/{invitation.pk}/revoke/"
    )
    assert "Only owners and admins can manage the team." in page_messages(response)
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_another_organizations_members_and_invitations_are_404(client, owner):
    other_owner = MembershipFactory()
    other_member = member_of(other_owner.organization, email="their-member@example.com")
    other_invitation = Invitation.objects.create(
        organization=other_owner.organization, email="their-invitee@example.com"
    )
    logged_in(client, owner)
    for membership in (other_owner, other_member):
        role_url = f"/team/members/{membership.pk}/role/"
        assert client.post(role_url, {"role": "member"}).status_code == 404
        assert client.get(f"/team/members/{membership.pk}/remove/").status_code == 404
        assert client.post(f"/team/members/{membership.pk}/remove/").status_code == 404
    assert client.post(f"/team/invitations/{other_invitation.pk}/revoke/").status_code == 404
    other_member.refresh_from_db()
    other_invitation.refresh_from_db()
    assert other_member.role == Role.MEMBER
    assert other_invitation.revoked_at is None
    team_page = client.get("/team/").content.decode()
    assert "their-member@example.com" not in team_page
    assert "their-invitee@example.com" not in team_page

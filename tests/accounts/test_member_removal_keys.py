"""Someone who is removed or leaves takes their API keys with them, unless they are kept."""

import pytest

from accounts import services
from accounts.models import ApiKey
from tests.accounts.factories import MembershipFactory, auth_header
from tests.accounts.pages import logged_in, member_of, page_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return MembershipFactory(organization__name="Acme")


def _keys_of(membership, count=1) -> list[str]:
    return [
        services.create_api_key(
            organization=membership.organization, name=f"k{n}", created_by=membership.user
        ).secret
        for n in range(count)
    ]


def _status(client, secret) -> int:
    return client.get("/v1/account", **auth_header(secret)).status_code


def test_the_remove_page_says_how_many_keys_will_be_revoked(client, owner):
    member = member_of(owner.organization)
    _keys_of(member, 2)
    content = logged_in(client, owner).get(f"/team/members/{member.pk}/remove/").content.decode()
    assert "Their 2 API keys will be revoked" in content
    assert 'name="keep_keys"' in content


def test_a_removed_members_keys_are_refused_on_the_next_call(client, owner):
    member = member_of(owner.organization)
    [secret] = _keys_of(member)
    assert _status(client, secret) == 200
    response = logged_in(client, owner).post(f"/team/members/{member.pk}/remove/")
    assert f"{member.user.email} was removed from Acme; their 1 API key was revoked." in (
        page_messages(response)
    )
    assert _status(client, secret) == 401


@pytest.mark.redis
def test_a_remembered_key_of_a_removed_member_is_refused_at_once(client, owner):
    member = member_of(owner.organization)
    [secret] = _keys_of(member)
    for _ in range(2):
        assert _status(client, secret) == 200
    services.remove_member(organization=owner.organization, actor=owner.user, membership=member)
    assert _status(client, secret) == 401


def test_a_member_who_leaves_loses_their_keys(client, owner):
    member = member_of(owner.organization)
    [secret] = _keys_of(member)
    logged_in(client, member)
    assert "Your 1 API key will be revoked" in (
        client.get(f"/team/members/{member.pk}/remove/").content.decode()
    )
    response = client.post(f"/team/members/{member.pk}/remove/")
    assert "You left Acme; your 1 API key was revoked." in page_messages(response)
    assert _status(client, secret) == 401


def test_keeping_the_keys_passes_them_to_the_remover_and_they_keep_working(client, owner):
    member = member_of(owner.organization)
    [secret] = _keys_of(member)
    response = logged_in(client, owner).post(
        f"/team/members/{member.pk}/remove/", {"keep_keys": "on"}
    )
    assert f"{member.user.email} was removed from Acme; their 1 API key is now yours." in (
        page_messages(response)
    )
    assert _status(client, secret) == 200
    assert ApiKey.objects.get().created_by == owner.user


def test_other_peoples_keys_are_untouched(client, owner):
    member = member_of(owner.organization)
    [theirs] = _keys_of(owner)
    services.remove_member(organization=owner.organization, actor=owner.user, membership=member)
    assert _status(client, theirs) == 200

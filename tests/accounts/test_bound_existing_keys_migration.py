"""Keys made before the role bound existed are brought within it by migration 0003."""

import importlib

import pytest
from django.apps import apps

from accounts.models import ApiKey
from tests.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts.migrations.0005_bound_existing_api_keys")


def _old_key(organization, user, prefix) -> ApiKey:
    return ApiKey.objects.create(
        organization=organization,
        name=prefix,
        prefix=prefix,
        secret_hash="0" * 64,
        scopes=["generate", "read", "webhooks"],
        created_by=user,
    )


def test_members_keys_lose_the_webhooks_scope_and_departed_creators_keys_are_revoked():
    organization = OrganizationFactory()
    member = MembershipFactory(organization=organization, role="member")
    admin = MembershipFactory(organization=organization, role="admin")
    members_key = _old_key(organization, member.user, "member00")
    admins_key = _old_key(organization, admin.user, "admin000")
    departed_key = _old_key(organization, UserFactory(), "gone0000")

    migration.bound_existing_api_keys(apps, None)

    members_key.refresh_from_db()
    admins_key.refresh_from_db()
    departed_key.refresh_from_db()
    assert members_key.scopes == ["generate", "read"]
    assert admins_key.scopes == ["generate", "read", "webhooks"]
    assert admins_key.revoked_at is None
    assert departed_key.revoked_at is not None

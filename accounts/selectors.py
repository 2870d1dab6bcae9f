"""Reads of account data, always scoped to an organization or a user."""

from accounts.models import ApiKey, Invitation, Membership, Organization, User


def organizations_for_user(*, user: User):
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user: User, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def api_keys(*, organization: Organization):
    return ApiKey.objects.filter(organization=organization).order_by("-created_at")


def unrevoked_api_keys_created_by(*, organization: Organization, user: User):
    return api_keys(organization=organization).filter(created_by=user, revoked_at=None)


def api_key(*, organization: Organization, key_id: int) -> ApiKey:
    return ApiKey.objects.get(organization=organization, pk=key_id)


def api_key_by_public_id(*, organization: Organization, public_id: str) -> ApiKey | None:
    """The organization's key whose id (its prefix, `sk_live_<id>_…`) is `public_id`;
    None when there is none, or it is another organization's."""
    return ApiKey.objects.filter(organization=organization, prefix=public_id).first()


def members(*, organization: Organization):
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("created_at")
    )


def pending_invitations(*, organization: Organization):
    return Invitation.objects.filter(
        organization=organization, accepted_at=None, revoked_at=None
    ).order_by("-created_at")


def invitations(*, organization: Organization):
    return Invitation.objects.filter(organization=organization)


def owner_emails(*, organization: Organization) -> list[str]:
    """The email addresses of the organization's owners."""
    return list(
        Membership.objects.filter(
            organization=organization, role=Membership.Role.OWNER
        ).values_list("user__email", flat=True)
    )

"""Every write to users, organizations, memberships, invitations and API keys."""

import base64
import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.text import Truncator, slugify

from accounts import api_key_cache
from accounts.errors import (
    AlreadyMember,
    EmailAlreadyRegistered,
    InvalidApiKey,
    InvalidInvitation,
    InvalidSettings,
    InvitationSentRecently,
    LastOwner,
    NotAllowed,
    OrganizationLimitReached,
    ScopeNotAllowed,
    SuspendedOrganization,
    TooManyInvitations,
)
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.signals import organization_created
from accounts.suspension import ensure_active
from billing.models import Plan

API_KEY_PREFIX = "sk_live_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_RESOLUTION = timedelta(minutes=1)


def new_webhook_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def create_organization(
    *, name: str, owner: User, plan: Plan | None = None, billing_email: str = ""
) -> Organization:
    """Create an organization with `owner` as its owner, on `plan` (Free by default).

    A person owns at most MAX_ORGANIZATIONS_PER_USER organizations, or the number staff set
    for them, else OrganizationLimitReached: each organization has its own rate-limit
    windows. The first one a person creates is their personal organization, the only one
    that receives the Free plan's included credits.
    """
    return _create_organization(
        name=name, owner=owner, plan=plan, billing_email=billing_email, signed_up=False
    )


@transaction.atomic
def _create_organization(
    *, name: str, owner: User, plan: Plan | None, billing_email: str, signed_up: bool
) -> Organization:
    # The person's row lock serializes their concurrent creations, so neither the limit nor
    # the one personal organization can be overrun by a double submit.
    locked = User.objects.select_for_update().only("max_organizations_override").get(pk=owner.pk)
    limit = locked.max_organizations_override
    if limit is None:
        limit = settings.MAX_ORGANIZATIONS_PER_USER
    owned = Membership.objects.filter(user=owner, role=Membership.Role.OWNER).count()
    if owned >= limit:
        raise OrganizationLimitReached(
            f"You already own {owned} organizations; one person may own at most {limit}."
        )
    organization = Organization.objects.create(
        name=name,
        slug=_unique_slug(name),
        plan=plan or Plan.objects.default(),
        billing_email=billing_email or owner.email,
        webhook_signing_secret=new_webhook_signing_secret(),
        personal_of=None if Organization.objects.filter(personal_of=owner).exists() else owner,
    )
    Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    organization_created.send(
        sender=Organization, organization=organization, owner=owner, signed_up=signed_up
    )
    return organization


@dataclass
class SignUp:
    user: User
    organization: Organization


@transaction.atomic
def sign_up(
    *, email: str, password: str, full_name: str = "", invitation_token: str | None = None
) -> SignUp:
    """Create a user and their personal organization, of which they are the owner.

    Signing up through an invitation joins its organization instead: someone who came to
    work in a team gets no organization of their own (nor its sign-up credits) unasked.
    """
    email = User.objects.normalize_email(email).lower()
    if invitation_token is not None:
        invitation = invitation_from_token(invitation_token)
        if invitation.email.lower() != email:
            raise NotAllowed(f"This invitation was sent to {invitation.email}; sign up with it.")
    if User.objects.filter(email__iexact=email).exists():
        raise EmailAlreadyRegistered(email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
    except IntegrityError as exc:
        raise EmailAlreadyRegistered(email) from exc
    if invitation_token is not None:
        membership = accept_invitation(token=invitation_token, user=user)
        return SignUp(user=user, organization=membership.organization)
    # Sign-up credits are billing's reaction to organization_created.
    organization = _create_organization(
        name=_personal_org_name(user), owner=user, plan=None, billing_email="", signed_up=True
    )
    return SignUp(user=user, organization=organization)


def _personal_org_name(user: User) -> str:
    return f"{user.full_name or user.email.split('@')[0]}'s organization"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class NewApiKey:
    api_key: ApiKey
    secret: str  # the full key, shown once and never stored


# A key may do no more than its creator may do on the pages, where members neither manage
# webhook endpoints nor see signing secrets.
SCOPES_BY_ROLE = {
    Membership.Role.OWNER: tuple(ApiKey.Scope.values),
    Membership.Role.ADMIN: tuple(ApiKey.Scope.values),
    Membership.Role.MEMBER: (ApiKey.Scope.GENERATE, ApiKey.Scope.READ),
}


def _creator_role(*, organization: Organization, user: User) -> str:
    # Locked, so that a demotion or removal running at the same time either comes first
    # (and is seen here) or waits for this key and then bounds or revokes it too.
    role = (
        Membership.objects.select_for_update()
        .filter(organization=organization, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise NotAllowed(f"Only members of {organization.name} can create its API keys.")
    return role


def _refuse_scopes_above_role(*, role: str, scopes: list[str]) -> None:
    refused = [scope for scope in scopes if scope not in SCOPES_BY_ROLE[role]]
    if refused:
        names = " and ".join(refused)
        raise ScopeNotAllowed(
            f"{Membership.Role(role).label}s cannot give a key the {names} "
            f"scope{'s' if len(refused) > 1 else ''}; ask an owner or admin."
        )


@transaction.atomic
def create_api_key(
    *,
    organization: Organization,
    name: str,
    created_by: User | None = None,
    scopes: list[str] | None = None,
    expires_at=None,
) -> NewApiKey:
    """Create a key; the returned secret is the only copy there will ever be.

    A person's key carries at most their role's scopes (SCOPES_BY_ROLE), all of those when
    `scopes` is None; asking for more raises ScopeNotAllowed, and someone outside the
    organization gets NotAllowed. A key made by no one (provisioning) may carry every scope.
    A suspended organization gets no new key (SuspendedOrganization).
    """
    ensure_active(organization, refused="it cannot create API keys")
    if created_by is None:
        allowed = tuple(ApiKey.Scope.values)
    else:
        role = _creator_role(organization=organization, user=created_by)
        _refuse_scopes_above_role(role=role, scopes=scopes or [])
        allowed = SCOPES_BY_ROLE[role]
    secret = secrets.token_urlsafe(32)
    for _ in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    organization=organization,
                    name=name,
                    prefix=prefix,
                    secret_hash=_hash_secret(secret),
                    scopes=list(scopes if scopes is not None else allowed),
                    created_by=created_by,
                    expires_at=expires_at,
                )
            return NewApiKey(api_key=api_key, secret=f"{API_KEY_PREFIX}{prefix}_{secret}")
        except IntegrityError:
            continue
    raise RuntimeError("Could not find a free API key prefix")


def revoke_api_key(*, api_key: ApiKey, revoked_by: User | None = None) -> ApiKey:
    """Revoke `api_key`: the next request with it gets 401.

    A person (`revoked_by`) may revoke a key they created; owners and admins revoke any key.
    """
    if revoked_by is not None and api_key.created_by_id != revoked_by.pk:
        membership = Membership.objects.filter(
            organization_id=api_key.organization_id, user=revoked_by
        ).first()
        if membership is None or not membership.can_manage:
            raise NotAllowed("Only owners, admins and the person who created a key can revoke it.")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def suspend_organization(*, organization: Organization) -> Organization:
    """Suspend `organization`: every request with its keys gets 403 until it is unsuspended."""
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.SUSPENDED)
    api_key_cache.forget_all()
    organization.status = Organization.Status.SUSPENDED
    return organization


def unsuspend_organization(*, organization: Organization) -> Organization:
    """Lift a suspension: the organization's active keys work again at once."""
    Organization.objects.filter(pk=organization.pk).update(status=Organization.Status.ACTIVE)
    api_key_cache.forget_all()
    organization.status = Organization.Status.ACTIVE
    return organization


def _split_key(raw_key: str) -> tuple[str, str]:
    if not raw_key.startswith(API_KEY_PREFIX):
        raise InvalidApiKey
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or len(secret) < 32:
        raise InvalidApiKey
    return prefix, secret


def authenticate_api_key(raw_key: str, *, confirm: bool = True) -> ApiKey:
    """Return the active key for `raw_key` with its organization and plan loaded.

    One indexed query on the prefix, or none while this process remembers the key
    (accounts/api_key_cache.py), and a constant-time compare of the secret's hash.
    With `confirm=False` a remembered key is returned on trust: the caller confirms it
    (`api_key_cache.is_confirmed`), then calls `record_api_key_use`.
    """
    prefix, secret = _split_key(raw_key.strip())
    api_key = api_key_cache.load(prefix, _api_key_with_organization, confirm=confirm)
    if api_key is None or not constant_time_compare(api_key.secret_hash, _hash_secret(secret)):
        raise InvalidApiKey
    if not api_key.is_active:
        raise InvalidApiKey
    if api_key.organization.is_suspended:
        raise SuspendedOrganization
    if not api_key_cache.needs_confirmation(api_key):
        record_api_key_use(api_key)
    return api_key


def _api_key_with_organization(prefix: str) -> ApiKey | None:
    # The balance changes with every job: deferred, so whoever reads it gets it fresh.
    return (
        ApiKey.objects.select_related("organization__plan")
        .defer("organization__credit_balance")
        .filter(prefix=prefix)
        .first()
    )


def record_api_key_use(api_key: ApiKey) -> None:
    """Note that the key was used; at most one write a minute, so reads stay read-only."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        api_key_cache.remember_use(api_key)


# Team: invitations, roles and membership. Owners and admins manage the team; only owners
# touch owners; an organization always keeps at least one owner.

INVITATION_MAX_AGE = timedelta(days=7)
_INVITATION_SALT = "accounts.invitation"
# Invitations send email from our domain to any address a customer types: bounded so they
# cannot relay spam, and one address is not mailed again and again.
INVITATIONS_PER_ORGANIZATION_PER_HOUR = 20
INVITATIONS_PER_ADDRESS_PER_DAY = 3
INVITATION_RESEND_COOL_DOWN = timedelta(minutes=10)
# The organization's name is the customer's free text: it stays out of the subject, and the
# body shows it shortened and unclickable, so an invitation cannot pose as our own warning.
INVITATION_SUBJECT = "You have been invited to join an organization on Imagen"
INVITATION_NAME_LENGTH = 40


def _require_manager(*, organization: Organization, actor: User) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=actor).first()
    if membership is None or not membership.can_manage:
        raise NotAllowed("Only owners and admins can manage the team.")
    return membership


def _lock_owners(*, organization: Organization) -> list[Membership]:
    # Locking every owner row serializes concurrent demotions and removals, so two of them
    # can never together leave the organization without an owner.
    return list(
        Membership.objects.select_for_update().filter(
            organization=organization, role=Membership.Role.OWNER
        )
    )


def invitation_token(invitation: Invitation) -> str:
    return signing.TimestampSigner(salt=_INVITATION_SALT).sign(str(invitation.pk))


def invitation_url(invitation: Invitation) -> str:
    path = reverse("accounts:accept-invitation", args=[invitation_token(invitation)])
    return settings.SITE_URL.rstrip("/") + path


def _inert_text(text: str) -> str:
    # A zero-width space after each separator of an address keeps mail clients from
    # turning "evil.example/login" or "https://…" into a link; readers see the same text.
    return re.sub(r"([./@])", "\\1\u200b", text)


def _send_invitation_email(invitation_id: int) -> None:
    invitation = Invitation.objects.select_related("organization", "invited_by").get(
        pk=invitation_id
    )
    context = {
        "invitation": invitation,
        "organization_name": _inert_text(
            Truncator(invitation.organization.name).chars(INVITATION_NAME_LENGTH)
        ),
        "invited_by": invitation.invited_by,
        "accept_url": invitation_url(invitation),
        "expires_in_days": INVITATION_MAX_AGE.days,
    }
    message = EmailMultiAlternatives(
        subject=INVITATION_SUBJECT,
        body=render_to_string("emails/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    message.send()


@transaction.atomic
def invite_member(
    *,
    organization: Organization,
    invited_by: User,
    email: str,
    role: str = Membership.Role.MEMBER,
) -> Invitation:
    """Invite `email` into `organization` and email them a signed link valid for 7 days.

    Inviting an address that already has a pending invitation replaces it (a fresh link),
    unless the last one went out less than 10 minutes ago (InvitationSentRecently). An
    organization sends at most 20 invitations an hour and an address receives at most 3 a
    day from all organizations together (TooManyInvitations).
    """
    actor = _require_manager(organization=organization, actor=invited_by)
    if role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
        raise NotAllowed("Only owners can invite owners.")
    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise AlreadyMember(f"{email} is already a member of {organization.name}.")
    # Counted under the organization's row lock, so concurrent invitations cannot overrun it.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    now = timezone.now()
    _check_invitation_limits(organization=organization, email=email, now=now)
    Invitation.objects.filter(
        organization=organization, email__iexact=email, accepted_at=None, revoked_at=None
    ).update(revoked_at=now)
    invitation = Invitation.objects.create(
        organization=organization, email=email, role=role, invited_by=invited_by
    )
    transaction.on_commit(partial(_send_invitation_email, invitation.pk))
    return invitation


def _check_invitation_limits(*, organization: Organization, email: str, now: datetime) -> None:
    sent = Invitation.objects
    if sent.filter(
        organization=organization, email=email, created_at__gt=now - INVITATION_RESEND_COOL_DOWN
    ).exists():
        minutes = int(INVITATION_RESEND_COOL_DOWN.total_seconds() // 60)
        raise InvitationSentRecently(
            f"An invitation was sent to {email} recently: it can be sent again "
            f"{minutes} minutes after the last one."
        )
    if (
        sent.filter(organization=organization, created_at__gt=now - timedelta(hours=1)).count()
        >= INVITATIONS_PER_ORGANIZATION_PER_HOUR
    ):
        raise TooManyInvitations(
            f"This organization has sent {INVITATIONS_PER_ORGANIZATION_PER_HOUR} invitations "
            "in the last hour, the most allowed: try again later."
        )
    if (
        sent.filter(email=email, created_at__gt=now - timedelta(days=1)).count()
        >= INVITATIONS_PER_ADDRESS_PER_DAY
    ):
        raise TooManyInvitations(f"{email} cannot be invited again today: try again tomorrow.")


def invitation_from_token(token: str) -> Invitation:
    """The pending invitation a link names, or InvalidInvitation (tampered, expired, used)."""
    try:
        invitation_id = signing.TimestampSigner(salt=_INVITATION_SALT).unsign(
            token, max_age=INVITATION_MAX_AGE
        )
    except signing.SignatureExpired:
        raise InvalidInvitation(
            "This invitation link has expired. Ask for a new invitation."
        ) from None
    except signing.BadSignature:
        raise InvalidInvitation("This invitation link is not valid.") from None
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.revoked_at is not None:
        raise InvalidInvitation("This invitation was withdrawn. Ask for a new invitation.")
    if invitation.accepted_at is not None:
        raise InvalidInvitation("This invitation has already been accepted.")
    return invitation


@transaction.atomic
def accept_invitation(*, token: str, user: User) -> Membership:
    """Make `user` a member through the invitation `token` names, if it was sent to them."""
    invitation = invitation_from_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise InvalidInvitation("This invitation is no longer pending.")
    if invitation.email.lower() != user.email.lower():
        raise NotAllowed(
            f"This invitation was sent to {invitation.email}; you are signed in as {user.email}."
        )
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise AlreadyMember(f"You are already a member of {invitation.organization.name}.")
    membership = Membership.objects.create(
        organization=invitation.organization, user=user, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return membership


@transaction.atomic
def change_role(
    *, organization: Organization, actor: User, membership: Membership, role: str
) -> Membership:
    """Give `membership` another role; only owners grant or take away the owner role."""
    if membership.organization_id != organization.pk:
        raise NotAllowed("That person is not in this organization.")
    if role not in Membership.Role.values:
        raise NotAllowed(f"Unknown role {role!r}.")
    owners = _lock_owners(organization=organization)
    manager = _require_manager(organization=organization, actor=actor)
    membership.refresh_from_db(fields=["role"])
    touches_owner = Membership.Role.OWNER in (role, membership.role)
    if touches_owner and manager.role != Membership.Role.OWNER:
        raise NotAllowed("Only owners can grant or remove the owner role.")
    demotes_owner = membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER
    if demotes_owner and len(owners) == 1:
        raise LastOwner("An organization needs an owner: make someone else an owner first.")
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
        _bound_keys_to_role(organization=organization, user=membership.user, role=role)
    return membership


def _bound_keys_to_role(*, organization: Organization, user: User, role: str) -> None:
    """Take from the keys `user` created in `organization` every scope `role` lacks."""
    allowed = SCOPES_BY_ROLE[role]
    narrowed = []
    for api_key in ApiKey.objects.filter(organization=organization, created_by=user):
        scopes = [scope for scope in api_key.scopes if scope in allowed]
        if scopes != api_key.scopes:
            api_key.scopes = scopes
            narrowed.append(api_key)
    if narrowed:
        ApiKey.objects.bulk_update(narrowed, ["scopes"])
        api_key_cache.forget_all()


@transaction.atomic
def remove_member(
    *, organization: Organization, actor: User, membership: Membership, keep_keys: bool = False
) -> int:
    """Remove `membership`; anyone may leave, owners and admins remove others.

    The API keys the person created stop working on the next request (revoked), unless
    `keep_keys`: then they pass to `actor`, who answers for them from now on (someone who
    leaves has nobody to pass them to). Returns how many keys were revoked or passed on.
    """
    if membership.organization_id != organization.pk:
        raise NotAllowed("That person is not in this organization.")
    owners = _lock_owners(organization=organization)
    # Locked: a key this person is creating meanwhile (_creator_role) is either made first
    # and revoked below, or refused once the membership is gone.
    membership.role = (
        Membership.objects.select_for_update().values_list("role", flat=True).get(pk=membership.pk)
    )
    if membership.user_id != actor.pk:
        manager = _require_manager(organization=organization, actor=actor)
        if membership.role == Membership.Role.OWNER and manager.role != Membership.Role.OWNER:
            raise NotAllowed("Only owners can remove an owner.")
    if membership.role == Membership.Role.OWNER and len(owners) == 1:
        raise LastOwner(
            "An organization needs an owner: make someone else an owner before "
            + ("leaving." if membership.user_id == actor.pk else "removing this one.")
        )
    if keep_keys and membership.user_id == actor.pk:
        raise NotAllowed("Keys cannot be kept by someone leaving: an owner or admin can keep them.")
    keys = ApiKey.objects.filter(
        organization=organization, created_by_id=membership.user_id, revoked_at=None
    )
    if keep_keys:
        handed_over = keys.update(created_by=actor)
        _bound_keys_to_role(organization=organization, user=actor, role=manager.role)
    else:
        handed_over = keys.update(revoked_at=timezone.now())
    if handed_over:
        api_key_cache.forget_all()
    membership.delete()
    return handed_over


def revoke_invitation(
    *, organization: Organization, actor: User, invitation: Invitation
) -> Invitation:
    """Withdraw a pending invitation: its link stops working at once."""
    if invitation.organization_id != organization.pk:
        raise NotAllowed("That invitation is not from this organization.")
    _require_manager(organization=organization, actor=actor)
    if invitation.accepted_at is not None:
        raise InvalidInvitation("This invitation has already been accepted.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def update_organization_settings(
    *,
    organization: Organization,
    actor: User,
    name: str,
    billing_email: str,
    low_credit_threshold: int,
    output_retention_days: int,
) -> Organization:
    """Change the organization's own settings; owners and admins only.

    Output retention may be shortened but never set beyond the plan's maximum (staff
    overrides aside, longer storage is what higher plans sell).
    """
    membership = Membership.objects.filter(organization=organization, user=actor).first()
    if membership is None or not membership.can_manage:
        raise NotAllowed("Only owners and admins can change the organization's settings.")
    maximum = organization.plan.output_retention_days
    if not 1 <= output_retention_days <= maximum:
        raise InvalidSettings(
            f"Output retention must be between 1 and {maximum} days on the "
            f"{organization.plan.name} plan."
        )
    organization.name = name.strip()
    organization.billing_email = billing_email.strip().lower()
    organization.low_credit_threshold = low_credit_threshold
    organization.output_retention_days_override = (
        None if output_retention_days == maximum else output_retention_days
    )
    organization.save(
        update_fields=[
            "name",
            "billing_email",
            "low_credit_threshold",
            "output_retention_days_override",
        ]
    )
    return organization

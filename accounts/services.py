"""Every write to users, organizations, memberships, invitations and API keys."""

import base64
import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.text import slugify

from accounts.models import ApiKey, Membership, Organization, User
from billing import services as billing_services
from billing.models import Plan

API_KEY_PREFIX = "sk_live_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(Exception):
    """The key is malformed, unknown, revoked or expired (all look the same to a caller)."""


class SuspendedOrganization(Exception):
    pass


class EmailAlreadyRegistered(Exception):
    pass


def new_webhook_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def create_organization(
    *, name: str, owner: User, plan: Plan | None = None, billing_email: str = ""
) -> Organization:
    """Create an organization with `owner` as its owner, on `plan` (Free by default)."""
    organization = Organization.objects.create(
        name=name,
        slug=_unique_slug(name),
        plan=plan or billing_services.default_plan(),
        billing_email=billing_email or owner.email,
        webhook_signing_secret=new_webhook_signing_secret(),
    )
    Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    return organization


@dataclass
class SignUp:
    user: User
    organization: Organization


@transaction.atomic
def sign_up(*, email: str, password: str, full_name: str = "") -> SignUp:
    """Create a user and their personal organization, of which they are the owner."""
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise EmailAlreadyRegistered(email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
    except IntegrityError as exc:
        raise EmailAlreadyRegistered(email) from exc
    organization = create_organization(name=_personal_org_name(user), owner=user)
    billing_services.grant_signup_credits(organization=organization)
    return SignUp(user=user, organization=organization)


def _personal_org_name(user: User) -> str:
    return f"{user.full_name or user.email.split('@')[0]}'s organization"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class NewApiKey:
    api_key: ApiKey
    secret: str  # the full key, shown once and never stored


def create_api_key(
    *,
    organization: Organization,
    name: str,
    created_by: User | None = None,
    scopes: list[str] | None = None,
    expires_at=None,
) -> NewApiKey:
    """Create a key; the returned secret is the only copy there will ever be."""
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
                    scopes=scopes if scopes is not None else list(ApiKey.Scope.values),
                    created_by=created_by,
                    expires_at=expires_at,
                )
            return NewApiKey(api_key=api_key, secret=f"{API_KEY_PREFIX}{prefix}_{secret}")
        except IntegrityError:
            continue
    raise RuntimeError("Could not find a free API key prefix")


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def _split_key(raw_key: str) -> tuple[str, str]:
    if not raw_key.startswith(API_KEY_PREFIX):
        raise InvalidApiKey
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or len(secret) < 32:
        raise InvalidApiKey
    return prefix, secret


def authenticate_api_key(raw_key: str) -> ApiKey:
    """Return the active key for `raw_key` with its organization and plan loaded.

    One indexed query on the prefix and a constant-time compare of the secret's hash.
    """
    prefix, secret = _split_key(raw_key.strip())
    api_key = ApiKey.objects.select_related("organization__plan").filter(prefix=prefix).first()
    if api_key is None or not constant_time_compare(api_key.secret_hash, _hash_secret(secret)):
        raise InvalidApiKey
    if not api_key.is_active:
        raise InvalidApiKey
    if api_key.organization.is_suspended:
        raise SuspendedOrganization
    _record_key_use(api_key)
    return api_key


def _record_key_use(api_key: ApiKey) -> None:
    # At most one write a minute per key, so authenticated reads stay read-only.
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now

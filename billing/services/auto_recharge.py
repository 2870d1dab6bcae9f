"""Auto-recharge: an owner's standing order to buy a pack when the balance runs low.

The rule runs in the transaction of the change that moved the balance, with the threshold
that change's own statement read (billing.services.ledger): a change that takes the balance
from at or above the threshold to below it opens an attempt. At most one attempt of an
organization is open (a constraint), so submissions crossing the threshold together open
one; the charge is sent after commit by a task (billing.services.recharging), never in the
request that spent the credits.
"""

from celery import signature
from django.db import transaction
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import Membership, Organization, User
from accounts.suspension import ensure_active
from billing.models import AutoRecharge, AutoRechargeAttempt, CreditPack
from billing.selectors import credit_balance
from billing.services.customers import ensure_stripe_customer, save_card
from common.errors import InvalidRequest, NotPermitted

RECHARGE_TASK = "billing.tasks.recharge_credits"
MAX_THRESHOLD = 10_000_000


def open_recharge_if_low(
    *, organization: Organization, balance_before: int, balance_after: int, threshold: int
) -> bool:
    """Open an attempt when this change takes the balance below `threshold` (once per
    crossing: a balance that stays below opens nothing). Call it in that change's transaction."""
    if not balance_before >= threshold > balance_after:
        return False
    _open_attempt(organization=organization, balance=balance_after)
    return True


def _open_attempt(*, organization: Organization, balance: int) -> None:
    # ON CONFLICT DO NOTHING: a second open attempt is not an error that would doom the
    # submission's transaction, just nothing to do.
    AutoRechargeAttempt.objects.bulk_create(
        [AutoRechargeAttempt(organization=organization, balance=balance)], ignore_conflicts=True
    )
    organization_id = organization.pk
    # robust: a broker outage must not fail the submission; the sweep sends it later.
    transaction.on_commit(lambda: send_recharge(organization_id=organization_id), robust=True)


def send_recharge(*, organization_id: int) -> None:
    signature(RECHARGE_TASK, args=[organization_id]).apply_async()


def _ensure_owner(*, organization: Organization, user: User) -> None:
    membership = account_selectors.membership_for(user=user, organization=organization)
    if membership is None or membership.role != Membership.Role.OWNER:
        raise NotPermitted("Only owners of the organization can turn auto-recharge on or off.")


def enable_auto_recharge(
    *,
    organization: Organization,
    user: User,
    pack: CreditPack,
    threshold: int,
    setup_intent_id: str = "",
) -> AutoRecharge:
    """Turn auto-recharge on (or change it) for an owner; the card is the one the SetupIntent
    saved, else the one saved before. Raises NotPermitted for anyone but an owner,
    InvalidRequest for a bad threshold or no card, PaymentDeclined for a card Stripe refused.
    A balance already below the threshold is recharged at once."""
    _ensure_owner(organization=organization, user=user)
    ensure_active(organization, refused="it cannot buy credits")
    if not 1 <= threshold <= MAX_THRESHOLD:
        raise InvalidRequest(
            {"threshold": [f"The threshold is a number of credits from 1 to {MAX_THRESHOLD:,}."]}
        )
    current = AutoRecharge.objects.filter(organization=organization).first()
    if setup_intent_id:
        ensure_stripe_customer(organization=organization)
        card = save_card(organization=organization, setup_intent_id=setup_intent_id, user=user)
        payment_method_id, label = card.payment_method_id, card.label
    elif current is not None:
        payment_method_id, label = current.payment_method_id, current.card_label
    else:
        raise InvalidRequest({"card": ["Save a card for auto-recharge to charge."]})
    with transaction.atomic():
        setting, _ = AutoRecharge.objects.update_or_create(
            organization=organization,
            defaults={
                "enabled": True,
                "pack": pack,
                "threshold": threshold,
                "payment_method_id": payment_method_id,
                "card_label": label,
                "consecutive_failures": 0,
                "updated_by": user,
                "updated_at": timezone.now(),
            },
        )
        balance = credit_balance(organization=organization)
        if balance < threshold:
            _open_attempt(organization=organization, balance=balance)
    return setting


def disable_auto_recharge(*, organization: Organization, user: User) -> None:
    """Turn auto-recharge off for an owner: no attempt waiting to charge will charge."""
    _ensure_owner(organization=organization, user=user)
    now = timezone.now()
    with transaction.atomic():
        AutoRecharge.objects.filter(organization=organization).update(
            enabled=False, updated_by=user, updated_at=now
        )
        AutoRechargeAttempt.objects.filter(
            organization=organization, status=AutoRechargeAttempt.Status.PENDING
        ).update(status=AutoRechargeAttempt.Status.CANCELED, finished_at=now)

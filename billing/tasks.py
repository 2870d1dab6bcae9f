"""Scheduled billing work (CELERY_BEAT_SCHEDULE in config/settings/base.py): thin, ids only."""

import logging

from celery import shared_task
from django.utils import timezone

from accounts.models import Organization
from billing import services, stripe_gateway

logger = logging.getLogger(__name__)


@shared_task
def expire_credits() -> int:
    """Expire what is left of every grant past its expiry; return how many entries were written."""
    written = 0
    for organization_id in services.organizations_with_expired_grants():
        organization = Organization.objects.get(pk=organization_id)
        written += len(services.expire_credits(organization=organization))
    return written


@shared_task
def grant_monthly_credits() -> None:
    """Give every personal free-plan organization whose anniversary has come its month's credits."""
    now = timezone.now()
    organizations = Organization.objects.filter(
        plan__monthly_price_cents=0, plan__monthly_credits__gt=0, personal_of__isnull=False
    ).select_related("plan")
    for organization in organizations.iterator():
        services.grant_monthly_credits(organization=organization, now=now)


@shared_task
def reconcile_subscriptions() -> None:
    """Compare every organization that has a Stripe customer with Stripe and repair drift."""
    organizations = Organization.objects.exclude(stripe_customer_id="").select_related("plan")
    for organization in organizations.iterator():
        try:
            changes = services.reconcile_subscription(organization=organization)
        except stripe_gateway.StripeUnavailable:
            logger.exception("Could not reconcile %s with Stripe", organization.slug)
            continue
        if changes:
            logger.warning("Reconciled %s with Stripe: %s", organization.slug, changes)


@shared_task
def reconcile_pack_purchases() -> int:
    """Credit the pack purchases Stripe was paid for whose event never reached us."""
    paid = 0
    for purchase_id in services.uncredited_pack_purchases():
        try:
            invoice = services.reconcile_pack_purchase(purchase_id=purchase_id)
        except stripe_gateway.StripeUnavailable:
            logger.exception("Could not ask Stripe about pack purchase %s", purchase_id)
            continue
        if invoice is not None:
            logger.warning("Pack purchase %s: Stripe says it was paid; credited", purchase_id)
            paid += 1
    return paid


@shared_task(bind=True, max_retries=5)
def recharge_credits(self, organization_id: int) -> None:
    """Charge the organization's open auto-recharge attempt (sent on the crossing's commit)."""
    try:
        services.recharge(organization_id=organization_id)
    except stripe_gateway.StripeUnavailable as error:
        # The attempt stays open; the retry charges with the same idempotency key.
        raise self.retry(exc=error, countdown=30 * 2**self.request.retries) from error


@shared_task
def send_unsent_recharges() -> int:
    """Send the auto-recharge attempts whose task never left (the broker was down) or was lost."""
    return services.send_unsent_recharges()

"""Charging an auto-recharge attempt: one off-session PaymentIntent per attempt.

Called by the task the crossing sent (billing.tasks.recharge_credits). The attempt becomes
a PackPurchase like any other, so its credits arrive with Stripe's verified
`payment_intent.succeeded` event through apply_pack_payment, and nowhere else. A declined
charge, or one the bank wants authenticated, mails the owners a link to buy by hand;
FAILURES_BEFORE_OFF of them in a row turn auto-recharge off; a paid one resets the count.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing import emails, stripe_gateway
from billing.models import AutoRecharge, AutoRechargeAttempt, PackPurchase
from billing.services.auto_recharge import send_recharge

logger = logging.getLogger(__name__)

Status = AutoRechargeAttempt.Status
FAILURES_BEFORE_OFF = 3
# An attempt still waiting this long was never sent (the broker was down at commit); one
# still charging this long lost its task (a killed worker's, which Redis gives back only
# after an hour, or one whose retries were spent while Stripe was down). Sending a task to
# an attempt whose own task still runs is harmless: recharge() waits on the purchase's lock
# and finds the attempt finished. A charge whose id was never stored is charged again
# only within Stripe's 24 hours of idempotency-key memory.
UNSENT_AFTER = timedelta(minutes=2)
STUCK_AFTER = timedelta(minutes=5)
IDEMPOTENCY_KEPT = timedelta(hours=23)


def recharge(*, organization_id: int) -> AutoRechargeAttempt | None:
    """Charge the organization's open attempt, if any; safe to call again (a retried task).

    Raises StripeUnavailable when Stripe could not be reached: the attempt stays open and a
    retry charges with the same idempotency key, so Stripe makes one PaymentIntent.
    """
    attempt, setting = _start(organization_id=organization_id)
    if attempt is None or attempt.status != Status.CHARGING:
        return attempt
    with transaction.atomic():
        # Held until the outcome is recorded. Stripe's event for the PaymentIntent can come
        # back before its id is stored, and apply_pack_payment then waits on this row; so
        # does a second task for the attempt (the sweep's), which then finds it finished.
        purchase = PackPurchase.objects.select_for_update().get(pk=attempt.purchase_id)
        attempt.refresh_from_db(fields=["status"])
        if attempt.status != Status.CHARGING:
            return attempt
        if purchase.stripe_payment_intent_id:
            # Charged before, its outcome not recorded (the worker died): ask Stripe.
            payment = stripe_gateway.retrieve_pack_payment(purchase.stripe_payment_intent_id)
        else:
            try:
                payment = stripe_gateway.charge_saved_card(
                    purchase=purchase,
                    customer_id=attempt.organization.stripe_customer_id,
                    payment_method_id=setting.payment_method_id,
                    idempotency_key=f"auto-recharge:{attempt.pk}",
                )
            except stripe_gateway.PaymentDeclined as error:  # AuthenticationRequired too
                return _fail(attempt=attempt, message=error.message)
            purchase.stripe_payment_intent_id = payment.id
            purchase.save(update_fields=["stripe_payment_intent_id"])
        return _finish(attempt=attempt, setting=setting, status=payment.status)


def _start(*, organization_id: int) -> tuple[AutoRechargeAttempt | None, AutoRecharge | None]:
    """Lock the open attempt; turn a waiting one into a charging purchase, or cancel it."""
    with transaction.atomic():
        attempt = (
            AutoRechargeAttempt.objects.select_for_update(of=("self",))
            .select_related("organization", "purchase")
            .filter(organization_id=organization_id, status__in=AutoRechargeAttempt.OPEN_STATUSES)
            .first()
        )
        if attempt is None:
            return None, None
        setting = (
            AutoRecharge.objects.select_related("pack")
            .filter(organization_id=organization_id)
            .first()
        )
        if attempt.status == Status.CHARGING:
            return attempt, setting
        # Turned off meanwhile, or the organization suspended: it buys nothing.
        if setting is None or not setting.enabled or attempt.organization.is_suspended:
            attempt.status = Status.CANCELED
            attempt.finished_at = timezone.now()
            attempt.save(update_fields=["status", "finished_at"])
            return attempt, setting
        pack = setting.pack
        attempt.purchase = PackPurchase.objects.create(
            organization=attempt.organization,
            pack=pack,
            token=f"auto-recharge-{attempt.pk}",
            credits=pack.credits,
            amount_cents=pack.price_cents,
            currency=pack.currency,
        )
        attempt.status = Status.CHARGING
        attempt.save(update_fields=["purchase", "status"])
        return attempt, setting


def _finish(
    *, attempt: AutoRechargeAttempt, setting: AutoRecharge, status: str
) -> AutoRechargeAttempt:
    if status == "requires_action":
        # localstripe's way of saying what Stripe says with `authentication_required`.
        return _fail(attempt=attempt, message=stripe_gateway.AuthenticationRequired().message)
    if status not in ("succeeded", "processing"):
        return _fail(attempt=attempt, message="The payment failed.")
    with transaction.atomic():
        attempt.status = Status.SUCCEEDED
        attempt.finished_at = timezone.now()
        attempt.save(update_fields=["status", "finished_at"])
        AutoRecharge.objects.filter(pk=setting.pk).update(consecutive_failures=0)
        # Stripe's event may have been applied already; its outcome is not overwritten.
        PackPurchase.objects.filter(
            pk=attempt.purchase_id, status=PackPurchase.Status.STARTED
        ).update(status=PackPurchase.Status.PROCESSING)
    return attempt


def _fail(*, attempt: AutoRechargeAttempt, message: str) -> AutoRechargeAttempt:
    with transaction.atomic():
        setting = AutoRecharge.objects.select_for_update().get(
            organization_id=attempt.organization_id
        )
        setting.consecutive_failures += 1
        turned_off = setting.enabled and setting.consecutive_failures >= FAILURES_BEFORE_OFF
        if turned_off:
            setting.enabled = False
        setting.save(update_fields=["consecutive_failures", "enabled"])
        attempt.status = Status.FAILED
        attempt.failure_message = message[:500]
        attempt.finished_at = timezone.now()
        attempt.save(update_fields=["status", "failure_message", "finished_at"])
        PackPurchase.objects.filter(pk=attempt.purchase_id).exclude(
            status=PackPurchase.Status.SUCCEEDED
        ).update(status=PackPurchase.Status.FAILED, failure_message=message[:500])
        attempt_id = attempt.pk
        transaction.on_commit(
            lambda: emails.send_auto_recharge_failed_email(
                attempt_id=attempt_id, turned_off=turned_off
            )
        )
    logger.warning(
        "Auto-recharge of organization %s failed (%s in a row)%s: %s",
        attempt.organization_id,
        setting.consecutive_failures,
        ", turned off" if turned_off else "",
        message,
    )
    return attempt


def send_unsent_recharges(*, now=None) -> int:
    """Send again the open attempts no task is working on; return how many were sent."""
    now = now or timezone.now()
    unsent = Q(status=Status.PENDING, created_at__lt=now - UNSENT_AFTER)
    stuck = Q(
        status=Status.CHARGING,
        created_at__lt=now - STUCK_AFTER,
        created_at__gt=now - IDEMPOTENCY_KEPT,
    )
    organization_ids = list(
        AutoRechargeAttempt.objects.filter(unsent | stuck)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    for organization_id in organization_ids:
        send_recharge(organization_id=organization_id)
    return len(organization_ids)

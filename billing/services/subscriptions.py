"""Plans paid for by a Stripe subscription: the customer's changes, and applying what Stripe says
(webhook events and reconciliation)."""

from datetime import UTC, datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.suspension import ensure_active
from billing import emails, stripe_gateway
from billing.errors import PlanChangeInProgress
from billing.models import Invoice, Plan, Subscription, SubscriptionChange
from billing.services.customers import ensure_stripe_customer, save_card
from billing.services.invoices import issue_invoice, paid_with
from billing.services.ledger import grant_credits
from billing.stripe_gateway import plan_price_id

# Longer than any Stripe call takes; if the process dies, the lock lapses by itself.
PLAN_CHANGE_LOCK_SECONDS = 60


def change_plan(
    *, organization: Organization, plan: Plan, setup_intent_id: str = "", user: User | None = None
) -> Subscription | None:
    """Move the organization to `plan` through Stripe.

    Free: the paid subscription is canceled at the end of the period already paid for.
    A paid plan: a new subscription (charged to the card `setup_intent_id` saved), or the
    current one switched to the plan (Stripe prorates). The organization's plan follows
    Stripe's answer; the period's credits follow the paid invoice's event.
    Raises PlanChangeInProgress while another change of this organization's plan runs
    (two quick "Subscribe" clicks must not make two subscriptions), SuspendedOrganization
    for a paid plan while the organization is suspended (moving to Free stops the charges,
    so it stays open).
    """
    if plan.is_paid:
        ensure_active(organization, refused="it cannot subscribe to a paid plan")
    lock = f"billing:plan-change:{organization.pk}"
    if not cache.add(lock, 1, timeout=PLAN_CHANGE_LOCK_SECONDS):
        raise PlanChangeInProgress
    try:
        return _change_plan(
            organization=organization, plan=plan, setup_intent_id=setup_intent_id, user=user
        )
    finally:
        cache.delete(lock)


def _change_plan(
    *, organization: Organization, plan: Plan, setup_intent_id: str, user: User | None
) -> Subscription | None:
    subscription = Subscription.objects.filter(organization=organization).first()
    live = subscription is not None and subscription.status in LIVE_STATUSES
    if not plan.is_paid:
        if not live:
            return subscription
        state = stripe_gateway.set_cancel_at_period_end(
            subscription_id=subscription.stripe_subscription_id, cancel=True
        )
    elif live:
        if subscription.plan_id == plan.pk:
            state = stripe_gateway.set_cancel_at_period_end(
                subscription_id=subscription.stripe_subscription_id, cancel=False
            )
        else:
            state = stripe_gateway.change_subscription_plan(
                subscription_id=subscription.stripe_subscription_id, plan=plan
            )
    else:
        customer_id = ensure_stripe_customer(organization=organization)
        save_card(organization=organization, setup_intent_id=setup_intent_id, user=user)
        state = stripe_gateway.create_subscription(
            organization=organization,
            customer_id=customer_id,
            plan=plan,
            idempotency_key=f"subscription:{organization.public_id}:{setup_intent_id}",
        )
    sync_subscription(
        subscription=state,
        source=SubscriptionChange.Source.CUSTOMER,
        details={"requested_plan": plan.slug, "by": user.email if user else None},
    )
    return Subscription.objects.filter(organization=organization).first()


LIVE_STATUSES = ("active", "trialing", "past_due")
ENDED_STATUSES = ("canceled", "unpaid", "incomplete_expired")


def _from_timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _organization_for_customer(customer) -> Organization | None:
    customer_id = customer["id"] if isinstance(customer, dict) else customer
    if not customer_id:
        return None
    organizations = Organization.objects.select_related("plan")
    return organizations.filter(stripe_customer_id=customer_id).first()


def _price_id(item: dict) -> str | None:
    # localstripe and older API versions say `plan`; current Stripe says `price` or `pricing`.
    for key in ("plan", "price"):
        value = item.get(key)
        if isinstance(value, dict) and value.get("id"):
            return value["id"]
        if isinstance(value, str):
            return value
    details = (item.get("pricing") or {}).get("price_details") or {}
    return details.get("price")


def _plan_for_price(price_id: str | None) -> Plan | None:
    if not price_id:
        return None
    for plan in Plan.objects.all():
        if plan_price_id(plan) == price_id:
            return plan
    return None


def _subscription_id_of_invoice(invoice: dict) -> str | None:
    if invoice.get("subscription"):
        return invoice["subscription"]
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription")


def _set_plan(
    *, organization: Organization, plan: Plan, source: str, details: dict
) -> SubscriptionChange | None:
    if organization.plan_id == plan.pk:
        return None
    change = SubscriptionChange.objects.create(
        organization=organization,
        from_plan_id=organization.plan_id,
        to_plan=plan,
        source=source,
        details=details,
    )
    organization.plan = plan
    organization.save(update_fields=["plan"])
    return change


def sync_subscription(
    *, subscription: dict, source: str, details: dict | None = None, state_at=None
) -> dict:
    """Make our copy of a Stripe subscription and the organization's plan match it.

    Returns what changed (`{field: [old, new]}`), which is also recorded. A state older
    than the one applied last (`state_at`, an event's creation time) is ignored.
    """
    details = dict(details or {})
    organization = _organization_for_customer(subscription.get("customer"))
    if organization is None:
        return {}
    items = (subscription.get("items") or {}).get("data") or [{}]
    plan = _plan_for_price(_price_id(items[0]))
    status = subscription.get("status", "")
    period_end = _from_timestamp(
        subscription.get("current_period_end") or items[0].get("current_period_end")
    )
    # Stripe's timestamps are whole seconds: an event from the same second still applies.
    state_at = state_at or timezone.now().replace(microsecond=0)
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=organization.pk).get()
        local = Subscription.objects.select_for_update().filter(organization=organization).first()
        if local is not None and local.state_at > state_at:
            return {}
        replaced = local is not None and local.stripe_subscription_id != subscription["id"]
        if replaced and status not in LIVE_STATUSES:
            return {}  # news about an old subscription; the current one decides
        wanted = {
            "stripe_subscription_id": subscription["id"],
            "plan": plan or (local.plan if local else organization.plan),
            "status": status,
            "current_period_end": period_end,
            "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
        }
        changes = {}
        if local is None:
            local = Subscription(organization=organization, **wanted)
            changes["subscription"] = [None, subscription["id"]]
        for field, value in wanted.items():
            old = getattr(local, field)
            if old != value:
                changes[field] = [str(old), str(value)]
                setattr(local, field, value)
        local.state_at = state_at
        local.save()
        target = None
        if status in LIVE_STATUSES and plan is not None:
            target = plan
        elif status in ENDED_STATUSES:
            target = Plan.objects.default()
        if target is not None and organization.plan_id != target.pk:
            changes["plan"] = [organization.plan.slug, target.slug]
            _set_plan(
                organization=organization,
                plan=target,
                source=source,
                details={**details, "changes": changes},
            )
        elif changes and source == SubscriptionChange.Source.RECONCILIATION:
            SubscriptionChange.objects.create(
                organization=organization,
                from_plan_id=organization.plan_id,
                to_plan_id=organization.plan_id,
                source=source,
                details={**details, "changes": changes},
            )
    return changes


def apply_paid_invoice(*, invoice: dict, source: str) -> Invoice | None:
    """A subscription invoice was paid: grant the period's credits, set the plan, issue it."""
    subscription_id = _subscription_id_of_invoice(invoice)
    organization = _organization_for_customer(invoice.get("customer"))
    if subscription_id is None or organization is None:
        return None
    existing = Invoice.objects.filter(stripe_invoice_id=invoice["id"]).first()
    if existing is not None:
        return existing
    stripe_lines = (invoice.get("lines") or {}).get("data") or []
    plan = next((p for p in (_plan_for_price(_price_id(line)) for line in stripe_lines) if p), None)
    if plan is None:
        return None
    periods = [line.get("period") or {} for line in stripe_lines]
    period_start = _from_timestamp(min((p.get("start") or 0) for p in periods) or None)
    period_end = _from_timestamp(max((p.get("end") or 0) for p in periods) or None)
    credits = plan.monthly_credits
    if credits > 0:
        grant_credits(
            organization=organization,
            amount=credits,
            reference=f"stripe:invoice:{invoice['id']}",
            memo=f"{plan.name} plan: credits for the period",
            # Included credits belong to their period, like the free plan's.
            expires_at=period_end,
        )
    _set_plan(
        organization=organization,
        plan=plan,
        source=source,
        details={"invoice": invoice["id"], "subscription": subscription_id},
    )
    lines = [
        {
            "description": line.get("description") or f"Imagen {plan.name}",
            "quantity": int(line.get("quantity") or 1),
            "unit_amount": int(line.get("amount") or 0) // max(int(line.get("quantity") or 1), 1),
            "amount": int(line.get("amount") or 0),
        }
        for line in stripe_lines
    ]
    return issue_invoice(
        organization=organization,
        kind=Invoice.Kind.SUBSCRIPTION,
        lines=lines,
        subtotal=int(invoice.get("subtotal") or 0),
        total=int(invoice.get("total") or 0),
        amount_paid=int(invoice.get("amount_paid") or 0),
        currency=invoice.get("currency") or plan.currency,
        credits_added=credits,
        stripe_invoice_id=invoice["id"],
        stripe_payment_intent_id=invoice.get("payment_intent") or None,
        payment_method=paid_with(payment_intent=invoice.get("payment_intent")),
        period_start=period_start,
        period_end=period_end,
    )


def record_invoice_payment_failure(*, invoice: dict) -> None:
    """A subscription payment failed: tell the owners (Stripe retries the charge itself)."""
    organization = _organization_for_customer(invoice.get("customer"))
    if organization is None:
        return
    amount = int(invoice.get("amount_due") or invoice.get("total") or 0)
    currency = invoice.get("currency") or "usd"
    transaction.on_commit(
        lambda: emails.send_payment_failed_email(
            organization_id=organization.pk, amount=amount, currency=currency
        )
    )


def reconcile_subscription(*, organization: Organization) -> dict:
    """Compare the organization's subscription with Stripe and repair drift from missed events.

    Also applies paid invoices whose events were missed (idempotent per invoice).
    Returns what changed; every change is recorded as a SubscriptionChange.
    """
    if not organization.stripe_customer_id:
        return {}
    customer_id = organization.stripe_customer_id
    local = Subscription.objects.filter(organization=organization).first()
    current = stripe_gateway.list_subscriptions(customer_id=customer_id)
    if current:
        state = max(current, key=lambda s: s.get("created") or 0)
    elif local is not None and local.status not in ENDED_STATUSES:
        state = stripe_gateway.retrieve_subscription(local.stripe_subscription_id)
    else:
        return {}
    changes = sync_subscription(
        subscription=state,
        source=SubscriptionChange.Source.RECONCILIATION,
        details={"reconciled_at": timezone.now().isoformat()},
    )
    for invoice in stripe_gateway.list_invoices(customer_id=customer_id):
        if (
            invoice.get("status") == "paid"
            and not Invoice.objects.filter(stripe_invoice_id=invoice["id"]).exists()
        ):
            with transaction.atomic():
                if apply_paid_invoice(
                    invoice=invoice, source=SubscriptionChange.Source.RECONCILIATION
                ):
                    changes.setdefault("invoices", []).append(invoice["id"])
    return changes

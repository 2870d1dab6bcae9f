"""Every change to credits. Credits move only by appending CreditLedgerEntry rows.

Each entry is written together with the organization's balance in one transaction: a
conditional `UPDATE … RETURNING` moves the balance (and holds the row lock until commit),
and the entry is inserted with the balance it left — on PostgreSQL in the same statement
(the UPDATE is a data-modifying CTE the INSERT selects from), elsewhere right after it. The
UPDATE refuses to run when the reference was already used, so every function here is
idempotent on its reference, and when the balance would go negative, so credits can never
be spent twice.
"""

import logging
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Organization, User
from accounts.suspension import ensure_active
from billing import emails, stripe_gateway
from billing.credit_lots import EXPIRY_PREFIX, lots_for
from billing.models import (
    CreditLedgerEntry,
    CreditPack,
    Invoice,
    PackPurchase,
    Plan,
    Subscription,
    SubscriptionChange,
)
from billing.plans import DEFAULT_PLAN_SLUG, PLANS
from billing.selectors import billing_emails_for
from billing.selectors import owner_emails as owner_emails  # generation mails owners with it
from billing.stripe_gateway import plan_price_id
from common import db
from webhooks import services as webhooks
from webhooks.models import EventType

logger = logging.getLogger(__name__)

Kind = CreditLedgerEntry.Kind


@dataclass
class InsufficientCredits(Exception):
    required: int
    available: int

    def __str__(self):
        return (
            f"This request requires {self.required} credits, "
            f"but you have {self.available} remaining"
        )


_MOVE_BALANCE_SQL = f"""
    UPDATE {Organization._meta.db_table}
       SET credit_balance = credit_balance + %s
     WHERE id = %s
       AND credit_balance + %s >= 0
       AND NOT EXISTS (SELECT 1 FROM {CreditLedgerEntry._meta.db_table} WHERE reference = %s)
 RETURNING credit_balance
"""  # noqa: S608 - table names come from the models, values are parameters

# Every column of an entry but its id; balance_after is the balance the move left.
_ENTRY_FIELDS = [f for f in CreditLedgerEntry._meta.concrete_fields if not f.primary_key]
_BALANCE_AFTER = CreditLedgerEntry._meta.get_field("balance_after")
# The columns sent as parameters: all of them but balance_after.
_ENTRY_VALUE_FIELDS = [f for f in _ENTRY_FIELDS if f is not _BALANCE_AFTER]

_MOVE_BALANCE_AND_INSERT_SQL = f"""
WITH moved AS ({_MOVE_BALANCE_SQL})
INSERT INTO {CreditLedgerEntry._meta.db_table} ({", ".join(f.column for f in _ENTRY_FIELDS)})
SELECT {", ".join("moved.credit_balance" if f is _BALANCE_AFTER else "%s" for f in _ENTRY_FIELDS)}
  FROM moved
RETURNING {CreditLedgerEntry._meta.pk.column}, {_BALANCE_AFTER.column}
"""  # noqa: S608 - table and column names come from the models, values are parameters


def _move_balance_and_append(entry: CreditLedgerEntry) -> bool:
    """Move the balance by `entry.amount` and insert `entry` with the balance it left.

    False when the move is refused (reference used, balance short): nothing was written.
    """
    move = [entry.amount, entry.organization_id, entry.amount, entry.reference]
    # One round trip less under the organization's row lock, which every submission of the
    # organization queues behind; SQLite has no data-modifying CTEs and takes two statements.
    one_statement = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if one_statement:
            values = db.insert_values(entry, _ENTRY_VALUE_FIELDS)
            cursor.execute(_MOVE_BALANCE_AND_INSERT_SQL, move + values)
        else:
            cursor.execute(_MOVE_BALANCE_SQL, move)
        row = cursor.fetchone()
    if row is None:
        return False
    if one_statement:
        entry.pk, entry.balance_after = row
        db.mark_saved(entry)
    else:
        entry.balance_after = row[0]
        entry.save(force_insert=True)
    return True


def _append_entry(
    *,
    organization: Organization,
    kind: str,
    amount: int,
    reference: str,
    job_id=None,
    actor: User | None = None,
    memo: str = "",
    expires_at: datetime | None = None,
) -> CreditLedgerEntry:
    if amount == 0:
        raise ValueError("A ledger entry moves at least one credit")
    entry = CreditLedgerEntry(
        organization=organization,
        kind=kind,
        amount=amount,
        reference=reference,
        job_id=job_id,
        actor=actor,
        memo=memo,
        expires_at=expires_at,
    )
    # savepoint=False: inside a caller's transaction (a job submission) this adds no
    # SAVEPOINT round trips, and any failure rolls the caller's work back with it.
    with transaction.atomic(savepoint=False):
        appended = _move_balance_and_append(entry)
    if not appended:
        # Explained outside the block: raising inside it would doom the caller's transaction.
        return _explain_refusal(organization=organization, amount=amount, reference=reference)
    organization.credit_balance = entry.balance_after
    if amount < 0:
        webhooks.notify_if_credits_low(
            organization, entry.balance_after - amount, entry.balance_after
        )
    return entry


def _explain_refusal(*, organization: Organization, amount: int, reference: str):
    existing = CreditLedgerEntry.objects.filter(reference=reference).first()
    if existing is not None:
        if existing.organization_id != organization.pk or existing.amount != amount:
            raise ValueError(f"Ledger reference {reference!r} was used for another change")
        return existing
    available = (
        Organization.objects.filter(pk=organization.pk)
        .values_list("credit_balance", flat=True)
        .first()
    )
    if available is None:
        raise Organization.DoesNotExist(organization.pk)
    organization.credit_balance = available
    raise InsufficientCredits(required=-amount, available=available)


def grant_credits(
    *,
    organization: Organization,
    amount: int,
    reference: str,
    kind: str = Kind.GRANT,
    memo: str = "",
    expires_at: datetime | None = None,
    actor: User | None = None,
) -> CreditLedgerEntry:
    """Add `amount` credits (a grant or a purchase); idempotent on `reference`."""
    if amount <= 0:
        raise ValueError("A grant adds a positive number of credits")
    if kind not in (Kind.GRANT, Kind.PURCHASE):
        raise ValueError(f"grant_credits cannot write a {kind!r} entry")
    return _append_entry(
        organization=organization,
        kind=kind,
        amount=amount,
        reference=reference,
        memo=memo,
        expires_at=expires_at,
        actor=actor,
    )


def reserve_credits(
    *, organization: Organization, amount: int, reference: str, job_id=None
) -> CreditLedgerEntry:
    """Take `amount` credits for a job or raise InsufficientCredits; idempotent on `reference`."""
    if amount <= 0:
        raise ValueError("A reservation takes a positive number of credits")
    return _append_entry(
        organization=organization,
        kind=Kind.RESERVE,
        amount=-amount,
        reference=reference,
        job_id=job_id,
    )


def refund_reservation(
    *, organization: Organization, reservation_reference: str, memo: str = ""
) -> CreditLedgerEntry:
    """Give back everything a reservation took; idempotent (a second refund is a no-op)."""
    reservation = CreditLedgerEntry.objects.get(
        organization=organization, reference=reservation_reference, kind=Kind.RESERVE
    )
    return _append_entry(
        organization=organization,
        kind=Kind.REFUND,
        amount=-reservation.amount,
        reference=f"{reservation_reference}:refund",
        job_id=reservation.job_id,
        memo=memo,
    )


def adjust_credits(
    *, organization: Organization, amount: int, reason: str, actor: User, reference: str
) -> CreditLedgerEntry:
    """Apply a staff correction (either sign) with its reason; never below zero."""
    if not reason.strip():
        raise ValueError("An adjustment needs a reason")
    return _append_entry(
        organization=organization,
        kind=Kind.ADJUSTMENT,
        amount=amount,
        reference=reference,
        actor=actor,
        memo=reason.strip(),
    )


def default_plan() -> Plan:
    """The plan a new organization starts on (created from billing.plans if missing)."""
    plan, _ = Plan.objects.get_or_create(slug=DEFAULT_PLAN_SLUG, defaults=PLANS[DEFAULT_PLAN_SLUG])
    return plan


def plan_by_slug(slug: str) -> Plan:
    if slug in PLANS:
        plan, _ = Plan.objects.get_or_create(slug=slug, defaults=PLANS[slug])
        return plan
    return Plan.objects.get(slug=slug)


# --- Expiry -------------------------------------------------------------------------------

# Grants that expired longer ago than this are not looked at again (the task runs hourly).
EXPIRY_LOOKBACK = timedelta(days=35)


def expire_credits(*, organization: Organization, now: datetime | None = None) -> list:
    """Remove what is left of every grant past its expiry with one `expiry` entry per grant.

    Consumption is attributed as `billing.credit_lots` describes (earliest expiry first).
    Idempotent: each grant is expired at most once (reference `expiry:<grant reference>`).
    """
    now = now or timezone.now()
    written = []
    with transaction.atomic():
        # The row lock keeps reservations out while the remainders are worked out.
        balance = (
            Organization.objects.select_for_update()
            .filter(pk=organization.pk)
            .values_list("credit_balance", flat=True)
            .get()
        )
        for lot in lots_for(organization=organization, since=now - EXPIRY_LOOKBACK):
            if lot.expired or lot.expires_at is None or lot.expires_at > now:
                continue
            amount = min(lot.remaining, balance)
            if amount <= 0:
                continue
            written.append(
                _append_entry(
                    organization=organization,
                    kind=Kind.EXPIRY,
                    amount=-amount,
                    reference=f"{EXPIRY_PREFIX}{lot.reference}",
                    memo=f"Unused credits expired on {lot.expires_at:%Y-%m-%d}",
                )
            )
            balance -= amount
    return written


def organizations_with_expired_grants(*, now: datetime | None = None) -> list[int]:
    """Ids of organizations with a grant past its expiry that has not been expired yet."""
    now = now or timezone.now()
    expired_already = CreditLedgerEntry.objects.filter(
        reference=Concat(Value(EXPIRY_PREFIX), OuterRef("reference"))
    )
    return list(
        CreditLedgerEntry.objects.filter(
            expires_at__lte=now, expires_at__gt=now - EXPIRY_LOOKBACK, amount__gt=0
        )
        .exclude(Exists(expired_already))
        .values_list("organization_id", flat=True)
        .distinct()
    )


# --- Included monthly credits --------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` shifted by whole months, the day clamped to the month's end (Jan 31 → Feb 28)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def included_credit_period(*, organization: Organization, now: datetime) -> tuple[int, datetime]:
    """The index of the monthly period (0 at sign-up) that `now` falls in, and its start."""
    start = organization.created_at
    index = (now.year - start.year) * 12 + now.month - start.month
    if add_months(start, index) > now:
        index -= 1
    return index, add_months(start, max(index, 0))


def _grant_included_credits(*, organization: Organization, period_start: datetime, plan: Plan):
    return grant_credits(
        organization=organization,
        amount=plan.monthly_credits,
        reference=f"monthly:{organization.pk}:{period_start:%Y-%m}",
        memo=f"{plan.name} plan: monthly included credits",
        # Included credits are for their month; what is not used expires with it.
        expires_at=add_months(period_start, 1),
    )


def _receives_free_credits(organization: Organization) -> bool:
    # Only a person's personal organization: one more organization is no more free credits.
    plan = organization.plan
    return not plan.is_paid and plan.monthly_credits > 0 and organization.personal_of_id is not None


def grant_signup_credits(*, organization: Organization) -> CreditLedgerEntry | None:
    """Give a new personal organization on a free plan its first month of included credits."""
    plan = organization.plan
    if not _receives_free_credits(organization):
        return None
    return _grant_included_credits(
        organization=organization, period_start=organization.created_at, plan=plan
    )


def grant_monthly_credits(
    *, organization: Organization, now: datetime | None = None
) -> CreditLedgerEntry | None:
    """On each sign-up anniversary, give a personal free-plan organization that month's credits.

    Idempotent per organization and period (reference `monthly:<org>:<YYYY-MM>`). The first
    period is granted at sign-up (grant_signup_credits); paid plans get theirs per invoice.
    """
    plan = organization.plan
    if not _receives_free_credits(organization):
        return None
    index, period_start = included_credit_period(
        organization=organization, now=now or timezone.now()
    )
    if index < 1:
        return None
    return _grant_included_credits(organization=organization, period_start=period_start, plan=plan)


# --- Stripe: customers, cards, packs, plans ------------------------------------------------


def ensure_stripe_customer(*, organization: Organization, replacing: str = "") -> str:
    """Return the organization's Stripe customer id, creating the customer the first time.

    `replacing`: a customer id Stripe no longer knows, to be replaced by a new customer.
    """
    if organization.stripe_customer_id and organization.stripe_customer_id != replacing:
        return organization.stripe_customer_id
    emails_to = billing_emails_for(organization=organization)
    customer_id = stripe_gateway.create_customer(
        organization=organization, email=emails_to[0] if emails_to else None, replacing=replacing
    )
    # Two first clicks at once: the idempotency key gave both the same customer on Stripe,
    # and only the first write is kept here.
    Organization.objects.filter(pk=organization.pk, stripe_customer_id=replacing).update(
        stripe_customer_id=customer_id
    )
    organization.stripe_customer_id = Organization.objects.values_list(
        "stripe_customer_id", flat=True
    ).get(pk=organization.pk)
    return organization.stripe_customer_id


def start_card_setup(*, organization: Organization) -> str:
    """Return the client secret with which Stripe.js saves a card for the organization."""
    customer_id = ensure_stripe_customer(organization=organization)
    if not stripe_gateway.customer_exists(customer_id):
        # Stripe lost the customer (a restarted localstripe, a test account reset).
        customer_id = ensure_stripe_customer(organization=organization, replacing=customer_id)
    return stripe_gateway.create_setup_intent(customer_id=customer_id)["client_secret"]


def _owned_payment_method(*, organization: Organization, setup_intent_id: str) -> str:
    """The card a succeeded SetupIntent of this organization's customer saved."""
    setup_intent = stripe_gateway.retrieve_setup_intent(setup_intent_id)
    if (
        setup_intent.get("customer") != organization.stripe_customer_id
        or setup_intent.get("status") != "succeeded"
        or not setup_intent.get("payment_method")
    ):
        error = setup_intent.get("last_setup_error") or {}
        declined = setup_intent.get("status") == "canceled"
        raise stripe_gateway.PaymentDeclined(
            error.get("message")
            or ("Your card was declined." if declined else "The card could not be saved.")
        )
    payment_method = setup_intent["payment_method"]
    return payment_method["id"] if isinstance(payment_method, dict) else payment_method


@dataclass
class PackCheckout:
    purchase: PackPurchase
    # Set when the bank wants the customer to authenticate (3-D Secure) in the browser.
    client_secret: str = ""


def buy_pack(
    *,
    organization: Organization,
    pack: CreditPack,
    token: str,
    setup_intent_id: str,
    user: User | None = None,
) -> PackCheckout:
    """Charge the card saved by `setup_intent_id` for `pack`; one purchase per `token`.

    Credits are not granted here: they arrive with Stripe's `payment_intent.succeeded`
    event. A second call with the same token (a double click) returns the first purchase.
    A suspended organization buys nothing (SuspendedOrganization).
    """
    ensure_active(organization, refused="it cannot buy credits")
    purchase, created = PackPurchase.objects.get_or_create(
        token=token,
        defaults={
            "organization": organization,
            "pack": pack,
            "credits": pack.credits,
            "amount_cents": pack.price_cents,
            "currency": pack.currency,
            "created_by": user,
        },
    )
    if purchase.organization_id != organization.pk or purchase.pack_id != pack.pk:
        raise ValueError("This purchase token belongs to another purchase")
    if not created:
        return PackCheckout(purchase=purchase)
    try:
        customer_id = ensure_stripe_customer(organization=organization)
        payment_method_id = _owned_payment_method(
            organization=organization, setup_intent_id=setup_intent_id
        )
    except (stripe_gateway.PaymentDeclined, stripe_gateway.StripeUnavailable) as error:
        _fail_purchase(purchase=purchase, error=error)
        raise
    payment = charge_pack_purchase(
        purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
    )
    requires_action = purchase.status == PackPurchase.Status.REQUIRES_ACTION
    return PackCheckout(
        purchase=purchase, client_secret=payment.client_secret if requires_action else ""
    )


def charge_pack_purchase(
    *, purchase: PackPurchase, customer_id: str, payment_method_id: str
) -> stripe_gateway.PackPayment:
    """Create the purchase's PaymentIntent, record its id, then confirm it.

    The one place a pack's PaymentIntent is made. Its id is stored before any money moves,
    so that Stripe's events find their purchase and an event for any other PaymentIntent
    can be refused (apply_pack_payment). Call it outside a transaction: the id must be
    committed before the charge. Raises PaymentDeclined or StripeUnavailable, and the
    purchase is then failed with the reason.
    """
    try:
        payment = stripe_gateway.create_pack_payment(
            purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
        )
        purchase.stripe_payment_intent_id = payment.id
        purchase.save(update_fields=["stripe_payment_intent_id"])
        payment = stripe_gateway.confirm_pack_payment(purchase=purchase)
    except (stripe_gateway.PaymentDeclined, stripe_gateway.StripeUnavailable) as error:
        _fail_purchase(purchase=purchase, error=error)
        raise
    status = {
        "succeeded": PackPurchase.Status.PROCESSING,  # until the event says so
        "requires_action": PackPurchase.Status.REQUIRES_ACTION,
    }.get(payment.status, PackPurchase.Status.PROCESSING)
    # Stripe's event may have been applied already; its outcome is not overwritten.
    PackPurchase.objects.filter(pk=purchase.pk, status=PackPurchase.Status.STARTED).update(
        status=status
    )
    purchase.refresh_from_db()
    return payment


def _fail_purchase(*, purchase: PackPurchase, error: Exception) -> None:
    purchase.status = PackPurchase.Status.FAILED
    purchase.failure_message = str(error)[:500]
    purchase.save(update_fields=["status", "failure_message"])


# Longer than any Stripe call takes; if the process dies, the lock lapses by itself.
PLAN_CHANGE_LOCK_SECONDS = 60


class PlanChangeInProgress(Exception):
    """Another change of the same organization's plan is still running."""


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
        payment_method_id = _owned_payment_method(
            organization=organization, setup_intent_id=setup_intent_id
        )
        stripe_gateway.set_default_payment_method(
            customer_id=customer_id, payment_method_id=payment_method_id
        )
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


def customer_portal_url(*, organization: Organization, return_url: str) -> str:
    return stripe_gateway.customer_portal_url(
        customer_id=ensure_stripe_customer(organization=organization), return_url=return_url
    )


# --- Applying what Stripe says (webhook events and reconciliation) ------------------------

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
            target = default_plan()
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


def _next_invoice_number() -> str:
    year = timezone.now().year
    count = Invoice.objects.filter(number__startswith=f"IMG-{year}-").count()
    return f"IMG-{year}-{count + 1:06d}"


def _create_invoice(**fields) -> Invoice:
    # The number is sequential per year; a clash (two invoices at once) takes the next one.
    for _ in range(20):
        try:
            with transaction.atomic():
                return Invoice.objects.create(number=_next_invoice_number(), **fields)
        except IntegrityError as error:
            if "number" not in str(error):
                raise
    raise RuntimeError("Could not allocate an invoice number")


def apply_pack_payment(*, payment_intent: dict) -> Invoice | None:
    """A PaymentIntent succeeded: grant its purchase's credits and issue the invoice, once.

    What is granted is what the purchase recorded when it created this PaymentIntent, never
    what the event's metadata says, and only if the event's amount and currency are the
    purchase's. An event for a PaymentIntent no purchase created, or with another amount or
    currency, grants nothing and is logged as a warning; the caller still acknowledges it,
    since Stripe would only deliver the same event again. Events for a PaymentIntent
    already paid (one delivered twice under two event ids) return its invoice.
    """
    with transaction.atomic():
        # A second event for the same PaymentIntent waits here, then finds it paid.
        purchase = (
            PackPurchase.objects.select_for_update(of=("self",))
            .select_related("organization", "pack")
            .filter(stripe_payment_intent_id=payment_intent["id"])
            .first()
        )
        if purchase is None:
            if (payment_intent.get("metadata") or {}).get("pack"):
                logger.warning(
                    "Stripe PaymentIntent %s claims to pay for a pack, but no purchase created "
                    "it: nothing granted",
                    payment_intent["id"],
                )
            return None
        if purchase.status == PackPurchase.Status.SUCCEEDED:
            return Invoice.objects.filter(stripe_payment_intent_id=payment_intent["id"]).first()
        if not _pays_for(payment_intent=payment_intent, purchase=purchase):
            logger.warning(
                "Stripe PaymentIntent %s paid %s %s (received %s), purchase %s costs %s %s: "
                "nothing granted",
                payment_intent["id"],
                payment_intent.get("amount"),
                payment_intent.get("currency"),
                payment_intent.get("amount_received"),
                purchase.pk,
                purchase.amount_cents,
                purchase.currency,
            )
            return None
        return _complete_purchase(purchase=purchase)


def _pays_for(*, payment_intent: dict, purchase: PackPurchase) -> bool:
    amount = payment_intent.get("amount")
    # localstripe's PaymentIntents carry no amount_received; Stripe's always do.
    received = payment_intent.get("amount_received", amount)
    currency = str(payment_intent.get("currency") or "").lower()
    return amount == received == purchase.amount_cents and currency == purchase.currency.lower()


def _complete_purchase(*, purchase: PackPurchase) -> Invoice:
    pack_name = purchase.pack.name
    grant_credits(
        organization=purchase.organization,
        amount=purchase.credits,
        reference=f"stripe:payment_intent:{purchase.stripe_payment_intent_id}",
        kind=Kind.PURCHASE,
        memo=f"{pack_name} credit pack",
    )
    purchase.status = PackPurchase.Status.SUCCEEDED
    purchase.failure_message = ""
    purchase.save(update_fields=["status", "failure_message"])
    amount = purchase.amount_cents
    return _invoice_created(
        organization=purchase.organization,
        kind=Invoice.Kind.PACK,
        lines=[
            {
                "description": f"{pack_name} credit pack ({purchase.credits:,} credits)",
                "quantity": 1,
                "unit_amount": amount,
                "amount": amount,
            }
        ],
        subtotal=amount,
        total=amount,
        amount_paid=amount,
        currency=purchase.currency,
        credits_added=purchase.credits,
        stripe_payment_intent_id=purchase.stripe_payment_intent_id,
    )


def record_pack_payment_failure(*, payment_intent: dict) -> None:
    error = payment_intent.get("last_payment_error") or {}
    PackPurchase.objects.filter(stripe_payment_intent_id=payment_intent["id"]).exclude(
        status=PackPurchase.Status.SUCCEEDED
    ).update(
        status=PackPurchase.Status.FAILED,
        failure_message=(error.get("message") or "The payment failed.")[:500],
    )


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
    return _invoice_created(
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
        period_start=period_start,
        period_end=period_end,
    )


def _invoice_created(**fields) -> Invoice:
    invoice = _create_invoice(**fields)
    webhooks.emit_event(
        organization=invoice.organization,
        event_type=EventType.INVOICE_PAID,
        data=invoice_event_data(invoice),
    )
    transaction.on_commit(lambda: emails.send_invoice_email(invoice_id=invoice.pk))
    return invoice


def invoice_event_data(invoice: Invoice) -> dict:
    """The `data` of an `invoice.paid` webhook event."""
    return {
        "id": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "lines": invoice.lines,
        "subtotal": invoice.subtotal,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "currency": invoice.currency,
        "credits_added": invoice.credits_added,
        "paid_at": invoice.paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


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


def sync_stripe_catalog() -> dict:
    """Make sure Stripe has a monthly price for each paid plan and a product for each pack."""
    created = {"plans": [], "packs": []}
    for plan in Plan.objects.filter(monthly_price_cents__gt=0):
        price_id = stripe_gateway.ensure_plan_price(plan)
        if plan.stripe_price_id != price_id:
            plan.stripe_price_id = price_id
            plan.save(update_fields=["stripe_price_id"])
        created["plans"].append(price_id)
    for pack in CreditPack.objects.filter(active=True):
        product_id = stripe_gateway.ensure_pack_product(pack)
        if pack.stripe_product_id != product_id:
            pack.stripe_product_id = product_id
            pack.save(update_fields=["stripe_product_id"])
        created["packs"].append(product_id)
    return created

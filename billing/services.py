"""Every change to credits. Credits move only by appending CreditLedgerEntry rows.

Each entry is written together with the organization's balance in one transaction: a
conditional `UPDATE … RETURNING` moves the balance (and holds the row lock until commit),
then the entry is inserted with the balance it left. The UPDATE refuses to run when the
reference was already used, so every function here is idempotent on its reference, and
when the balance would go negative, so credits can never be spent twice.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Organization, User
from billing.credit_lots import EXPIRY_PREFIX, lots_for
from billing.models import CreditLedgerEntry, Plan
from billing.plans import DEFAULT_PLAN_SLUG, PLANS

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
    # savepoint=False: inside a caller's transaction (a job submission) this adds no
    # SAVEPOINT round trips, and any failure rolls the caller's work back with it.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(_MOVE_BALANCE_SQL, [amount, organization.pk, amount, reference])
            row = cursor.fetchone()
        entry = (
            None
            if row is None
            else CreditLedgerEntry.objects.create(
                organization=organization,
                kind=kind,
                amount=amount,
                balance_after=row[0],
                reference=reference,
                job_id=job_id,
                actor=actor,
                memo=memo,
                expires_at=expires_at,
            )
        )
    if entry is None:
        # Explained outside the block: raising inside it would doom the caller's transaction.
        return _explain_refusal(organization=organization, amount=amount, reference=reference)
    organization.credit_balance = row[0]
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


def grant_signup_credits(*, organization: Organization) -> CreditLedgerEntry | None:
    """Give a new organization on a free plan its first month of included credits."""
    plan = organization.plan
    if plan.is_paid or plan.monthly_credits <= 0:
        return None
    return _grant_included_credits(
        organization=organization, period_start=organization.created_at, plan=plan
    )


def grant_monthly_credits(
    *, organization: Organization, now: datetime | None = None
) -> CreditLedgerEntry | None:
    """On each sign-up anniversary, give a free-plan organization that month's credits.

    Idempotent per organization and period (reference `monthly:<org>:<YYYY-MM>`). The first
    period is granted at sign-up (grant_signup_credits); paid plans get theirs per invoice.
    """
    plan = organization.plan
    if plan.is_paid or plan.monthly_credits <= 0:
        return None
    index, period_start = included_credit_period(
        organization=organization, now=now or timezone.now()
    )
    if index < 1:
        return None
    return _grant_included_credits(organization=organization, period_start=period_start, plan=plan)

"""Credits given for nothing: a personal free-plan organization's monthly included credits
(the first at sign-up), and the expiry of what is left of a grant once its time is up."""

from calendar import monthrange
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Organization
from billing.credit_lots import EXPIRY_PREFIX, lots_for
from billing.models import CreditLedgerEntry, Plan
from billing.services.ledger import expire_grant, grant_credits

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
                expire_grant(
                    organization=organization,
                    grant_reference=lot.reference,
                    amount=amount,
                    expires_at=lot.expires_at,
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

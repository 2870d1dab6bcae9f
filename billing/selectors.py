from dataclasses import dataclass
from datetime import date

from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import Organization
from billing.credit_lots import lots_for
from billing.models import (
    ApiKeyMonthlySpend,
    AutoRecharge,
    AutoRechargeAttempt,
    CreditLedgerEntry,
    CreditPack,
    Invoice,
    PackPurchase,
    Plan,
    SavedCard,
    Subscription,
)
from billing.months import month_of


def ledger_mismatches() -> list[dict]:
    """Organizations whose balance column differs from the sum of their ledger."""
    ledger_sum = (
        CreditLedgerEntry.objects.filter(organization=OuterRef("pk"))
        .values("organization")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return list(
        Organization.objects.annotate(ledger_sum=Coalesce(Subquery(ledger_sum), Value(0)))
        .exclude(credit_balance=F("ledger_sum"))
        .values("id", "slug", "credit_balance", "ledger_sum")
        .order_by("id")
    )


def credit_balance(*, organization: Organization) -> int:
    """The balance as committed now (the organization object may be a cached copy)."""
    return Organization.objects.values_list("credit_balance", flat=True).get(pk=organization.pk)


def ledger_entries(*, organization: Organization):
    return (
        CreditLedgerEntry.objects.filter(organization=organization)
        .select_related("api_key")
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class BudgetUsage:
    """The month under way against the organization's budget (None: no budget)."""

    month: date
    spent: int
    budget: int | None

    @property
    def percent(self) -> int | None:
        return None if not self.budget else min(self.spent * 100 // self.budget, 100)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.spent, 0)


def budget_usage(*, organization: Organization, now=None) -> BudgetUsage:
    """What this month's jobs took, against the budget as committed now."""
    month = month_of(now or timezone.now())
    budget, spend_month, spent = Organization.objects.values_list(
        "monthly_credit_budget", "spend_month", "month_spend"
    ).get(pk=organization.pk)
    return BudgetUsage(month=month, spent=spent if spend_month == month else 0, budget=budget)


def api_key_monthly_spend(*, organization: Organization, month) -> dict[int, int]:
    """Credits each of the organization's keys' jobs took in `month`, by key id."""
    return dict(
        ApiKeyMonthlySpend.objects.filter(
            api_key__organization=organization, month=month
        ).values_list("api_key_id", "credits")
    )


def expiring_credits(*, organization: Organization, now=None) -> list[dict]:
    """What expires when: `[{"expires_at", "credits"}]`, soonest first (see billing.credit_lots)."""
    now = now or timezone.now()
    totals: dict = {}
    for lot in lots_for(organization=organization, since=now):
        if lot.expires_at is not None and lot.expires_at > now and lot.remaining > 0:
            totals[lot.expires_at] = totals.get(lot.expires_at, 0) + lot.remaining
    return [{"expires_at": when, "credits": credits} for when, credits in sorted(totals.items())]


def invoices(*, organization: Organization):
    return Invoice.objects.filter(organization=organization).order_by("-created_at", "-id")


def invoice(*, organization: Organization, number: str) -> Invoice:
    """The organization's invoice `number`; another organization's is Invoice.DoesNotExist."""
    return Invoice.objects.get(organization=organization, number=number)


def recent_pack_purchases(*, organization: Organization, limit: int = 5):
    return (
        PackPurchase.objects.filter(organization=organization)
        .select_related("pack")
        .order_by("-created_at")[:limit]
    )


def subscription(*, organization: Organization) -> Subscription | None:
    return Subscription.objects.filter(organization=organization).select_related("plan").first()


def plans():
    return Plan.objects.order_by("sort_order")


def active_packs():
    return CreditPack.objects.filter(active=True).order_by("price_cents")


def pack(*, pack_id: int) -> CreditPack:
    return CreditPack.objects.get(pk=pack_id, active=True)


def plan(*, slug: str) -> Plan:
    return Plan.objects.get(slug=slug)


def billing_emails_for(*, organization: Organization) -> list[str]:
    """Where billing mail goes: the billing email, else every owner."""
    if organization.billing_email:
        return [organization.billing_email]
    return account_selectors.owner_emails(organization=organization)


def owner_emails(*, organization: Organization) -> list[str]:
    owners = account_selectors.owner_emails(organization=organization)
    return owners or billing_emails_for(organization=organization)


def saved_card(*, organization: Organization) -> SavedCard | None:
    return SavedCard.objects.filter(organization=organization).first()


def auto_recharge(*, organization: Organization) -> AutoRecharge | None:
    return AutoRecharge.objects.filter(organization=organization).select_related("pack").first()


def recent_auto_recharges(*, organization: Organization, limit: int = 5):
    return (
        AutoRechargeAttempt.objects.filter(organization=organization)
        .select_related("purchase__pack")
        .order_by("-created_at", "-id")[:limit]
    )

"""Monthly budgets: the organization's budget, each API key's limit, and the owners' alerts.

A month is a calendar month in UTC. What a month's jobs took (their reservations less their
refunds) is kept in two counters, the organization's and the key's, moved by the same
statement that moves the balance (billing.services.ledger), under the organization's row
lock: a reservation reads the month's spend it leaves, exactly, with no sum over the
ledger, and is refused (rolled back with everything else) when that passes a budget.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.errors import NotAllowed
from accounts.models import ApiKey, Organization, User
from billing import emails
from billing.errors import BudgetExceeded
from billing.models import ApiKeyMonthlySpend, BudgetAlert, CreditLedgerEntry
from billing.months import month_of

Threshold = BudgetAlert.Threshold
Budget = BudgetExceeded.Budget


@dataclass(frozen=True)
class MonthlySpend:
    """A month's spend as a reservation left it, and the budgets that apply to it."""

    month: date
    organization_spent: int
    organization_budget: int | None
    api_key_spent: int | None = None
    api_key_limit: int | None = None


def refuse_over_budget(*, spend: MonthlySpend, required: int) -> None:
    """Raise BudgetExceeded when the reservation of `required` credits that left `spend`
    passed the organization's budget or the key's limit; its caller then rolls it back."""
    checks = (
        (Budget.ORGANIZATION, spend.organization_budget, spend.organization_spent),
        (Budget.API_KEY, spend.api_key_limit, spend.api_key_spent),
    )
    for budget, limit, spent in checks:
        if limit is not None and spent is not None and spent > limit:
            raise BudgetExceeded(
                budget=budget,
                limit=limit,
                remaining=max(limit - (spent - required), 0),
                required=required,
                month=spend.month,
            )


def _crossed(threshold: int, *, budget: int, before: int, after: int) -> bool:
    # Integer arithmetic: 80 % of a 999-credit budget is reached at 799.2, so at 800.
    return before * 100 < threshold * budget <= after * 100


def announce_budget_use(*, organization: Organization, spend: MonthlySpend, taken: int) -> None:
    """Alert the owners when the reservation of `taken` credits that left `spend` took the
    month to 80 % or 100 % of the organization's budget. Costs nothing unless it did."""
    budget = spend.organization_budget
    if not budget:
        return
    before = spend.organization_spent - taken
    crossed = [
        threshold
        for threshold in Threshold.values
        if _crossed(threshold, budget=budget, before=before, after=spend.organization_spent)
    ]
    if crossed:
        _alert(
            organization_id=organization.pk,
            month=spend.month,
            thresholds=crossed,
            budget=budget,
            spent=spend.organization_spent,
        )


def announce_budget_used_up(*, organization: Organization, refusal: BudgetExceeded) -> None:
    """A submission was refused for the organization's budget: the month's budget is used
    up for it, so the owners hear of 100 % (once) even when the spend never equals it.

    Call it after the refused transaction rolled back.
    """
    if refusal.budget != Budget.ORGANIZATION:
        return
    with transaction.atomic():
        _alert(
            organization_id=organization.pk,
            month=refusal.month,
            thresholds=[Threshold.USED_UP],
            budget=refusal.limit,
            spent=refusal.limit - refusal.remaining,
        )


_RECORD_ALERT_SQL = f"""
    INSERT INTO {BudgetAlert._meta.db_table} (organization_id, month, threshold, budget, created_at)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (organization_id, month, threshold) DO NOTHING
    RETURNING id
"""  # noqa: S608 - the table name comes from the model, values are parameters


def _alert(
    *, organization_id: int, month: date, thresholds: list[int], budget: int, spent: int
) -> None:
    """Record each threshold once per month; email the highest newly recorded one on commit.

    The unique row decides: of concurrent submissions crossing a threshold, one inserts it.
    """
    recorded = []
    now = timezone.now()
    with connection.cursor() as cursor:
        for threshold in thresholds:
            cursor.execute(_RECORD_ALERT_SQL, [organization_id, month, threshold, budget, now])
            row = cursor.fetchone()
            if row is not None:
                recorded.append((threshold, row[0]))
    if not recorded:
        return
    _, alert_id = max(recorded)
    # robust: a mail server that fails must not turn an accepted submission into an error.
    transaction.on_commit(
        lambda: emails.send_budget_alert_email(alert_id=alert_id, spent=spent), robust=True
    )


def _require_manager(*, organization: Organization, actor: User, what: str) -> None:
    membership = account_selectors.membership_for(user=actor, organization=organization)
    if membership is None or not membership.can_manage:
        raise NotAllowed(f"Only owners and admins can set {what}.")


def set_organization_budget(
    *, organization: Organization, actor: User, budget: int | None
) -> Organization:
    """Set the organization's monthly credit budget (None: no budget); owners and admins.

    It applies from the next submission, to the whole month under way.
    """
    _require_manager(organization=organization, actor=actor, what="the monthly budget")
    if budget is not None and budget < 1:
        raise ValueError("A budget is at least one credit")
    organization.monthly_credit_budget = budget
    organization.save(update_fields=["monthly_credit_budget"])
    return organization


def set_api_key_credit_limit(*, api_key: ApiKey, actor: User, limit: int | None) -> ApiKey:
    """Set the key's monthly credit limit (None: no limit of its own); owners and admins.

    Only a key with a limit has its month counted as it goes (billing.services.ledger), so
    a new limit starts from what the key's jobs took this month so far, counted here once,
    under the organization's row lock that every reservation takes first.
    """
    _require_manager(
        organization=api_key.organization, actor=actor, what="an API key's credit limit"
    )
    if limit is not None and limit < 1:
        raise ValueError("A limit is at least one credit")
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=api_key.organization_id).first()
        if limit is not None:
            month = month_of(timezone.now())
            taken = CreditLedgerEntry.objects.filter(
                organization_id=api_key.organization_id,
                api_key=api_key,
                kind__in=[CreditLedgerEntry.Kind.RESERVE, CreditLedgerEntry.Kind.REFUND],
                created_at__gte=datetime.combine(month, time.min, tzinfo=UTC),
            ).aggregate(total=Sum("amount"))["total"]
            ApiKeyMonthlySpend.objects.update_or_create(
                api_key=api_key, month=month, defaults={"credits": max(-(taken or 0), 0)}
            )
        api_key.monthly_credit_limit = limit
        api_key.save(update_fields=["monthly_credit_limit"])
    return api_key

"""Every change to credits. Credits move only by appending CreditLedgerEntry rows.

Each entry is written together with the organization's balance in one transaction: a
conditional `UPDATE … RETURNING` moves the balance (and holds the row lock until commit),
and the entry is inserted with the balance it left — on PostgreSQL in the same statement
(the UPDATE is a data-modifying CTE the INSERT selects from), elsewhere right after it. The
UPDATE refuses to run when the reference was already used, so every function here is
idempotent on its reference, and when the balance would go negative, so credits can never
be spent twice.

A job's reservation and its refund also move the month's spend counters, the
organization's and the key's (billing.services.budgets), in that same statement on
PostgreSQL: the budgets are checked against exactly what the month took, at no extra round
trip.
"""

import functools
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, Organization, User
from billing.credit_lots import EXPIRY_PREFIX
from billing.errors import InsufficientCredits
from billing.models import ApiKeyMonthlySpend, CreditLedgerEntry, OrganizationMonthlySpend
from billing.months import month_of
from billing.services import budgets
from billing.services.low_balance import notify_if_credits_low
from common import metrics
from common.fastpaths import orm

Kind = CreditLedgerEntry.Kind


_MOVE_BALANCE_SQL = f"""
    UPDATE {Organization._meta.db_table}
       SET credit_balance = credit_balance + %s
     WHERE id = %s
       AND credit_balance + %s >= 0
       AND NOT EXISTS (SELECT 1 FROM {CreditLedgerEntry._meta.db_table} WHERE reference = %s)
 RETURNING credit_balance, monthly_credit_budget
"""  # noqa: S608 - table names come from the models, values are parameters

# Every column of an entry but its id; balance_after is the balance the move left.
_ENTRY_FIELDS = [f for f in CreditLedgerEntry._meta.concrete_fields if not f.primary_key]
_BALANCE_AFTER = CreditLedgerEntry._meta.get_field("balance_after")
# The columns sent as parameters: all of them but balance_after.
_ENTRY_VALUE_FIELDS = [f for f in _ENTRY_FIELDS if f is not _BALANCE_AFTER]

_INSERT_MOVED_ENTRY_SQL = f"""
INSERT INTO {CreditLedgerEntry._meta.db_table} ({", ".join(f.column for f in _ENTRY_FIELDS)})
SELECT {", ".join("moved.credit_balance" if f is _BALANCE_AFTER else "%s" for f in _ENTRY_FIELDS)}
  FROM moved
RETURNING {CreditLedgerEntry._meta.pk.column}, {_BALANCE_AFTER.column}
"""  # noqa: S608 - table and column names come from the models, values are parameters

_MOVE_BALANCE_AND_INSERT_SQL = f"WITH moved AS ({_MOVE_BALANCE_SQL}) {_INSERT_MOVED_ENTRY_SQL}"


@dataclass(frozen=True)
class _SpendMove:
    """What a job's entry does to the month's spend: a reservation adds its credits to the
    counters of its month, a refund takes them off the counters of the reservation's month."""

    month: date
    credits: int
    api_key_id: int | None

    @property
    def gives_back(self) -> bool:
        return self.credits < 0


_KEY_LIMIT_SQL = f"SELECT monthly_credit_limit FROM {ApiKey._meta.db_table} WHERE id = %s"  # noqa: S608
# Each counter: its table, its owner's column, and what its statements answer besides the
# month's spend: the key's limit comes along with the key's counter, at no round trip.
_ORG_SPEND = (OrganizationMonthlySpend._meta.db_table, "organization_id", "NULL")
_KEY_SPEND = (ApiKeyMonthlySpend._meta.db_table, "api_key_id", f"({_KEY_LIMIT_SQL})")


def _count_spend_sql(table: str, owner: str, limit: str, *, after_move: bool) -> str:
    """Add to a month's counter (made on the month's first reservation)."""
    source = "SELECT %s, %s, %s FROM moved" if after_move else "VALUES (%s, %s, %s)"
    return f"""
        INSERT INTO {table} ({owner}, month, credits) {source}
        ON CONFLICT ({owner}, month) DO UPDATE SET credits = {table}.credits + EXCLUDED.credits
        RETURNING credits, {limit} AS spend_limit"""


def _give_back_spend_sql(table: str, owner: str, limit: str, *, after_move: bool) -> str:
    """Take a refund off its month's counter, never below zero: a reservation made before
    the counters existed was never counted."""
    moved = "AND EXISTS (SELECT 1 FROM moved)" if after_move else ""
    return f"""
        UPDATE {table} SET credits = CASE WHEN credits > %s THEN credits - %s ELSE 0 END
         WHERE {owner} = %s AND month = %s {moved}
        RETURNING credits, {limit} AS spend_limit"""  # noqa: S608 - names come from the models


def _spend_sql(counter: tuple[str, str, str], spend: _SpendMove, *, after_move: bool) -> str:
    build = _give_back_spend_sql if spend.gives_back else _count_spend_sql
    return build(*counter, after_move=after_move)


def _spend_params(counter: tuple[str, str, str], owner_id: int, spend: _SpendMove) -> list:
    move = (
        [-spend.credits, -spend.credits, owner_id, spend.month]
        if spend.gives_back
        else [owner_id, spend.month, spend.credits]
    )
    return move + ([owner_id] if counter is _KEY_SPEND else [])


@functools.cache
def _move_balance_append_and_spend_sql(*, gives_back: bool, with_key: bool) -> str:
    """The one statement of a job's entry on PostgreSQL: the balance, the entry and the
    month's counters, answering the entry, the budget, the spend and the key's limit."""
    spend = _SpendMove(month=date.min, credits=-1 if gives_back else 1, api_key_id=None)
    key_spend = (
        f", key_spend AS ({_spend_sql(_KEY_SPEND, spend, after_move=True)})" if with_key else ""
    )
    key_columns = "(SELECT credits FROM key_spend), (SELECT spend_limit FROM key_spend)"
    return f"""
WITH moved AS ({_MOVE_BALANCE_SQL}),
inserted AS ({_INSERT_MOVED_ENTRY_SQL}),
org_spend AS ({_spend_sql(_ORG_SPEND, spend, after_move=True)}){key_spend}
SELECT inserted.{CreditLedgerEntry._meta.pk.column}, inserted.{_BALANCE_AFTER.column},
       moved.monthly_credit_budget, (SELECT credits FROM org_spend),
       {key_columns if with_key else "NULL, NULL"}
  FROM inserted CROSS JOIN moved
"""  # noqa: S608 - table and column names come from the models, values are parameters


def _move_balance_and_append(
    entry: CreditLedgerEntry, spend: _SpendMove | None = None
) -> budgets.MonthlySpend | bool | None:
    """Move the balance by `entry.amount` and insert `entry` with the balance it left, and
    move the month's spend by `spend`.

    False when the move is refused (reference used, balance short): nothing was written.
    Otherwise the month's spend as the move left it (None without `spend`).
    """
    move = [entry.amount, entry.organization_id, entry.amount, entry.reference]
    # One round trip less under the organization's row lock, which every submission of the
    # organization queues behind; SQLite has no data-modifying CTEs and takes several.
    one_statement = connection.vendor == "postgresql"
    with_key = spend is not None and spend.api_key_id is not None
    with connection.cursor() as cursor:
        if one_statement:
            values = orm.insert_values(entry, _ENTRY_VALUE_FIELDS)
            if spend is None:
                cursor.execute(_MOVE_BALANCE_AND_INSERT_SQL, move + values)
            else:
                sql = _move_balance_append_and_spend_sql(
                    gives_back=spend.gives_back, with_key=with_key
                )
                params = move + values + _spend_params(_ORG_SPEND, entry.organization_id, spend)
                if with_key:
                    params += _spend_params(_KEY_SPEND, spend.api_key_id, spend)
                cursor.execute(sql, params)
        else:
            cursor.execute(_MOVE_BALANCE_SQL, move)
        row = cursor.fetchone()
        if row is None:
            return False
        if one_statement:
            entry.pk, entry.balance_after = row[:2]
            orm.mark_saved(entry)
            spent = row[2:]
        else:
            entry.balance_after = row[0]
            entry.save(force_insert=True)
            spent = _move_spend_separately(cursor, entry, spend, budget=row[1])
    if spend is None:
        return None
    budget, organization_spent, key_spent, key_limit = spent
    return budgets.MonthlySpend(
        month=spend.month,
        organization_spent=organization_spent or 0,
        organization_budget=budget,
        api_key_spent=key_spent,
        api_key_limit=key_limit,
    )


def _move_spend_separately(cursor, entry, spend: _SpendMove | None, *, budget) -> tuple:
    """The counters' statements one by one, for databases without data-modifying CTEs."""
    if spend is None:
        return (budget, None, None, None)
    counters = [(_ORG_SPEND, entry.organization_id)]
    if spend.api_key_id is not None:
        counters.append((_KEY_SPEND, spend.api_key_id))
    answers = []
    for counter, owner_id in counters:
        cursor.execute(
            _spend_sql(counter, spend, after_move=False), _spend_params(counter, owner_id, spend)
        )
        answers.append(cursor.fetchone() or (None, None))
    key_spent, key_limit = answers[1] if len(answers) > 1 else (None, None)
    return (budget, answers[0][0], key_spent, key_limit)


def _append_entry(
    *,
    organization: Organization,
    kind: str,
    amount: int,
    reference: str,
    job_id=None,
    api_key_id: int | None = None,
    actor: User | None = None,
    memo: str = "",
    expires_at: datetime | None = None,
    spend_month: date | None = None,
    created_at: datetime | None = None,
) -> CreditLedgerEntry:
    """Append the entry; with `spend_month`, it is a job's and moves that month's spend."""
    if amount == 0:
        raise ValueError("A ledger entry moves at least one credit")
    entry = CreditLedgerEntry(
        organization=organization,
        kind=kind,
        amount=amount,
        reference=reference,
        job_id=job_id,
        api_key_id=api_key_id,
        actor=actor,
        memo=memo,
        expires_at=expires_at,
        created_at=created_at or timezone.now(),
    )
    spend = None
    if spend_month is not None:
        spend = _SpendMove(month=spend_month, credits=-amount, api_key_id=api_key_id)
    # savepoint=False: inside a caller's transaction (a job submission) this adds no
    # SAVEPOINT round trips, and any failure rolls the caller's work back with it.
    with transaction.atomic(savepoint=False):
        moved = _move_balance_and_append(entry, spend)
        if moved and spend is not None and not spend.gives_back:
            # Raised inside the block on purpose: the caller's transaction is doomed, so
            # the balance, the entry and the counters all roll back with the submission.
            budgets.refuse_over_budget(spend=moved, required=spend.credits)
    if moved is False:
        # Explained outside the block: raising inside it would doom the caller's transaction.
        return _explain_refusal(organization=organization, amount=amount, reference=reference)
    organization.credit_balance = entry.balance_after
    transaction.on_commit(lambda: metrics.LEDGER_OPERATIONS.labels(kind).inc())
    if amount < 0:
        notify_if_credits_low(organization, entry.balance_after - amount, entry.balance_after)
    if moved and not spend.gives_back:
        budgets.announce_budget_use(organization=organization, spend=moved, taken=spend.credits)
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
    *,
    organization: Organization,
    amount: int,
    reference: str,
    job_id=None,
    api_key_id: int | None = None,
) -> CreditLedgerEntry:
    """Take `amount` credits for a job (submitted with the key `api_key_id`, if any);
    idempotent on `reference`.

    Raises InsufficientCredits when the balance is short, and BudgetExceeded when the
    month's spend would pass the organization's budget or the key's limit: that one is
    raised inside the caller's transaction, which must roll back (it cannot commit).
    """
    if amount <= 0:
        raise ValueError("A reservation takes a positive number of credits")
    # The month the entry is dated in is the month it counts in (and its refund gives back).
    now = timezone.now()
    return _append_entry(
        organization=organization,
        kind=Kind.RESERVE,
        amount=-amount,
        reference=reference,
        job_id=job_id,
        api_key_id=api_key_id,
        spend_month=month_of(now),
        created_at=now,
    )


def refund_reservation(
    *, organization: Organization, reservation_reference: str, memo: str = ""
) -> CreditLedgerEntry:
    """Give back everything a reservation took, to the balance and to the budgets of the
    reservation's month; idempotent (a second refund is a no-op)."""
    reservation = CreditLedgerEntry.objects.get(
        organization=organization, reference=reservation_reference, kind=Kind.RESERVE
    )
    return _append_entry(
        organization=organization,
        kind=Kind.REFUND,
        amount=-reservation.amount,
        reference=f"{reservation_reference}:refund",
        job_id=reservation.job_id,
        api_key_id=reservation.api_key_id,
        memo=memo,
        spend_month=month_of(reservation.created_at),
    )


def expire_grant(
    *, organization: Organization, grant_reference: str, amount: int, expires_at: datetime
) -> CreditLedgerEntry:
    """Take the `amount` credits left of the grant `grant_reference`; once per grant."""
    return _append_entry(
        organization=organization,
        kind=Kind.EXPIRY,
        amount=-amount,
        reference=f"{EXPIRY_PREFIX}{grant_reference}",
        memo=f"Unused credits expired on {expires_at:%Y-%m-%d}",
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

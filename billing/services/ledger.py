"""Every change to credits. Credits move only by appending CreditLedgerEntry rows.

Each entry is written together with the organization's balance in one transaction: a
conditional `UPDATE … RETURNING` moves the balance (and holds the row lock until commit),
and the entry is inserted with the balance it left — on PostgreSQL in the same statement
(the UPDATE is a data-modifying CTE the INSERT selects from), elsewhere right after it. The
UPDATE refuses to run when the reference was already used, so every function here is
idempotent on its reference, and when the balance would go negative, so credits can never
be spent twice.

A job's reservation and its refund also move the month's spend (billing.services.budgets):
the organization's on its own row, in the same UPDATE, and the key's counter, in the same
statement on PostgreSQL: the budgets are checked against exactly what the month took, at
no extra round trip.
"""

import functools
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, Organization, User
from billing.credit_lots import EXPIRY_PREFIX
from billing.errors import InsufficientCredits
from billing.models import ApiKeyMonthlySpend, AutoRecharge, BudgetAlert, CreditLedgerEntry
from billing.months import month_of
from billing.services import budgets
from billing.services.auto_recharge import open_recharge_if_low
from billing.services.low_balance import notify_if_credits_low
from common import db, metrics
from common.fastpaths import orm

Kind = CreditLedgerEntry.Kind


_MOVE_BALANCE_TEMPLATE = f"""
    UPDATE {Organization._meta.db_table}
       SET credit_balance = credit_balance + %s{{spend}}
     WHERE id = %s
       AND credit_balance + %s >= 0
       AND NOT EXISTS (SELECT 1 FROM {CreditLedgerEntry._meta.db_table} WHERE reference = %s)
 RETURNING credit_balance, monthly_credit_budget, month_spend,
           -- The auto-recharge threshold, if on: read here, the rule costs no round trip.
           (SELECT threshold FROM {AutoRecharge._meta.db_table}
             WHERE organization_id = {Organization._meta.db_table}.id AND enabled)
           AS recharge_threshold,
           low_credit_threshold
"""  # noqa: S608 - table names come from the models, values are parameters
_MOVE_BALANCE_SQL = _MOVE_BALANCE_TEMPLATE.format(spend="")
# A reservation counts in its month, the organization's month restarting at its first one.
_MOVE_BALANCE_AND_COUNT_SQL = _MOVE_BALANCE_TEMPLATE.format(
    spend=""",
           month_spend = CASE WHEN spend_month = %s THEN month_spend ELSE 0 END + %s,
           spend_month = %s"""
)
# A refund gives back to its reservation's month, if that is still the month counted, never
# below zero: a reservation made before the counters existed was never counted.
_MOVE_BALANCE_AND_GIVE_BACK_SQL = _MOVE_BALANCE_TEMPLATE.format(
    spend=""",
           month_spend = CASE WHEN spend_month <> %s THEN month_spend
                              WHEN month_spend > %s THEN month_spend - %s ELSE 0 END"""
)

# Every column of an entry but its id; balance_after is the balance the move left.
_ENTRY_FIELDS = [f for f in CreditLedgerEntry._meta.concrete_fields if not f.primary_key]
_BALANCE_AFTER = CreditLedgerEntry._meta.get_field("balance_after")
# The columns sent as parameters: all of them but balance_after.
_ENTRY_VALUE_FIELDS = [f for f in _ENTRY_FIELDS if f is not _BALANCE_AFTER]

_INSERT_MOVED_ENTRY_SQL = f"""
INSERT INTO {CreditLedgerEntry._meta.db_table} ({", ".join(f.column for f in _ENTRY_FIELDS)})
SELECT {", ".join("moved.credit_balance" if f is _BALANCE_AFTER else "%s" for f in _ENTRY_FIELDS)}
  FROM moved
RETURNING {CreditLedgerEntry._meta.pk.column}, {_BALANCE_AFTER.column},
          (SELECT recharge_threshold FROM moved)
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


_KEY_SPEND_TABLE = ApiKeyMonthlySpend._meta.db_table
_KEY_LIMIT_SQL = f"SELECT monthly_credit_limit FROM {ApiKey._meta.db_table} WHERE id = %s"  # noqa: S608


def _count_key_spend_sql(*, after_move: bool) -> str:
    """Add to the key's month (its counter made on the month's first reservation), for a key
    with a limit only: a key without one costs an index probe, not a row written. The
    key's limit is read along, at no round trip."""
    source = "SELECT %s, %s, %s FROM moved" if after_move else "SELECT %s, %s, %s"
    table = _KEY_SPEND_TABLE
    return f"""
        INSERT INTO {table} (api_key_id, month, credits) {source}
         WHERE EXISTS (SELECT 1 FROM {ApiKey._meta.db_table}
                        WHERE id = %s AND monthly_credit_limit IS NOT NULL)
        ON CONFLICT (api_key_id, month) DO UPDATE SET credits = {table}.credits + EXCLUDED.credits
        RETURNING credits, ({_KEY_LIMIT_SQL}) AS spend_limit"""  # noqa: S608


def _give_back_key_spend_sql(*, after_move: bool) -> str:
    """Take a refund off its key's month, never below zero (as the organization's)."""
    moved = "AND EXISTS (SELECT 1 FROM moved)" if after_move else ""
    return f"""
        UPDATE {_KEY_SPEND_TABLE}
           SET credits = CASE WHEN credits > %s THEN credits - %s ELSE 0 END
         WHERE api_key_id = %s AND month = %s {moved}
        RETURNING credits, ({_KEY_LIMIT_SQL}) AS spend_limit"""  # noqa: S608


def _key_spend_sql(spend: _SpendMove, *, after_move: bool) -> str:
    build = _give_back_key_spend_sql if spend.gives_back else _count_key_spend_sql
    return build(after_move=after_move)


def _key_spend_params(spend: _SpendMove) -> list:
    if spend.gives_back:
        return [-spend.credits, -spend.credits, spend.api_key_id, spend.month, spend.api_key_id]
    return [spend.api_key_id, spend.month, spend.credits, spend.api_key_id, spend.api_key_id]


def _move_sql(spend: _SpendMove | None) -> str:
    if spend is None:
        return _MOVE_BALANCE_SQL
    return _MOVE_BALANCE_AND_GIVE_BACK_SQL if spend.gives_back else _MOVE_BALANCE_AND_COUNT_SQL


def _move_params(entry: CreditLedgerEntry, spend: _SpendMove | None) -> list:
    if spend is None:
        spent = []
    elif spend.gives_back:
        spent = [spend.month, -spend.credits, -spend.credits]
    else:
        spent = [spend.month, spend.credits, spend.month]
    return [entry.amount, *spent, entry.organization_id, entry.amount, entry.reference]


def _job_entry_ctes(*, gives_back: bool, with_key: bool) -> str:
    """A job's entry on PostgreSQL, as the common table expressions of one statement: the
    balance and the organization's month (`moved`), the entry (`inserted`) and the key's
    month (`key_spend`)."""
    spend = _SpendMove(month=date.min, credits=-1 if gives_back else 1, api_key_id=None)
    key_spend = f", key_spend AS ({_key_spend_sql(spend, after_move=True)})" if with_key else ""
    return f"WITH moved AS ({_move_sql(spend)}), inserted AS ({_INSERT_MOVED_ENTRY_SQL}){key_spend}"


@functools.cache
def _move_balance_append_and_spend_sql(*, gives_back: bool, with_key: bool) -> str:
    """The one statement of a job's entry on PostgreSQL, answering the entry, the
    auto-recharge threshold, the budget, the organization's spend, the key's spend and its
    limit."""
    key_columns = "(SELECT credits FROM key_spend), (SELECT spend_limit FROM key_spend)"
    return f"""
{_job_entry_ctes(gives_back=gives_back, with_key=with_key)}
SELECT inserted.{CreditLedgerEntry._meta.pk.column}, inserted.{_BALANCE_AFTER.column},
       moved.recharge_threshold, moved.monthly_credit_budget, moved.month_spend,
       {key_columns if with_key else "NULL, NULL"}
  FROM inserted CROSS JOIN moved
"""  # noqa: S608 - table and column names come from the models, values are parameters


def _crossed_sql(threshold: str, *, before: str, after: str) -> str:
    """SQL for `threshold` crossed downwards, as the credits-low and auto-recharge rules
    test it: before >= threshold > after."""
    return f"({before} >= {threshold} AND {threshold} > {after})"


def _budget_alert_sql(percent: int) -> str:
    """SQL for the month's spend reaching `percent` of the budget, as budgets._crossed."""
    budget = "moved.monthly_credit_budget"
    return (
        f"({budget} > 0 AND (moved.month_spend - %s) * 100 < {percent} * {budget}"
        f" AND {percent} * {budget} <= moved.month_spend * 100)"
    )


@functools.cache
def _reserve_unless_notable_sql(*, with_key: bool) -> str:
    """A reservation's one statement that calls decline_quick_path() unless it went through
    with nothing to explain or announce. Every test is on the organization's row as the
    reservation left it (RETURNING, under its lock), so concurrent reservations see each
    other's; each takes the reservation's credits as a parameter."""
    before = "moved.credit_balance + %s"
    notable = [
        "moved.credit_balance IS NULL",  # refused: the balance short or the reference used
        _crossed_sql("moved.low_credit_threshold", before=before, after="moved.credit_balance"),
        "moved.recharge_threshold IS NOT NULL AND "
        + _crossed_sql("moved.recharge_threshold", before=before, after="moved.credit_balance"),
        "moved.month_spend > moved.monthly_credit_budget",
        *(_budget_alert_sql(percent) for percent in BudgetAlert.Threshold.values),
    ]
    if with_key:
        notable.append("key_spend.credits > key_spend.spend_limit")
    key_join = "LEFT JOIN key_spend ON true" if with_key else ""
    return f"""
{_job_entry_ctes(gives_back=False, with_key=with_key)}
SELECT CASE WHEN {" OR ".join(f"({test})" for test in notable)} THEN decline_quick_path() END
  FROM (SELECT 1) AS one LEFT JOIN moved ON true {key_join}
"""  # noqa: S608 - table and column names come from the models, values are parameters


def _notable_params(credits: int) -> list:
    # One per %s of _reserve_unless_notable_sql: two crossings and the budget's thresholds.
    return [credits] * (2 + len(BudgetAlert.Threshold.values))


@dataclass(frozen=True)
class _Moved:
    """What a move that went through answers besides the entry."""

    # The organization's auto-recharge threshold; None when auto-recharge is off.
    recharge_threshold: int | None
    # The month's spend as the move left it, for a job's entry.
    spend: budgets.MonthlySpend | None = None


def _move_balance_and_append(
    entry: CreditLedgerEntry, spend: _SpendMove | None = None
) -> _Moved | None:
    """Move the balance by `entry.amount` and insert `entry` with the balance it left, and
    move the month's spend by `spend`.

    None when the move is refused (reference used, balance short): nothing was written.
    """
    move = _move_params(entry, spend)
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
                key = _key_spend_params(spend) if with_key else []
                cursor.execute(sql, move + values + key)
        else:
            cursor.execute(_move_sql(spend), move)
        row = cursor.fetchone()
        if row is None:
            return None
        if one_statement:
            entry.pk, entry.balance_after, recharge_threshold = row[:3]
            orm.mark_saved(entry)
            spent = row[3:]
        else:
            entry.balance_after, budget, month_spend, recharge_threshold = row[:4]
            entry.save(force_insert=True)
            key_spent = (None, None)
            if with_key:
                cursor.execute(_key_spend_sql(spend, after_move=False), _key_spend_params(spend))
                key_spent = cursor.fetchone() or (None, None)
            spent = (budget, month_spend, *key_spent)
    if spend is None:
        return _Moved(recharge_threshold=recharge_threshold)
    budget, organization_spent, key_spent, key_limit = spent
    return _Moved(
        recharge_threshold=recharge_threshold,
        spend=budgets.MonthlySpend(
            month=spend.month,
            organization_spent=organization_spent,
            organization_budget=budget,
            api_key_spent=key_spent,
            api_key_limit=key_limit,
        ),
    )


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
        if moved is not None and moved.spend is not None and not spend.gives_back:
            # Raised inside the block on purpose: the caller's transaction is doomed, so
            # the balance, the entry and the counters all roll back with the submission.
            budgets.refuse_over_budget(spend=moved.spend, required=spend.credits)
    if moved is None:
        # Explained outside the block: raising inside it would doom the caller's transaction.
        return _explain_refusal(organization=organization, amount=amount, reference=reference)
    organization.credit_balance = entry.balance_after
    transaction.on_commit(lambda: metrics.LEDGER_OPERATIONS.labels(kind).inc())
    if amount < 0:
        balance_before = entry.balance_after - amount
        notify_if_credits_low(organization, balance_before, entry.balance_after)
        if moved.recharge_threshold is not None:
            open_recharge_if_low(
                organization=organization,
                balance_before=balance_before,
                balance_after=entry.balance_after,
                threshold=moved.recharge_threshold,
            )
    if moved.spend is not None and not spend.gives_back:
        budgets.announce_budget_use(
            organization=organization, spend=moved.spend, taken=spend.credits
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


def reserve_credits_in_one_round_trip(
    *,
    organization: Organization,
    amount: int,
    reference: str,
    job_id=None,
    api_key_id: int | None = None,
    along: db.Statement,
) -> bool:
    """Make `reserve_credits`' reservation and the caller's own write `along` (a job's row)
    as one transaction in one round trip (common.db.run_in_one_round_trip); return whether
    they committed.

    The same reservation, entry and month's spend; but where `reserve_credits` would refuse
    it (the balance, the budget, the key's limit, a used reference) or announce something
    (credits low, an auto-recharge, a budget alert), the statement declines instead: nothing
    is written, and the caller makes both again the careful way, with `reserve_credits`.
    Only where `db.can_run_in_one_round_trip()`; `organization.credit_balance` is left as
    it was.
    """
    if amount <= 0:
        raise ValueError("A reservation takes a positive number of credits")
    now = timezone.now()
    entry = CreditLedgerEntry(
        organization=organization,
        kind=Kind.RESERVE,
        amount=-amount,
        reference=reference,
        job_id=job_id,
        api_key_id=api_key_id,
        created_at=now,
    )
    spend = _SpendMove(month=month_of(now), credits=amount, api_key_id=api_key_id)
    with_key = api_key_id is not None
    params = _move_params(entry, spend) + orm.insert_values(entry, _ENTRY_VALUE_FIELDS)
    if with_key:
        params += _key_spend_params(spend)
    reservation = db.Statement(
        _reserve_unless_notable_sql(with_key=with_key), params + _notable_params(amount)
    )
    if not db.run_in_one_round_trip(along, reservation):
        return False
    metrics.LEDGER_OPERATIONS.labels(Kind.RESERVE).inc()
    return True


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

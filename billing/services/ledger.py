"""Every change to credits. Credits move only by appending CreditLedgerEntry rows.

Each entry is written together with the organization's balance in one transaction: a
conditional `UPDATE … RETURNING` moves the balance (and holds the row lock until commit),
and the entry is inserted with the balance it left — on PostgreSQL in the same statement
(the UPDATE is a data-modifying CTE the INSERT selects from), elsewhere right after it. The
UPDATE refuses to run when the reference was already used, so every function here is
idempotent on its reference, and when the balance would go negative, so credits can never
be spent twice.
"""

from datetime import datetime

from django.db import connection, transaction

from accounts.models import Organization, User
from billing.credit_lots import EXPIRY_PREFIX
from billing.errors import InsufficientCredits
from billing.models import AutoRecharge, CreditLedgerEntry
from billing.services.auto_recharge import open_recharge_if_low
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
 RETURNING credit_balance,
           -- The auto-recharge threshold, if on: read here, the rule costs no round trip.
           (SELECT threshold FROM {AutoRecharge._meta.db_table}
             WHERE organization_id = {Organization._meta.db_table}.id AND enabled)
           AS recharge_threshold
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
RETURNING {CreditLedgerEntry._meta.pk.column}, {_BALANCE_AFTER.column},
          (SELECT recharge_threshold FROM moved)
"""  # noqa: S608 - table and column names come from the models, values are parameters


def _move_balance_and_append(entry: CreditLedgerEntry) -> tuple[bool, int | None]:
    """Move the balance by `entry.amount` and insert `entry` with the balance it left.

    Return whether it moved (not when refused: reference used, balance short; nothing was
    written) and the organization's auto-recharge threshold (None when it is off).
    """
    move = [entry.amount, entry.organization_id, entry.amount, entry.reference]
    # One round trip less under the organization's row lock, which every submission of the
    # organization queues behind; SQLite has no data-modifying CTEs and takes two statements.
    one_statement = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if one_statement:
            values = orm.insert_values(entry, _ENTRY_VALUE_FIELDS)
            cursor.execute(_MOVE_BALANCE_AND_INSERT_SQL, move + values)
        else:
            cursor.execute(_MOVE_BALANCE_SQL, move)
        row = cursor.fetchone()
    if row is None:
        return False, None
    if one_statement:
        entry.pk, entry.balance_after, recharge_threshold = row
        orm.mark_saved(entry)
    else:
        entry.balance_after, recharge_threshold = row
        entry.save(force_insert=True)
    return True, recharge_threshold


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
        appended, recharge_threshold = _move_balance_and_append(entry)
    if not appended:
        # Explained outside the block: raising inside it would doom the caller's transaction.
        return _explain_refusal(organization=organization, amount=amount, reference=reference)
    organization.credit_balance = entry.balance_after
    transaction.on_commit(lambda: metrics.LEDGER_OPERATIONS.labels(kind).inc())
    if amount < 0:
        balance_before = entry.balance_after - amount
        notify_if_credits_low(organization, balance_before, entry.balance_after)
        if recharge_threshold is not None:
            open_recharge_if_low(
                organization=organization,
                balance_before=balance_before,
                balance_after=entry.balance_after,
                threshold=recharge_threshold,
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

"""Which credits are still there, and when they expire, worked out from the ledger alone.

Every positive entry opens a *lot* (a grant or purchase, with the grant's `expires_at`, if
any). Spending draws from the lots in order of expiry: the lot that expires first is used
first, and credits that never expire are used last, so a customer never loses credits to
expiry that they could have spent instead. A refund puts credits back into the lots its
reservation drew from; if such a lot has already been expired, the refunded credits come
back without an expiry (the job failed through no fault of the customer). An `expiry`
entry (reference `expiry:<grant reference>`) empties its grant's lot; it is written once
per grant, so expiring is idempotent.

Only the part of the ledger that can still matter is read: from the oldest grant that
expires after `since` onwards, with the balance before it as one non-expiring lot.
"""

from dataclasses import dataclass, field
from datetime import datetime

from billing.models import CreditLedgerEntry

Kind = CreditLedgerEntry.Kind
EXPIRY_PREFIX = "expiry:"
REFUND_SUFFIX = ":refund"


@dataclass
class CreditLot:
    reference: str
    granted: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime | None
    expired: bool = False
    order: int = 0
    draws: list = field(default_factory=list)

    def sort_key(self):
        # Earliest expiry first; lots without expiry last, oldest first.
        return (self.expires_at is None, self.expires_at or self.created_at, self.order)


def _consume(lots: list[CreditLot], amount: int) -> list[tuple[CreditLot, int]]:
    draws = []
    for lot in sorted((lot for lot in lots if lot.remaining > 0), key=CreditLot.sort_key):
        if amount <= 0:
            break
        take = min(lot.remaining, amount)
        lot.remaining -= take
        amount -= take
        draws.append((lot, take))
    return draws


def replay(entries, opening_balance: int = 0) -> list[CreditLot]:
    """Replay `entries` (oldest first) over an opening balance and return every lot."""
    lots: list[CreditLot] = []
    by_reference: dict[str, CreditLot] = {}
    reservations: dict[str, list[tuple[CreditLot, int]]] = {}

    def open_lot(reference, amount, expires_at, created_at):
        lot = CreditLot(
            reference=reference,
            granted=amount,
            remaining=amount,
            expires_at=expires_at,
            created_at=created_at,
            order=len(lots),
        )
        lots.append(lot)
        by_reference[reference] = lot
        return lot

    if opening_balance > 0:
        open_lot("opening-balance", opening_balance, None, None)
    for entry in entries:
        if entry.kind == Kind.EXPIRY:
            lot = by_reference.get(entry.reference.removeprefix(EXPIRY_PREFIX))
            if lot is not None:
                lot.expired = True
                taken = min(lot.remaining, -entry.amount)
                lot.remaining -= taken
                _consume(lots, -entry.amount - taken)
            else:
                _consume(lots, -entry.amount)
        elif entry.amount > 0:
            draws = (
                reservations.pop(entry.reference.removesuffix(REFUND_SUFFIX), None)
                if entry.kind == Kind.REFUND
                else None
            )
            if draws is None:
                open_lot(entry.reference, entry.amount, entry.expires_at, entry.created_at)
                continue
            for lot, taken in draws:
                if lot.expired:
                    open_lot(f"{entry.reference}:{lot.reference}", taken, None, entry.created_at)
                else:
                    lot.remaining += taken
        else:
            draws = _consume(lots, -entry.amount)
            if entry.kind == Kind.RESERVE:
                reservations[entry.reference] = draws
    return lots


def lots_for(*, organization, since: datetime) -> list[CreditLot]:
    """The organization's lots, replaying only what can affect grants expiring after `since`."""
    ledger = CreditLedgerEntry.objects.filter(organization=organization)
    first = ledger.filter(expires_at__gt=since, amount__gt=0).order_by("id").values("id").first()
    if first is None:
        return []
    before = ledger.filter(id__lt=first["id"]).order_by("-id").values("balance_after").first()
    entries = (
        ledger.filter(id__gte=first["id"])
        .order_by("id")
        .only("kind", "amount", "reference", "expires_at", "created_at")
    )
    return replay(entries.iterator(), opening_balance=before["balance_after"] if before else 0)

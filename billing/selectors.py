from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Organization
from billing.models import CreditLedgerEntry


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


def ledger_entries(*, organization: Organization):
    return CreditLedgerEntry.objects.filter(organization=organization).order_by(
        "-created_at", "-id"
    )

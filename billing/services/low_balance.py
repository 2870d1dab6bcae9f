"""The credits-low rule: organizations hear (a `credits.low` webhook) when they run low."""

from accounts.models import Organization
from webhooks import services as webhooks
from webhooks.models import Event, EventType


def notify_if_credits_low(
    organization: Organization, balance_before: int, balance_after: int
) -> Event | None:
    """Emit `credits.low` when this change takes the balance below the organization's
    threshold; a balance that stays below it (or rises) emits nothing, so each crossing
    is announced once. Call it in the transaction that moved the balance."""
    threshold = organization.low_credit_threshold
    if not balance_before >= threshold > balance_after:
        return None
    return webhooks.emit_event(
        organization=organization,
        event_type=EventType.CREDITS_LOW,
        data={
            "organization": organization.slug,
            "balance": balance_after,
            "threshold": threshold,
        },
    )

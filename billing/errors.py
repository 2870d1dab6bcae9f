"""Billing's refusals, shown to people by the pages and answered by the API under their code."""

from common.errors import Refused, Unavailable


class InsufficientCredits(Refused):
    """The balance is below what the change takes; nothing was taken."""

    code = "insufficient_credits"
    message = "Insufficient credits to complete request"

    def __init__(self, *, required: int, available: int):
        self.required = required
        self.available = available
        super().__init__(
            f"This request requires {required} credits, but you have {available} remaining"
        )


class PlanChangeInProgress(Refused):
    """Another change of the same organization's plan is still running."""

    code = "conflict"
    message = "Your plan is already being changed. Wait a moment and reload the page."


class PaymentDeclined(Refused):
    """The card was declined; `message` is Stripe's explanation, fit to show the customer."""

    def __init__(self, message: str):
        super().__init__(message=message)


class StripeUnavailable(Unavailable):
    """Stripe could not be reached or refused the request for a reason that is not the card;
    `details` is Stripe's reason."""

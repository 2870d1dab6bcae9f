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


class BudgetExceeded(Refused):
    """The job would take the month's spend past a budget; nothing was taken.

    `budget` says which: the organization's monthly budget or the API key's monthly limit.
    """

    code = "budget_exceeded"
    message = "Monthly budget exceeded"

    class Budget:
        ORGANIZATION = "organization"
        API_KEY = "api_key"

    _NAMES = {
        Budget.ORGANIZATION: "the organization's monthly budget",
        Budget.API_KEY: "this API key's monthly credit limit",
    }

    def __init__(self, *, budget: str, limit: int, remaining: int, required: int, month=None):
        self.budget = budget
        self.month = month
        self.limit = limit
        self.remaining = remaining
        self.required = required
        super().__init__(
            f"This request requires {required} credits, but {self._NAMES[budget]} of "
            f"{limit} credits has {remaining} left this month"
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

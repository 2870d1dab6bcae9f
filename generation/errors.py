"""What generation refuses: a submission, a cancellation. The API answers each by its code."""

from common.errors import InvalidRequest, NotPermitted, Refused, Unavailable


class OrganizationSuspended(NotPermitted):
    message = "Organization suspended"


class InvalidModel(InvalidRequest):
    """The request names a model that is not in the catalog, or one that lacks its mode."""


class PromptRefused(Refused):
    code = "content_moderated"
    message = "The request was refused by content moderation"


class InsufficientCredits(Refused):
    code = "insufficient_credits"
    message = "Insufficient credits to complete request"


class BudgetExceeded(Refused):
    """The job would pass the organization's monthly budget or its key's monthly limit."""

    code = "budget_exceeded"
    message = "Monthly budget exceeded"


class QueueUnavailable(Unavailable):
    """The job queue is unreachable; the submission was rolled back, nothing was charged."""


class JobNotCancelable(Refused):
    code = "job_not_cancelable"
    message = "The job can no longer be canceled"


class SubmissionsRateLimited(Refused):
    """A window of the organization's plan is full; `retry_after` seconds until it resets."""

    code = "rate_limit_exceeded"
    message = "Rate limit exceeded"

    def __init__(self, *, window: str, limit: int, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"The {window} limit of {limit} submissions is reached; retry in {retry_after} seconds."
        )

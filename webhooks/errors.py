"""What the webhooks app refuses, as `common.errors.Refused` with the API's codes."""

from accounts.models import Organization
from common.errors import InvalidRequest, Refused


class InvalidEndpoint(InvalidRequest):
    """The endpoint's fields are not acceptable; `fields` maps each field to its messages."""


class EndpointLimitReached(Refused):
    """The organization already has as many endpoints as its plan allows."""

    code = "webhook_endpoint_limit_reached"
    message = "The plan's webhook endpoint limit is reached"

    def __init__(self, *, organization: Organization, count: int):
        plan = organization.plan
        super().__init__(
            f"The {plan.name} plan allows {plan.max_webhook_endpoints} webhook endpoints and "
            f"this organization has {count}. Delete one or upgrade the plan to add another."
        )


class InvalidCursor(InvalidRequest):
    """The cursor is not one a page of endpoints returned."""

    def __init__(self):
        super().__init__({"cursor": ["Not a cursor this API returned."]})

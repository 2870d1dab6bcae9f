"""What a suspended organization may not do: generate, buy, subscribe or make new keys.

Every service that does one of those calls `ensure_active` first, so the API, the pages and
whatever comes next get the same refusal. Apart from accounts.services so that billing's
services can import it without an import cycle (accounts.services imports billing).
"""

from accounts.models import Organization


class SuspendedOrganization(Exception):
    """The organization is suspended; the message is meant for the person who tried."""


def ensure_active(organization: Organization, *, refused: str) -> None:
    """Raise SuspendedOrganization, saying `refused` ("it cannot buy credits"), if suspended."""
    if organization.is_suspended:
        raise SuspendedOrganization(
            f"{organization.name} is suspended: {refused}. Contact support to lift the suspension."
        )

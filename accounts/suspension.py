"""What a suspended organization may not do: generate, buy, subscribe or make new keys.

Every service that does one of those calls `ensure_active` first, so the API, the pages and
whatever comes next get the same refusal (accounts.errors.SuspendedOrganization).
"""

from accounts.errors import SuspendedOrganization
from accounts.models import Organization


def ensure_active(organization: Organization, *, refused: str) -> None:
    """Raise SuspendedOrganization, saying `refused` ("it cannot buy credits"), if suspended."""
    if organization.is_suspended:
        raise SuspendedOrganization(
            f"{organization.name} is suspended: {refused}. Contact support to lift the suspension."
        )

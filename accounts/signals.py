"""What accounts announces for the layers above it to react to (they connect in ready())."""

from django.dispatch import Signal

# Sent by services.create_organization inside its transaction, once the owner's membership
# exists, so a receiver's writes commit or roll back with the organization. Arguments:
# `organization`, `owner`, and `signed_up`: True when the organization is the one a person's
# sign-up created for them.
organization_created = Signal()

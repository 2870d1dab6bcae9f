"""The refusals of accounts' rules; each message is meant for the person who tried."""

from common.errors import NotPermitted, Refused


class InvalidApiKey(Refused):
    """The key is malformed, unknown, revoked or expired (all look the same to a caller)."""

    code = "unauthorized"
    message = "Invalid or missing API key"


class SuspendedOrganization(NotPermitted):
    """The organization is suspended; the details say what it cannot do."""

    message = "Organization suspended"


class EmailAlreadyRegistered(Refused):
    code = "conflict"
    message = "This email address is already registered"


class OrganizationLimitReached(NotPermitted):
    message = "Organization limit reached"


class ScopeNotAllowed(NotPermitted):
    """A scope above the creator's role was asked for; the details name it."""


class TeamError(Refused):
    """A team change that is not allowed."""

    code = "forbidden"


class NotAllowed(TeamError):
    pass


class LastOwner(TeamError):
    code = "conflict"


class AlreadyMember(TeamError):
    code = "conflict"


class InvalidInvitation(TeamError):
    code = "bad_request"


class InvitationSentRecently(TeamError):
    code = "conflict"


class TooManyInvitations(TeamError):
    code = "rate_limit_exceeded"


class InvalidSettings(Refused):
    code = "invalid_parameters"

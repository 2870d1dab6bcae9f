"""The refusals business rules raise, with the code the API reports them under.

Services raise a subclass of `Refused` from their app's `errors.py`; they never see HTTP.
`common.api.errors` turns a refusal into the API error contract (its status comes from its
code, in one table there), and pages show its message and details to the person.
"""


class Refused(Exception):
    """A rule refused an action; nothing was changed.

    `code` is the API's error code, `message` its one-line summary, `details` what exactly
    was wrong, and `fields` (for `invalid_parameters`) the messages per request field.
    """

    code = "bad_request"
    message = "The request was refused"

    def __init__(
        self,
        details: str | None = None,
        *,
        message: str | None = None,
        fields: dict[str, list[str]] | None = None,
    ):
        self.details = details
        self.message = message or self.message
        self.fields = fields
        super().__init__(details or self.message)


class InvalidRequest(Refused):
    """The request names something that does not exist or cannot be done, per field."""

    code = "invalid_parameters"
    message = "Invalid parameters"

    def __init__(self, fields: dict[str, list[str]], *, message: str | None = None):
        fields = {name: [str(m) for m in messages] for name, messages in fields.items()}
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        super().__init__(details, message=message, fields=fields)


class NotPermitted(Refused):
    code = "forbidden"
    message = "You do not have permission to perform this action"


class Unavailable(Refused):
    """A backing service is down; nothing was committed, so the caller may retry."""

    code = "service_unavailable"
    message = "The service is temporarily unavailable"

"""What every log line says about the work it belongs to: request id, organization, job id.

The request middleware binds the request id, the API base view and the page middleware
the organization, the worker's run_job the job id and organization; LogContextFilter puts
them on each record (`-` where unknown), for the plain format and the JSON one alike.
"""

import contextvars
import logging
from contextlib import contextmanager

UNKNOWN = "-"

request_id = contextvars.ContextVar("request_id", default=UNKNOWN)
organization = contextvars.ContextVar("organization", default=UNKNOWN)
job_id = contextvars.ContextVar("job_id", default=UNKNOWN)

_FIELDS = {"request_id": request_id, "organization": organization, "job_id": job_id}


@contextmanager
def bound(**fields: str):
    """Bind the given fields for the block's log lines, then restore what was there."""
    tokens = [(_FIELDS[name], _FIELDS[name].set(str(value))) for name, value in fields.items()]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


class LogContextFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id.get()
        record.organization = organization.get()
        record.job_id = job_id.get()
        return True

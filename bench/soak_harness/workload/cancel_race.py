"""Submit a job and cancel it at once, racing the worker that picks it up."""

from ..context import call
from .submit import submit


def run(ctx, tenant, rng) -> None:
    response = submit(ctx, tenant, rng, "async", action="cancel_race")
    if response is None or response.status_code != 202:
        return
    job_id = response.json()["id"]
    cancel = call(ctx, tenant, "cancel", "POST", f"/v1/jobs/{job_id}/cancel", rng)
    ctx.record.cancel(job_id, None if cancel is None else cancel.status_code)

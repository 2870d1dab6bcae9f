"""Submit a burst of async jobs, two more than the organization may run at once, so some
wait for a free slot (docs/api/jobs.md, "How many jobs run at once")."""

from .database import in_thread
from .submit import submit

# A plan whose limit needs a bigger burst than this (Enterprise's 50) is left alone: the
# burst would take its rate-limit window and most of the soak's two cores.
MAX_BURST = 12


def _limit(tenant) -> int:
    from accounts.models import Organization

    return (
        Organization.objects.select_related("plan")
        .get(pk=tenant.organization_id)
        .max_concurrent_jobs
    )


def run(ctx, tenant, rng) -> None:
    burst = in_thread(_limit, tenant) + 2
    if burst > MAX_BURST:
        return
    accepted = 0
    for _ in range(burst):
        response = submit(ctx, tenant, rng, "async", action="concurrent_limit_hit")
        accepted += response is not None and response.status_code == 202
    ctx.record.count("concurrent_limit_bursts")
    ctx.record.count("concurrent_limit_burst_jobs", accepted)

"""An owner sets a monthly budget a few credits above the month's spend, then submits past it.

The budget only ever grows (from the larger of the one set and the spend), so every
organization's final month's spend must be within its final budget (invariants.py).
"""

from .database import in_thread
from .submit import submit

HEADROOM = (3, 12)  # credits above the month's spend: one or two jobs, then refusals


def _raise_budget(ctx, tenant, rng) -> None:
    from accounts.models import Membership, Organization
    from billing import services

    organization = Organization.objects.get(pk=tenant.organization_id)
    owner = Membership.objects.get(organization=organization, role=Membership.Role.OWNER).user
    floor = max(organization.monthly_credit_budget or 0, organization.month_spend)
    services.set_organization_budget(
        organization=organization, actor=owner, budget=floor + rng.randint(*HEADROOM)
    )
    ctx.record.count("budgets_set")


def run(ctx, tenant, rng) -> None:
    in_thread(_raise_budget, ctx, tenant, rng)
    for _ in range(3):
        response = submit(ctx, tenant, rng, "v2", action="budget_hit")
        if response is not None and "budget_exceeded" in response.text:
            ctx.record.count("budget_refusals")
            return

"""A staff member corrects an organization's balance, either way, with a reason."""

import uuid

from .database import in_thread


def _adjust(ctx, tenant, rng) -> None:
    from accounts.models import Organization, User
    from billing import services
    from billing.errors import InsufficientCredits

    amount = rng.choice([-5, -2] if tenant.runs_dry else [-5, -2, 3, 10, 25])
    try:
        services.adjust_credits(
            organization=Organization.objects.get(pk=tenant.organization_id),
            amount=amount,
            reason="Soak: goodwill or correction",
            actor=User.objects.get(pk=ctx.staff_user_id),
            # Unique across runs: the run's database keeps the earlier runs' ledgers.
            reference=f"soak:adjustment:{uuid.uuid4().hex}",
        )
        ctx.record.count("adjustments_applied")
    except InsufficientCredits:
        ctx.record.count("adjustments_refused_below_zero")


def run(ctx, tenant, rng) -> None:
    in_thread(_adjust, ctx, tenant, rng)

"""An owner turns auto-recharge on a few credits under the balance, then submits past it: the
`webhooks` worker charges the saved card at localstripe, and the credits come back with
Stripe's signed event (or, when the event was lost, the reconciliation sweep)."""

import requests

from .buy_pack import confirm_card
from .database import in_thread
from .submit import submit

UNDER_THE_BALANCE = (1, 6)  # credits: the next job or two cross the threshold


def _turn_on(ctx, tenant, rng) -> bool:
    from accounts.models import Membership, Organization
    from billing import services, stripe_gateway
    from billing.models import CreditPack

    organization = Organization.objects.get(pk=tenant.organization_id)
    owner = Membership.objects.get(organization=organization, role=Membership.Role.OWNER).user
    threshold = max(1, organization.credit_balance - rng.randint(*UNDER_THE_BALANCE))
    try:
        setup = confirm_card(ctx.stripe_url, services.start_card_setup(organization=organization))
        services.enable_auto_recharge(
            organization=organization,
            user=owner,
            pack=CreditPack.objects.order_by("price_cents").first(),
            threshold=threshold,
            setup_intent_id=setup["id"],
        )
    except (
        stripe_gateway.StripeUnavailable,
        stripe_gateway.PaymentDeclined,
        requests.RequestException,
        ValueError,
    ) as error:
        ctx.record.count(f"auto_recharge_refused:{type(error).__name__}")
        return False
    ctx.record.count("auto_recharges_turned_on")
    return True


def run(ctx, tenant, rng) -> None:
    # A tenant that runs dry is never topped up, automatically or not.
    if tenant.runs_dry or not in_thread(_turn_on, ctx, tenant, rng):
        return
    for _ in range(2):
        submit(ctx, tenant, rng, "v2", action="auto_recharge")

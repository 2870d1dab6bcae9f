"""Buy a credit pack through localstripe, as the billing page does: save a card with
Stripe.js's calls, then the purchase; the credits come with Stripe's signed event."""

import requests
from django.conf import settings

from .database import in_thread

VISA = "4242424242424242"


def confirm_card(stripe_url: str, client_secret: str) -> dict:
    setup_intent_id = client_secret.split("_secret_")[0]
    response = requests.post(
        f"{stripe_url}/v1/setup_intents/{setup_intent_id}/confirm",
        json={
            "key": settings.STRIPE_PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": VISA, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
            },
        },
        timeout=10,
    )
    return {"id": setup_intent_id, "status_code": response.status_code, **response.json()}


def _buy(ctx, tenant, rng) -> None:
    from accounts.models import Organization
    from billing import services, stripe_gateway
    from billing.models import CreditPack

    organization = Organization.objects.get(pk=tenant.organization_id)
    pack = rng.choice(list(CreditPack.objects.order_by("pk")))
    token = f"soak-pack-{ctx.next_number()}-{rng.getrandbits(32):08x}"
    try:
        setup = confirm_card(ctx.stripe_url, services.start_card_setup(organization=organization))
        checkout = services.buy_pack(
            organization=organization, pack=pack, token=token, setup_intent_id=setup["id"]
        )
        outcome = checkout.purchase.status
    except (stripe_gateway.StripeUnavailable, stripe_gateway.PaymentDeclined) as error:
        outcome = f"refused: {type(error).__name__}"
    except (requests.RequestException, ValueError) as error:
        outcome = f"refused: {type(error).__name__}"
    ctx.record.purchase(organization=tenant.slug, token=token, outcome=outcome)


def run(ctx, tenant, rng) -> None:
    if not tenant.runs_dry:
        in_thread(_buy, ctx, tenant, rng)

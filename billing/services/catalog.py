"""The prices and products Stripe must know for our plans and packs."""

from billing import stripe_gateway
from billing.models import CreditPack, Plan


def sync_stripe_catalog() -> dict:
    """Make sure Stripe has a monthly price for each paid plan and a product for each pack."""
    created = {"plans": [], "packs": []}
    for plan in Plan.objects.filter(monthly_price_cents__gt=0):
        price_id = stripe_gateway.ensure_plan_price(plan)
        if plan.stripe_price_id != price_id:
            plan.stripe_price_id = price_id
            plan.save(update_fields=["stripe_price_id"])
        created["plans"].append(price_id)
    for pack in CreditPack.objects.filter(active=True):
        product_id = stripe_gateway.ensure_pack_product(pack)
        if pack.stripe_product_id != product_id:
            pack.stripe_product_id = product_id
            pack.save(update_fields=["stripe_product_id"])
        created["packs"].append(product_id)
    return created

"""The thin adapter between billing and Stripe's API (the `stripe` library).

Only calls both real Stripe and localstripe (the embedded default, `STRIPE_API_BASE`)
understand are used: Customers, SetupIntents (the browser saves the card with Stripe.js),
PaymentIntents created with that card and then confirmed (or, for auto-recharge, created
and confirmed off session in one call), Plans (which real Stripe also accepts
wherever a Price is expected) and Subscriptions with `items[].plan`. Every create carries
an idempotency key, so a retried call never makes a second object on Stripe.
Everything returned is a plain dict, the shape webhook events carry too.
"""

from dataclasses import dataclass
from functools import lru_cache

import stripe
from django.conf import settings

from accounts.models import Organization
from billing.errors import PaymentDeclined, StripeUnavailable
from billing.models import CreditPack, PackPurchase, Plan


class ResourceMissing(StripeUnavailable):
    """Stripe does not know an object we named (a customer of a wiped test server, say)."""


class AuthenticationRequired(PaymentDeclined):
    """The bank wants the cardholder to authenticate a charge made while they are away."""

    def __init__(self, message: str = ""):
        super().__init__(
            message or "Your bank asked you to confirm this payment, which needs you there."
        )


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=2,
    )


def client() -> stripe.StripeClient:
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def _call(method, *args, **kwargs) -> dict:
    try:
        return method(*args, **kwargs).to_dict()
    except stripe.CardError as error:
        raise PaymentDeclined(error.user_message or "Your card was declined.") from error
    except stripe.InvalidRequestError as error:
        if error.code == "resource_missing" or error.http_status == 404:
            raise ResourceMissing(str(error.user_message or error)) from error
        raise StripeUnavailable(str(error.user_message or error)) from error
    except stripe.StripeError as error:
        raise StripeUnavailable(str(error.user_message or error)) from error


def plan_price_id(plan: Plan) -> str:
    return plan.stripe_price_id or f"imagen_{plan.slug}_monthly"


def create_customer(*, organization: Organization, email: str | None, replacing: str = "") -> str:
    params = {"name": organization.name, "metadata": {"organization": str(organization.public_id)}}
    if email:
        params["email"] = email
    customer = _call(
        client().v1.customers.create,
        params=params,
        options={"idempotency_key": f"customer:{organization.public_id}:{replacing}"},
    )
    return customer["id"]


def customer_exists(customer_id: str) -> bool:
    try:
        customer = _call(client().v1.customers.retrieve, customer_id)
    except ResourceMissing:
        return False
    return not customer.get("deleted")


def create_setup_intent(*, customer_id: str) -> dict:
    return _call(
        client().v1.setup_intents.create,
        params={"customer": customer_id, "payment_method_types": ["card"], "usage": "off_session"},
    )


def retrieve_setup_intent(setup_intent_id: str) -> dict:
    return _call(client().v1.setup_intents.retrieve, setup_intent_id)


@dataclass
class PackPayment:
    id: str
    status: str
    client_secret: str


def _pack_payment(intent: dict) -> PackPayment:
    return PackPayment(
        id=intent["id"], status=intent["status"], client_secret=intent["client_secret"]
    )


def _pack_payment_params(*, purchase: PackPurchase, customer_id: str, payment_method_id: str):
    return {
        "amount": purchase.amount_cents,
        "currency": purchase.currency,
        "customer": customer_id,
        "payment_method": payment_method_id,
        "payment_method_types": ["card"],
        # For people reading the payment on Stripe; nothing is granted from it.
        "metadata": {
            "organization": str(purchase.organization.public_id),
            "pack": str(purchase.pack_id),
            "credits": str(purchase.credits),
            "purchase": purchase.token,
        },
    }


def create_pack_payment(
    *, purchase: PackPurchase, customer_id: str, payment_method_id: str
) -> PackPayment:
    """Create, unconfirmed, the PaymentIntent for what `purchase` records it costs."""
    intent = _call(
        client().v1.payment_intents.create,
        params=_pack_payment_params(
            purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
        ),
        options={"idempotency_key": f"pack:{purchase.token}"},
    )
    return _pack_payment(intent)


def charge_saved_card(
    *, purchase: PackPurchase, customer_id: str, payment_method_id: str, idempotency_key: str
) -> PackPayment:
    """Charge `purchase` to a saved card while the customer is away; one PaymentIntent per key.

    Stripe's way is `confirm` and `off_session` on the create call, which localstripe accepts
    too (it refuses `off_session` on the confirm call). A bank that wants authentication is
    AuthenticationRequired: Stripe says so with the card error `authentication_required`,
    localstripe by answering `requires_action`, which the caller must treat the same way.
    Other declines are PaymentDeclined.
    """
    params = _pack_payment_params(
        purchase=purchase, customer_id=customer_id, payment_method_id=payment_method_id
    )
    params.update(confirm=True, off_session=True)
    try:
        intent = _call(
            client().v1.payment_intents.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
    except PaymentDeclined as error:
        if getattr(error.__cause__, "code", None) == "authentication_required":
            raise AuthenticationRequired() from error.__cause__
        raise
    return _pack_payment(intent)


def retrieve_payment_intent(payment_intent_id: str) -> dict:
    """The PaymentIntent as Stripe's events carry it."""
    return _call(client().v1.payment_intents.retrieve, payment_intent_id)


def retrieve_pack_payment(payment_intent_id: str) -> PackPayment:
    return _pack_payment(retrieve_payment_intent(payment_intent_id))


# Stripe's card brands as the card says them.
BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


@dataclass
class Card:
    payment_method_id: str
    label: str
    exp_month: int
    exp_year: int


def card_label(card: dict) -> str:
    """How pages, emails and invoices name a card (Stripe's `card` hash): "Visa •••• 4242"."""
    brand = card.get("brand") or ""
    return f"{BRANDS.get(brand, brand.title() or 'Card')} •••• {card.get('last4') or '????'}"


def payment_card(payment_method: dict | str) -> Card:
    """The card of a PaymentMethod (its id, or the object itself when expanded)."""
    if isinstance(payment_method, str):
        payment_method = _call(client().v1.payment_methods.retrieve, payment_method)
    card = payment_method.get("card") or {}
    return Card(
        payment_method_id=payment_method["id"],
        label=card_label(card),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


def confirm_pack_payment(*, purchase: PackPurchase) -> PackPayment:
    """Charge the purchase's PaymentIntent; raise PaymentDeclined with Stripe's reason."""
    intent = _call(
        client().v1.payment_intents.confirm,
        purchase.stripe_payment_intent_id,
        options={"idempotency_key": f"pack-confirm:{purchase.token}"},
    )
    return _pack_payment(intent)


def set_default_payment_method(*, customer_id: str, payment_method_id: str) -> None:
    _call(
        client().v1.customers.update,
        customer_id,
        params={"invoice_settings": {"default_payment_method": payment_method_id}},
    )


def create_subscription(
    *, organization: Organization, customer_id: str, plan: Plan, idempotency_key: str
) -> dict:
    return _call(
        client().v1.subscriptions.create,
        params={
            "customer": customer_id,
            "items": [{"plan": plan_price_id(plan)}],
            "metadata": {"organization": str(organization.public_id)},
        },
        options={"idempotency_key": idempotency_key},
    )


def retrieve_subscription(subscription_id: str) -> dict:
    return _call(client().v1.subscriptions.retrieve, subscription_id)


def list_subscriptions(*, customer_id: str) -> list[dict]:
    return _call(client().v1.subscriptions.list, params={"customer": customer_id})["data"]


def list_invoices(*, customer_id: str, limit: int = 10) -> list[dict]:
    return _call(client().v1.invoices.list, params={"customer": customer_id, "limit": limit})[
        "data"
    ]


def change_subscription_plan(*, subscription_id: str, plan: Plan) -> dict:
    subscription = retrieve_subscription(subscription_id)
    item_id = subscription["items"]["data"][0]["id"]
    return _call(
        client().v1.subscriptions.update,
        subscription_id,
        params={
            "items": [{"id": item_id, "plan": plan_price_id(plan)}],
            "cancel_at_period_end": False,
        },
    )


def set_cancel_at_period_end(*, subscription_id: str, cancel: bool) -> dict:
    return _call(
        client().v1.subscriptions.update,
        subscription_id,
        params={"cancel_at_period_end": cancel},
    )


def customer_portal_url(*, customer_id: str, return_url: str) -> str:
    session = _call(
        client().v1.billing_portal.sessions.create,
        params={"customer": customer_id, "return_url": return_url},
    )
    return session["url"]


def ensure_plan_price(plan: Plan) -> str:
    """Make sure Stripe has a monthly price for `plan`; return its id."""
    price_id = plan_price_id(plan)
    try:
        client().v1.plans.retrieve(price_id)
    except stripe.InvalidRequestError:
        _call(
            client().v1.plans.create,
            params={
                "id": price_id,
                "amount": plan.monthly_price_cents,
                "currency": plan.currency,
                "interval": "month",
                "product": {"name": f"Imagen {plan.name}"},
            },
        )
    except stripe.StripeError as error:
        raise StripeUnavailable(str(error)) from error
    return price_id


def ensure_pack_product(pack: CreditPack) -> str:
    """Make sure Stripe has a product for `pack`; return its id."""
    if pack.stripe_product_id:
        try:
            client().v1.products.retrieve(pack.stripe_product_id)
            return pack.stripe_product_id
        except stripe.InvalidRequestError:
            pass
        except stripe.StripeError as error:
            raise StripeUnavailable(str(error)) from error
    product = _call(
        client().v1.products.create,
        params={"name": f"Imagen {pack.name} credit pack ({pack.credits} credits)"},
    )
    return product["id"]

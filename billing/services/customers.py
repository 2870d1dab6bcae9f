"""The organization's Stripe customer and the cards it saves."""

from django.utils import timezone

from accounts.models import Organization, User
from billing import stripe_gateway
from billing.models import AutoRecharge, SavedCard
from billing.selectors import billing_emails_for


def ensure_stripe_customer(*, organization: Organization, replacing: str = "") -> str:
    """Return the organization's Stripe customer id, creating the customer the first time.

    `replacing`: a customer id Stripe no longer knows, to be replaced by a new customer.
    """
    if organization.stripe_customer_id and organization.stripe_customer_id != replacing:
        return organization.stripe_customer_id
    emails_to = billing_emails_for(organization=organization)
    customer_id = stripe_gateway.create_customer(
        organization=organization, email=emails_to[0] if emails_to else None, replacing=replacing
    )
    # Two first clicks at once: the idempotency key gave both the same customer on Stripe,
    # and only the first write is kept here.
    Organization.objects.filter(pk=organization.pk, stripe_customer_id=replacing).update(
        stripe_customer_id=customer_id
    )
    organization.stripe_customer_id = Organization.objects.values_list(
        "stripe_customer_id", flat=True
    ).get(pk=organization.pk)
    return organization.stripe_customer_id


def start_card_setup(*, organization: Organization) -> str:
    """Return the client secret with which Stripe.js saves a card for the organization."""
    customer_id = ensure_stripe_customer(organization=organization)
    if not stripe_gateway.customer_exists(customer_id):
        # Stripe lost the customer (a restarted localstripe, a test account reset).
        customer_id = ensure_stripe_customer(organization=organization, replacing=customer_id)
    return stripe_gateway.create_setup_intent(customer_id=customer_id)["client_secret"]


def owned_payment_method(*, organization: Organization, setup_intent_id: str) -> str:
    """The card a succeeded SetupIntent of this organization's customer saved."""
    setup_intent = stripe_gateway.retrieve_setup_intent(setup_intent_id)
    if (
        setup_intent.get("customer") != organization.stripe_customer_id
        or setup_intent.get("status") != "succeeded"
        or not setup_intent.get("payment_method")
    ):
        error = setup_intent.get("last_setup_error") or {}
        declined = setup_intent.get("status") == "canceled"
        raise stripe_gateway.PaymentDeclined(
            error.get("message")
            or ("Your card was declined." if declined else "The card could not be saved.")
        )
    payment_method = setup_intent["payment_method"]
    return payment_method["id"] if isinstance(payment_method, dict) else payment_method


def save_card(
    *, organization: Organization, setup_intent_id: str, user: User | None = None
) -> SavedCard:
    """Make the card a succeeded SetupIntent saved the organization's card: the one its
    billing page shows and Stripe charges its subscription to. Raises PaymentDeclined when
    the SetupIntent saved no card of this organization's customer."""
    payment_method_id = owned_payment_method(
        organization=organization, setup_intent_id=setup_intent_id
    )
    card = stripe_gateway.payment_card(payment_method_id)
    stripe_gateway.set_default_payment_method(
        customer_id=organization.stripe_customer_id, payment_method_id=payment_method_id
    )
    saved, _ = SavedCard.objects.update_or_create(
        organization=organization,
        defaults={
            "payment_method_id": payment_method_id,
            "label": card.label,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "updated_by": user,
            "updated_at": timezone.now(),
        },
    )
    return saved


def replace_card(
    *, organization: Organization, setup_intent_id: str, user: User | None = None
) -> SavedCard:
    """Save the card as the organization's (save_card), and have auto-recharge, if set up,
    charge it from now on instead of the card it had."""
    saved = save_card(organization=organization, setup_intent_id=setup_intent_id, user=user)
    AutoRecharge.objects.filter(organization=organization).update(
        payment_method_id=saved.payment_method_id, card_label=saved.label
    )
    return saved


def customer_portal_url(*, organization: Organization, return_url: str) -> str:
    return stripe_gateway.customer_portal_url(
        customer_id=ensure_stripe_customer(organization=organization), return_url=return_url
    )

import uuid

import factory

from billing import services
from billing.models import CreditPack, PackPurchase
from tests.accounts.factories import OrganizationFactory


def give_credits(organization, amount: int):
    """Put `amount` credits on the organization's balance through the ledger."""
    return services.grant_credits(
        organization=organization, amount=amount, reference=f"test-grant:{uuid.uuid4()}"
    )


class CreditPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditPack

    name = "Starter"
    credits = 100
    price_cents = 500


class PackPurchaseFactory(factory.django.DjangoModelFactory):
    """A purchase whose PaymentIntent was created and is waiting for Stripe's event."""

    class Meta:
        model = PackPurchase

    organization = factory.SubFactory(OrganizationFactory)
    pack = factory.SubFactory(CreditPackFactory)
    token = factory.Sequence(lambda n: f"click-{n:08d}")
    credits = factory.LazyAttribute(lambda o: o.pack.credits)
    amount_cents = factory.LazyAttribute(lambda o: o.pack.price_cents)
    currency = factory.LazyAttribute(lambda o: o.pack.currency)
    stripe_payment_intent_id = factory.LazyFunction(lambda: f"pi_{uuid.uuid4().hex[:24]}")
    status = PackPurchase.Status.PROCESSING

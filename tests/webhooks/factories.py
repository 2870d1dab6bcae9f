import factory

from tests.accounts.factories import OrganizationFactory
from webhooks import signing
from webhooks.models import WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = "https://hooks.example.com/imagen"
    secret = factory.LazyFunction(signing.new_secret)

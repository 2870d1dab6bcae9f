import factory

from accounts import services
from accounts.models import Membership, Organization, User
from billing.plans import PLANS


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.Plan"
        django_get_or_create = ("slug",)

    slug = "free"

    @factory.lazy_attribute
    def name(self):
        return PLANS[self.slug]["name"]

    monthly_price_cents = factory.LazyAttribute(lambda o: PLANS[o.slug]["monthly_price_cents"])
    monthly_credits = factory.LazyAttribute(lambda o: PLANS[o.slug]["monthly_credits"])
    requests_per_minute = factory.LazyAttribute(lambda o: PLANS[o.slug]["requests_per_minute"])
    requests_per_day = factory.LazyAttribute(lambda o: PLANS[o.slug]["requests_per_day"])
    output_retention_days = factory.LazyAttribute(lambda o: PLANS[o.slug]["output_retention_days"])
    max_concurrent_jobs = factory.LazyAttribute(lambda o: PLANS[o.slug]["max_concurrent_jobs"])
    max_webhook_endpoints = factory.LazyAttribute(lambda o: PLANS[o.slug]["max_webhook_endpoints"])


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    plan = factory.SubFactory(PlanFactory)
    webhook_signing_secret = factory.LazyFunction(services.new_webhook_signing_secret)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.OWNER


def api_key_for(organization: Organization, **kwargs) -> str:
    """Create a key for `organization` and return its secret, as a customer would copy it."""
    return services.create_api_key(organization=organization, name="test", **kwargs).secret


def auth_header(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

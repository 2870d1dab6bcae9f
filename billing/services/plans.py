"""The plans organizations are on, each by its slug (the default one: `Plan.objects.default()`)."""

from billing.models import Plan
from billing.plans import PLANS


def plan_by_slug(slug: str) -> Plan:
    if slug in PLANS:
        plan, _ = Plan.objects.get_or_create(slug=slug, defaults=PLANS[slug])
        return plan
    return Plan.objects.get(slug=slug)

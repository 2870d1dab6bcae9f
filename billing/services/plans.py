"""The plans organizations are on: the default one, and each by its slug."""

from billing.models import Plan
from billing.plans import DEFAULT_PLAN_SLUG, PLANS


def default_plan() -> Plan:
    """The plan a new organization starts on (created from billing.plans if missing)."""
    plan, _ = Plan.objects.get_or_create(slug=DEFAULT_PLAN_SLUG, defaults=PLANS[DEFAULT_PLAN_SLUG])
    return plan


def plan_by_slug(slug: str) -> Plan:
    if slug in PLANS:
        plan, _ = Plan.objects.get_or_create(slug=slug, defaults=PLANS[slug])
        return plan
    return Plan.objects.get(slug=slug)

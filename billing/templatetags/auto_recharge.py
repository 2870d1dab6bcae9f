"""The billing page's auto-recharge panel, kept apart from the page's own view."""

from django import template

from accounts import selectors as account_selectors
from accounts.models import Membership
from billing import selectors

register = template.Library()


@register.inclusion_tag("billing/_auto_recharge.html", takes_context=True)
def auto_recharge_panel(context):
    request = context["request"]
    organization = request.organization
    membership = account_selectors.membership_for(user=request.user, organization=organization)
    return {
        "organization": organization,
        "setting": selectors.auto_recharge(organization=organization),
        "attempts": selectors.recent_auto_recharges(organization=organization),
        "packs": selectors.active_packs(),
        "is_owner": membership is not None and membership.role == Membership.Role.OWNER,
        "csrf_token": context.get("csrf_token"),
    }

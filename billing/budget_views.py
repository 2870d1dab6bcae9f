"""The billing page's monthly budget: its figures and the owners' and admins' form."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.access import manager_required
from accounts.errors import NotAllowed
from accounts.models import Organization
from billing import selectors, services
from billing.forms import MonthlyCreditsForm

BUDGET_LABEL = "Monthly budget (credits)"


def budget_context(organization: Organization) -> dict:
    """What the billing page shows of the budget (billing/_budget.html)."""
    return {
        "budget": selectors.budget_usage(organization=organization),
        "budget_form": MonthlyCreditsForm(
            label=BUDGET_LABEL, initial={"credits": organization.monthly_credit_budget}
        ),
    }


@manager_required
@require_POST
def set_budget(request):
    form = MonthlyCreditsForm(request.POST, label=BUDGET_LABEL)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["credits"]))
        return redirect("billing:overview")
    budget = form.cleaned_data["credits"]
    try:
        services.set_organization_budget(
            organization=request.organization, actor=request.user, budget=budget
        )
    except NotAllowed as error:
        messages.error(request, str(error))
        return redirect("billing:overview")
    if budget is None:
        messages.success(request, "The monthly budget is removed.")
    else:
        messages.success(request, f"The monthly budget is {budget:,} credits.")
    return redirect("billing:overview")

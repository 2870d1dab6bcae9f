"""API keys on the dashboard: a key's page (its monthly credit limit, its usage) and the
usage and credits per key per day. The key list and its creation stay accounts' pages."""

from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.access import organization_required, require_manager
from accounts.errors import NotAllowed
from accounts.models import ApiKey
from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.forms import MonthlyCreditsForm
from generation import selectors as generation_selectors

USAGE_DAYS = 30
LIMIT_LABEL = "Monthly credit limit of this key (credits)"


def _usage_range():
    today = timezone.now().date()
    return today - timedelta(days=USAGE_DAYS - 1), today


@organization_required
def api_key_detail(request, key_id: int):
    organization = request.organization
    try:
        api_key = account_selectors.api_key(organization=organization, key_id=key_id)
    except ApiKey.DoesNotExist:
        raise Http404("No such API key.") from None
    status = 200
    if request.method == "POST":
        require_manager(request)
        form = MonthlyCreditsForm(request.POST, label=LIMIT_LABEL)
        if form.is_valid():
            limit = form.cleaned_data["credits"]
            try:
                billing_services.set_api_key_credit_limit(
                    api_key=api_key, actor=request.user, limit=limit
                )
            except NotAllowed as error:
                messages.error(request, str(error))
            else:
                messages.success(
                    request,
                    f"“{api_key.name}” may spend {limit:,} credits a month."
                    if limit
                    else f"“{api_key.name}” has no monthly credit limit of its own.",
                )
            return redirect("dashboard:api-key", api_key.pk)
        status = 400
    else:
        form = MonthlyCreditsForm(
            label=LIMIT_LABEL, initial={"credits": api_key.monthly_credit_limit}
        )
    start, end = _usage_range()
    month = billing_services.month_of(timezone.now())
    return render(
        request,
        "dashboard/api_key.html",
        {
            "api_key": api_key,
            "form": form,
            "membership": account_selectors.membership_for(
                user=request.user, organization=organization
            ),
            "month": month,
            "spent": billing_selectors.api_key_monthly_spend(
                organization=organization, month=month
            ).get(api_key.pk, 0),
            "usage": [
                day
                for day in generation_selectors.usage_by_day(
                    organization=organization, start=start, end=end, api_key=api_key
                )
                if day.requests
            ][::-1],
        },
        status=status,
    )


@organization_required
def usage(request):
    organization = request.organization
    start, end = _usage_range()
    keys = {key.pk: key for key in account_selectors.api_keys(organization=organization)}
    rows = generation_selectors.usage_by_key_and_day(
        organization=organization, start=start, end=end
    )
    month = billing_services.month_of(timezone.now())
    spent = billing_selectors.api_key_monthly_spend(organization=organization, month=month)
    return render(
        request,
        "dashboard/usage.html",
        {
            "rows": [(row, keys.get(row.api_key_id)) for row in rows],
            "keys": [(key, spent.get(key.pk, 0)) for key in keys.values()],
            "month": month,
            "days": USAGE_DAYS,
        },
    )

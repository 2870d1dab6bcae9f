"""The billing page's auto-recharge form (owners only): thin views over its services."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.access import organization_required
from accounts.errors import SuspendedOrganization
from billing import selectors, services
from billing.errors import PaymentDeclined, StripeUnavailable
from billing.models import CreditPack
from common.errors import InvalidRequest, NotPermitted


def _answer(request, *, message: str, status: int):
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(
            {"status": "ok" if status == 200 else "failed", "message": message}, status=status
        )
    (messages.success if status == 200 else messages.error)(request, message)
    return redirect("billing:overview")


def _threshold(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise InvalidRequest(
            {"threshold": ["Enter the threshold as a whole number of credits."]}
        ) from error


@organization_required
@require_POST
def turn_on(request):
    organization = request.organization
    try:
        pack = selectors.pack(pack_id=int(request.POST.get("pack", "")))
    except (ValueError, CreditPack.DoesNotExist) as error:
        raise Http404("No such pack") from error
    try:
        setting = services.enable_auto_recharge(
            organization=organization,
            user=request.user,
            pack=pack,
            threshold=_threshold(request.POST.get("threshold", "")),
            setup_intent_id=request.POST.get("setup_intent", ""),
        )
    except (NotPermitted, SuspendedOrganization) as error:
        return _answer(request, message=error.details or error.message, status=403)
    except InvalidRequest as error:
        return _answer(request, message=error.details, status=400)
    except PaymentDeclined as error:
        return _answer(request, message=error.message, status=402)
    except StripeUnavailable as error:
        return _answer(request, message=f"Stripe is not available right now: {error}", status=503)
    return _answer(
        request,
        message=(
            f"Auto-recharge is on: below {setting.threshold:,} credits, your "
            f"{setting.card_label} buys the {pack.name} pack."
        ),
        status=200,
    )


@organization_required
@require_POST
def turn_off(request):
    try:
        services.disable_auto_recharge(organization=request.organization, user=request.user)
    except NotPermitted as error:
        return _answer(request, message=error.details, status=403)
    return _answer(request, message="Auto-recharge is off.", status=200)

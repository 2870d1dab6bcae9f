"""Dashboard pages: the signed-in user's current organization's endpoints and deliveries."""

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import (
    can_manage,
    manager_required,
    organization_required,
    require_manager,
)
from common.api import rate_limits
from common.errors import Refused
from webhooks import selectors, services
from webhooks.errors import EndpointLimitReached
from webhooks.forms import EndpointForm, ResendFailedForm
from webhooks.models import Delivery, WebhookEndpoint


def _within_change_limit(request) -> bool:
    """Count one webhook change in the window the API counts it in; False (with a message)
    when that window is full."""
    usage = rate_limits.count_webhook_change(request, request.organization)
    window = usage.webhook_changes if usage else None
    if window is None or not window.exceeded:
        return True
    messages.error(
        request,
        f"Too many webhook changes: the limit is {window.limit} a minute; "
        f"retry in {window.seconds_left()} seconds.",
    )
    return False


def _endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    try:
        return selectors.endpoint(organization=request.organization, endpoint_id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404 from None


def _delivery(request, delivery_id: str) -> Delivery:
    try:
        return selectors.delivery(organization=request.organization, delivery_id=delivery_id)
    except Delivery.DoesNotExist:
        raise Http404 from None


@organization_required
def endpoint_list(request):
    organization = request.organization
    form = EndpointForm(request.POST or None)
    status = 200
    if request.method == "POST":
        require_manager(request)
        if not _within_change_limit(request):
            status = 429
        elif form.is_valid():
            try:
                endpoint = services.create_endpoint(
                    organization=organization,
                    url=form.cleaned_data["url"],
                    events=form.cleaned_data["events"] or None,
                    description=form.cleaned_data["description"],
                )
            except Refused as refusal:
                for field, errors in (refusal.fields or {None: [refusal.details]}).items():
                    for error in errors:
                        form.add_error(field, error)
                if isinstance(refusal, EndpointLimitReached):
                    status = 409  # as the API answers it
            else:
                messages.success(request, "Endpoint added. Copy its signing secret below.")
                return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)
    return render(
        request,
        "webhooks/endpoint_list.html",
        {
            "endpoints": selectors.endpoints(organization=organization),
            "job_deliveries": selectors.job_deliveries(organization=organization, limit=20),
            "form": form,
            "can_manage": can_manage(request),
        },
        status=status,
    )


@organization_required
def endpoint_detail(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    return render(
        request,
        "webhooks/endpoint_detail.html",
        {
            "endpoint": endpoint,
            "deliveries": selectors.endpoint_deliveries(
                organization=endpoint.organization, endpoint=endpoint, limit=50
            ),
            "resend_form": ResendFailedForm(),
            "can_manage": can_manage(request),
        },
    )


@manager_required
@require_POST
def endpoint_rotate_secret(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    if _within_change_limit(request):
        services.rotate_endpoint_secret(endpoint=endpoint)
        messages.success(
            request, "New secret created. The previous one keeps signing alongside it for 24 hours."
        )
    return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)


@manager_required
@require_POST
def endpoint_delete(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    services.delete_endpoint(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.url} deleted.")
    return redirect("webhooks:endpoints")


@manager_required
@require_POST
def endpoint_enable(request, endpoint_id: str):
    endpoint = services.enable_endpoint(endpoint=_endpoint(request, endpoint_id))
    messages.success(request, "Endpoint enabled.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)


@manager_required
@require_POST
def endpoint_disable(request, endpoint_id: str):
    endpoint = services.disable_endpoint(endpoint=_endpoint(request, endpoint_id))
    messages.success(request, "Endpoint disabled: it receives no events until enabled.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)


@manager_required
@require_POST
def endpoint_send_test(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    services.send_test_event(endpoint=endpoint)
    messages.success(request, "Test event sent. Its delivery appears in the log below.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)


@manager_required
@require_POST
def endpoint_resend_failed(request, endpoint_id: str):
    endpoint = _endpoint(request, endpoint_id)
    form = ResendFailedForm(request.POST)
    if _within_change_limit(request):
        if form.is_valid():
            resent = services.resend_failed_deliveries(
                endpoint=endpoint, since=form.cleaned_data["since"]
            )
            messages.success(request, f"{resent} failed deliveries sent again.")
        else:
            messages.error(request, "Enter the date and time to resend failed deliveries from.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.public_id)


@organization_required
def delivery_detail(request, delivery_id: str):
    delivery = _delivery(request, delivery_id)
    return render(
        request,
        "webhooks/delivery_detail.html",
        {
            "delivery": delivery,
            # Sent minified; shown indented so a person can read it.
            "body": json.dumps(json.loads(services.event_body(delivery.event)), indent=2),
            "can_manage": can_manage(request),
        },
    )


@manager_required
@require_POST
def delivery_redeliver(request, delivery_id: str):
    delivery = _delivery(request, delivery_id)
    if _within_change_limit(request):
        services.retry_delivery(delivery=delivery)
        messages.success(request, "Sent again with the same webhook-id.")
    return redirect("webhooks:delivery", delivery_id=delivery.public_id)

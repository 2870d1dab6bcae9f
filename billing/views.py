"""Billing pages (plan, packs, invoices, ledger) and Stripe's webhook endpoint: thin views."""

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.access import can_manage, manager_required, organization_required
from accounts.errors import SuspendedOrganization
from billing import selectors, services, stripe_events
from billing.budget_views import budget_context
from billing.errors import PaymentDeclined, PlanChangeInProgress, StripeUnavailable
from billing.invoice_pdf import render_invoice_pdf
from billing.ledger_labels import label_entries
from billing.models import CreditPack, Invoice, Plan
from common.api.errors import json_error

logger = logging.getLogger(__name__)

# Stripe's own Stripe.js: its Card Element collects the card. Any other STRIPE_JS_URL is
# localstripe's fake, whose bare inputs the page replaces with labelled, checked fields.
STRIPE_JS_URL = "https://js.stripe.com/v3/"


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's events: 400 unless signed with STRIPE_WEBHOOK_SECRET, then applied once."""
    try:
        event = stripe_events.verify(request.body, request.headers.get("Stripe-Signature"))
    except stripe_events.InvalidSignature as error:
        logger.warning("Stripe webhook refused: %s", error)
        return HttpResponseBadRequest("Invalid signature")
    except stripe_events.MalformedEvent as error:
        logger.warning("Signed Stripe event refused: %s", error)
        return json_error(400, "bad_request", "Not a Stripe event", str(error))
    try:
        applied = stripe_events.apply(event)
    except services.PaymentNotRecorded as error:
        # Nothing was applied or recorded: Stripe delivers the event again later.
        logger.warning("Stripe event %s is early: PaymentIntent %s not stored", event["id"], error)
        return json_error(
            503, "service_unavailable", "Not ready for this event", "Deliver it again later"
        )
    return JsonResponse({"received": True, "replayed": not applied})


@organization_required
@require_GET
def overview(request):
    organization = request.organization
    packs = [(pack, uuid.uuid4().hex) for pack in selectors.active_packs()]
    return render(
        request,
        "billing/overview.html",
        {
            "organization": organization,
            "plans": selectors.plans(),
            "subscription": selectors.subscription(organization=organization),
            "saved_card": selectors.saved_card(organization=organization),
            "packs": packs,
            "purchases": selectors.recent_pack_purchases(organization=organization),
            "expiring": selectors.expiring_credits(organization=organization),
            "invoices": selectors.invoices(organization=organization)[:5],
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "local_card_form": settings.STRIPE_JS_URL != STRIPE_JS_URL,
            "can_manage": can_manage(request),
            **budget_context(organization),
        },
    )


def _json_error(message: str, status: int = 402) -> JsonResponse:
    return JsonResponse({"status": "failed", "message": message}, status=status)


@manager_required
@require_POST
def card_setup(request):
    """Start saving a card: the client secret Stripe.js confirms with the Card Element."""
    organization = request.organization
    try:
        client_secret = services.start_card_setup(organization=organization)
    except StripeUnavailable as error:
        return _json_error(f"Stripe is not available right now: {error}", status=503)
    return JsonResponse({"client_secret": client_secret})


@manager_required
@require_POST
def replace_card(request):
    """Save (or replace) the organization's card with the SetupIntent Stripe.js confirmed."""
    try:
        card = services.replace_card(
            organization=request.organization,
            setup_intent_id=request.POST.get("setup_intent", ""),
            user=request.user,
        )
    except PaymentDeclined as error:
        return _json_error(error.message)
    except StripeUnavailable as error:
        return _json_error(f"Stripe is not available right now: {error}", status=503)
    return JsonResponse(
        {
            "status": "ok",
            "card": card.label,
            "expiry": card.expiry,
            "message": f"Saved: your {card.label}, expiring {card.expiry}, is the card we charge.",
        }
    )


@manager_required
@require_POST
def buy_pack(request, pack_id: int):
    organization = request.organization
    try:
        pack = selectors.pack(pack_id=pack_id)
    except CreditPack.DoesNotExist as error:
        raise Http404("No such pack") from error
    token = request.POST.get("token", "")
    setup_intent = request.POST.get("setup_intent", "")
    if not (8 <= len(token) <= 64) or not setup_intent:
        return _json_error("The form was incomplete. Reload the page and try again.", 400)
    try:
        checkout = services.buy_pack(
            organization=organization,
            pack=pack,
            token=token,
            setup_intent_id=setup_intent,
            user=request.user,
        )
    except SuspendedOrganization as error:
        return _json_error(str(error), status=403)
    except PaymentDeclined as error:
        return _json_error(error.message)
    except StripeUnavailable as error:
        return _json_error(f"The payment could not be made: {error}", status=503)
    except ValueError:
        return _json_error("This purchase was already made with another pack.", 409)
    purchase = checkout.purchase
    return JsonResponse(
        {
            "status": purchase.status,
            "message": purchase.failure_message,
            "client_secret": checkout.client_secret,
        }
    )


@manager_required
@require_POST
def change_plan(request):
    organization = request.organization
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        plan = selectors.plan(slug=request.POST.get("plan", ""))
    except Plan.DoesNotExist as error:
        raise Http404("No such plan") from error
    try:
        services.change_plan(
            organization=organization,
            plan=plan,
            setup_intent_id=request.POST.get("setup_intent", ""),
            user=request.user,
        )
    except SuspendedOrganization as error:
        if wants_json:
            return _json_error(str(error), status=403)
        messages.error(request, str(error))
        return redirect("billing:overview")
    except PlanChangeInProgress as error:
        message = error.message
        if wants_json:
            return _json_error(message, status=409)
        messages.error(request, message)
        return redirect("billing:overview")
    except (PaymentDeclined, StripeUnavailable) as error:
        # A decline says why in its message; Stripe being down, in its details.
        message = error.details or error.message
        if wants_json:
            return _json_error(message)
        messages.error(request, message)
        return redirect("billing:overview")
    organization.refresh_from_db()
    subscription = selectors.subscription(organization=organization)
    if subscription and subscription.cancel_at_period_end and not plan.is_paid:
        ends = subscription.current_period_end
        text = f"Your {subscription.plan.name} plan ends on {ends:%d %b %Y}; then you are on Free."
    else:
        text = f"You are on the {organization.plan.name} plan."
    if wants_json:
        return JsonResponse({"status": "ok", "plan": organization.plan.slug, "message": text})
    messages.success(request, text)
    return redirect("billing:overview")


@manager_required
@require_POST
def customer_portal(request):
    organization = request.organization
    try:
        url = services.customer_portal_url(
            organization=organization,
            return_url=request.build_absolute_uri(reverse("billing:overview")),
        )
    except (PaymentDeclined, StripeUnavailable):
        messages.error(request, "The Stripe customer portal is not available right now.")
        return redirect("billing:overview")
    return redirect(url)


@organization_required
@require_GET
def invoice_list(request):
    organization = request.organization
    page = Paginator(selectors.invoices(organization=organization), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "billing/invoices.html", {"organization": organization, "page": page})


@organization_required
@require_GET
def invoice_detail(request, number: str):
    organization = request.organization
    invoice = _invoice_or_404(organization, number)
    return render(
        request,
        "billing/invoice.html",
        {"organization": organization, "invoice": invoice, "seller": settings.INVOICE_SELLER},
    )


@organization_required
@require_GET
def invoice_pdf(request, number: str):
    organization = request.organization
    invoice = _invoice_or_404(organization, number)
    response = HttpResponse(
        render_invoice_pdf(invoice, organization=organization), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    return response


def _invoice_or_404(organization, number: str) -> Invoice:
    try:
        return selectors.invoice(organization=organization, number=number)
    except Invoice.DoesNotExist as error:
        raise Http404("No such invoice") from error


@organization_required
@require_GET
def ledger(request):
    organization = request.organization
    page = Paginator(selectors.ledger_entries(organization=organization), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "billing/ledger.html",
        {
            "organization": organization,
            "page": page,
            "entries": label_entries(list(page.object_list)),
            "expiring": selectors.expiring_credits(organization=organization),
        },
    )

"""Another organization's object is always 404, on every route that names one.

The routes are read from the URL resolver: a new route with an object id in its path and no
case below fails `test_every_route_naming_an_object_has_a_cross_tenant_case`, so nobody can
add a tenant-owned endpoint without proving it is fenced.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import ApiKey, Invitation, Membership
from billing.models import Invoice
from tests.accounts.factories import MembershipFactory, UserFactory, api_key_for
from tests.generation.factories import JobFactory, headers
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import Delivery, Event, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _routes(resolver=None, namespace="", prefix=""):
    """(qualified name, route) of every URL pattern, with the namespaces of its includes."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern, inner, route)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}{pattern.name}" if pattern.name else route), route


def _names_an_object(route: str) -> bool:
    return bool(re.search(r"<[^>]+>|\(\?P<", route))


@dataclass
class Tenant:
    membership: Membership
    api_key: str

    @property
    def organization(self):
        return self.membership.organization


def _tenant() -> Tenant:
    membership = MembershipFactory()
    return Tenant(membership, api_key_for(membership.organization))


def _job(victim):
    return JobFactory(organization=victim.organization)


def _member(victim):
    return MembershipFactory(organization=victim.organization, role="member")


def _invitation(victim):
    return Invitation.objects.create(organization=victim.organization, email="new@example.com")


def _invoice(victim):
    return Invoice.objects.create(
        number="IMG-2026-424242",
        organization=victim.organization,
        kind="pack",
        subtotal=500,
        total=500,
        amount_paid=500,
        currency="usd",
        credits_added=100,
    )


def _endpoint(victim):
    return WebhookEndpointFactory(organization=victim.organization)


def _delivery(victim):
    event = Event.objects.create(
        organization=victim.organization, type="job.completed", payload="{}"
    )
    return Delivery.objects.create(
        organization=victim.organization,
        event=event,
        endpoint=_endpoint(victim),
        status=Delivery.Status.FAILED,
    )


def _endpoint_untouched(endpoint):
    return WebhookEndpoint.objects.filter(
        pk=endpoint.pk, secret=endpoint.secret, enabled=endpoint.enabled
    ).exists()


def _delivery_untouched(delivery):
    return Delivery.objects.filter(
        pk=delivery.pk, status=delivery.status, attempt_count=delivery.attempt_count
    ).exists()


def _api_key(victim):
    return ApiKey.objects.filter(organization=victim.organization).get()


@dataclass
class Case:
    """How an attacker reaches the victim's object: over the API with a key, or a page."""

    make: Callable  # victim Tenant -> the object
    url: Callable  # object -> path
    methods: tuple[str, ...]
    api: bool
    unchanged: Callable  # object -> bool, read back after the attack
    body: dict | None = None  # a valid JSON body, so only the object can be wrong


def _same(model, **fields):
    return lambda obj: model.objects.filter(pk=obj.pk, **fields).exists()


def _job_untouched(job):
    return type(job).objects.filter(pk=job.pk, status=job.status).exists()


def _endpoint_page(action: str, methods=("POST",)) -> Case:
    return Case(
        _endpoint,
        lambda e: f"/webhooks/{e.public_id}/{action}",
        methods,
        False,
        _endpoint_untouched,
    )


CASES: dict[str, Case] = {
    "api-job": Case(_job, lambda j: f"/v1/jobs/{j.public_id}", ("GET",), True, _job_untouched),
    "api-job-cancel": Case(
        _job, lambda j: f"/v1/jobs/{j.public_id}/cancel", ("POST",), True, _job_untouched
    ),
    "api-v2-job": Case(_job, lambda j: f"/v2/jobs/{j.public_id}", ("GET",), True, _job_untouched),
    "accounts:api-key-revoke": Case(
        _api_key,
        lambda k: f"/keys/{k.pk}/revoke/",
        ("GET", "POST"),
        False,
        _same(ApiKey, revoked_at=None),
    ),
    "accounts:member-role": Case(
        _member,
        lambda m: f"/team/members/{m.pk}/role/",
        ("POST",),
        False,
        _same(Membership, role="member"),
    ),
    "accounts:member-remove": Case(
        _member,
        lambda m: f"/team/members/{m.pk}/remove/",
        ("GET", "POST"),
        False,
        _same(Membership),
    ),
    "accounts:invitation-revoke": Case(
        _invitation,
        lambda i: f"/team/invitations/{i.pk}/revoke/",
        ("POST",),
        False,
        _same(Invitation, revoked_at=None),
    ),
    "api-webhook-endpoint": Case(
        _endpoint,
        lambda e: f"/v1/webhook-endpoints/{e.public_id}",
        ("DELETE",),
        True,
        _endpoint_untouched,
    ),
    "api-webhook-endpoint-deliveries": Case(
        _endpoint,
        lambda e: f"/v1/webhook-endpoints/{e.public_id}/deliveries",
        ("GET",),
        True,
        _endpoint_untouched,
    ),
    "api-webhook-endpoint-resend-failed": Case(
        _delivery,
        lambda d: f"/v1/webhook-endpoints/{d.endpoint.public_id}/resend-failed",
        ("POST",),
        True,
        _delivery_untouched,
        body={"since": "2026-01-01T00:00:00Z"},
    ),
    "api-webhook-delivery-retry": Case(
        _delivery,
        lambda d: f"/v1/webhook-deliveries/{d.public_id}/retry",
        ("POST",),
        True,
        _delivery_untouched,
    ),
    "webhooks:endpoint": _endpoint_page("", ("GET", "POST")),
    "webhooks:endpoint-rotate-secret": _endpoint_page("rotate-secret/"),
    "webhooks:endpoint-delete": _endpoint_page("delete/"),
    "webhooks:endpoint-enable": _endpoint_page("enable/"),
    "webhooks:endpoint-disable": _endpoint_page("disable/"),
    "webhooks:endpoint-send-test": _endpoint_page("test/"),
    "webhooks:endpoint-resend-failed": Case(
        _delivery,
        lambda d: f"/webhooks/{d.endpoint.public_id}/resend-failed/",
        ("POST",),
        False,
        _delivery_untouched,
    ),
    "webhooks:delivery": Case(
        _delivery,
        lambda d: f"/webhooks/deliveries/{d.public_id}/",
        ("GET",),
        False,
        _delivery_untouched,
    ),
    "webhooks:delivery-redeliver": Case(
        _delivery,
        lambda d: f"/webhooks/deliveries/{d.public_id}/redeliver/",
        ("POST",),
        False,
        _delivery_untouched,
    ),
    "dashboard:job": Case(_job, lambda j: f"/jobs/{j.public_id}/", ("GET",), False, _job_untouched),
    "dashboard:playground-job": Case(
        _job, lambda j: f"/playground/jobs/{j.public_id}/", ("GET",), False, _job_untouched
    ),
    "billing:invoice": Case(
        _invoice, lambda i: f"/billing/invoices/{i.number}/", ("GET",), False, _same(Invoice)
    ),
    "billing:invoice-pdf": Case(
        _invoice, lambda i: f"/billing/invoices/{i.number}/pdf/", ("GET",), False, _same(Invoice)
    ),
}

# Routes with a path parameter that is not another tenant's object id, and why.
NOT_TENANT_OBJECTS = {
    "accounts:password-reset-confirm": "a signed, expiring token for one user, not an id",
    "accounts:accept-invitation": "a signed token for the invitee, not yet a member",
    "generation:image": "a signed, expiring capability URL (docs/api: image URLs need no key)",
    "billing:buy-pack": "credit packs are the public catalog, shared by every organization",
}


def _is_exempt(name: str, route: str) -> bool:
    # The admin is staff-only and not tenant-scoped (tests/security/test_admin.py).
    return route.startswith("admin/") or name in NOT_TENANT_OBJECTS


def test_every_route_naming_an_object_has_a_cross_tenant_case():
    routes = {name: route for name, route in _routes() if _names_an_object(route)}
    uncovered = sorted(
        f"{name} ({route})"
        for name, route in routes.items()
        if name not in CASES and not _is_exempt(name, route)
    )
    assert not uncovered, f"Routes naming an object without a cross-tenant case: {uncovered}"
    stale = sorted(set(CASES) - set(routes))
    assert not stale, f"Cross-tenant cases for routes that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_another_organizations_object_is_404_and_left_alone(client, name):
    case = CASES[name]
    victim, attacker = _tenant(), _tenant()
    obj = case.make(victim)
    if case.api:
        auth = headers(attacker.api_key)
    else:
        client.force_login(attacker.membership.user)
        auth = {}
    for method in case.methods:
        body = {"data": case.body, "content_type": "application/json"} if case.body else {}
        response = getattr(client, method.lower())(case.url(obj), **body, **auth)
        assert response.status_code == 404, (method, response.status_code)
        if case.api:
            assert response.json()["error"]["code"] == "not_found"
    assert case.unchanged(obj)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_owner_reaches_the_same_object(client, name):
    """The cases above are not 404 merely because the URL is wrong."""
    case = CASES[name]
    victim = _tenant()
    obj = case.make(victim)
    if case.api:
        response = client.get(case.url(obj), **headers(victim.api_key))
        assert response.status_code in (200, 405), response.status_code
    else:
        client.force_login(victim.membership.user)
        response = client.get(case.url(obj))
        assert response.status_code in (200, 302, 405), response.status_code


def test_a_user_of_both_organizations_is_fenced_by_the_current_one(client):
    """Membership elsewhere does not open the other organization's objects in this one."""
    victim, attacker = _tenant(), _tenant()
    MembershipFactory(organization=victim.organization, user=UserFactory(), role="member")
    invoice = _invoice(victim)
    client.force_login(attacker.membership.user)
    assert client.get(f"/billing/invoices/{invoice.number}/").status_code == 404

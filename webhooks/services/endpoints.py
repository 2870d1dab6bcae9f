"""Adding, changing and removing an organization's endpoints, within its plan's cap."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from common import outbound
from webhooks import signing
from webhooks.errors import EndpointLimitReached, InvalidEndpoint
from webhooks.models import Delivery, EventType, WebhookEndpoint

SECRET_ROTATION_OVERLAP = timedelta(hours=24)


def check_endpoint_fields(*, url: str, events: list[str] | None) -> dict[str, list[str]]:
    """The problems with an endpoint's URL and event list, by field (empty when none)."""
    problems: dict[str, list[str]] = {}
    try:
        outbound.validate_public_url(url)
    except outbound.UnsafeUrl as exc:
        problems["url"] = [str(exc)]
    if events is not None:
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            problems["events"] = ["Must be a list of event type names."]
        elif not events:
            problems["events"] = ["Name at least one event type, or leave it out for all."]
        elif unknown := sorted(set(events) - set(EventType.values)):
            problems["events"] = [
                f"Unknown event type(s): {', '.join(unknown)}. "
                f"Known types: {', '.join(EventType.values)}."
            ]
    return problems


def create_endpoint(
    *,
    organization: Organization,
    url: str,
    events: list[str] | None = None,
    description: str = "",
) -> WebhookEndpoint:
    """Create an enabled endpoint with a fresh secret, or raise InvalidEndpoint, or
    EndpointLimitReached when the organization has its plan's `max_webhook_endpoints`."""
    problems = check_endpoint_fields(url=url, events=events)
    if len(description) > 500:
        problems["description"] = ["At most 500 characters."]
    if problems:
        raise InvalidEndpoint(problems)
    with transaction.atomic():
        # The organization's row lock serializes concurrent creations, so none slips past the cap.
        Organization.objects.select_for_update().only("pk").get(pk=organization.pk)
        count = WebhookEndpoint.objects.filter(organization=organization).count()
        if count >= organization.plan.max_webhook_endpoints:
            raise EndpointLimitReached(organization=organization, count=count)
        return WebhookEndpoint.objects.create(
            organization=organization,
            url=url,
            description=description,
            event_types=sorted(set(events or [])),
            secret=signing.new_secret(),
        )


def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its deliveries, even while an event for it is being emitted.

    The row lock waits for an emission that targets the endpoint to commit, so that its
    delivery is removed too, and makes later emissions skip the endpoint (emission.py).
    """
    with transaction.atomic():
        list(WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).values("pk"))
        # And its deliveries' rows: an attempt being recorded holds one, and its record is
        # removed with the rest once it commits (attempts._record takes them in this order).
        list(Delivery.objects.select_for_update().filter(endpoint=endpoint).values("pk"))
        endpoint.delete()


def rotate_endpoint_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing alongside it for 24 h."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def enable_endpoint(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "failing_since"])
    return endpoint


def disable_endpoint(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled = False
    endpoint.disabled_reason = WebhookEndpoint.DisabledReason.MANUAL
    endpoint.disabled_at = timezone.now()
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at"])
    return endpoint

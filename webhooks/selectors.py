"""Reads of webhook data, always scoped to an organization: another one's ids are not found."""

from django.db.models import Prefetch

from accounts.models import Organization
from webhooks.models import Attempt, Delivery, WebhookEndpoint


def endpoints(*, organization: Organization):
    return WebhookEndpoint.objects.filter(organization=organization).order_by("-created_at")


def endpoint(*, organization: Organization, endpoint_id: str) -> WebhookEndpoint:
    """The endpoint with this public id, or WebhookEndpoint.DoesNotExist."""
    return WebhookEndpoint.objects.get(organization=organization, public_id=endpoint_id)


def _with_attempts(queryset):
    return queryset.select_related("event").prefetch_related(
        Prefetch("attempts", queryset=Attempt.objects.order_by("attempted_at", "id"))
    )


def endpoint_deliveries(*, organization: Organization, endpoint: WebhookEndpoint, limit=50):
    """The endpoint's newest deliveries first, each with its attempts."""
    return _with_attempts(
        Delivery.objects.filter(organization=organization, endpoint=endpoint).order_by(
            "-created_at", "-id"
        )
    )[:limit]


def job_deliveries(*, organization: Organization, limit=50):
    """The newest deliveries to jobs' own URLs, each with its attempts."""
    return _with_attempts(
        Delivery.objects.filter(organization=organization, endpoint=None).order_by(
            "-created_at", "-id"
        )
    )[:limit]


def delivery(*, organization: Organization, delivery_id: str) -> Delivery:
    """The delivery with this public id, or Delivery.DoesNotExist."""
    return (
        _with_attempts(Delivery.objects.filter(organization=organization))
        .select_related("endpoint")
        .get(public_id=delivery_id)
    )


def deliveries_for_job(*, organization: Organization, job_id: str, limit=50):
    """Every delivery of the events about one job (`job_id` as events record it), newest first."""
    return _with_attempts(
        Delivery.objects.filter(organization=organization, event__job_id=job_id)
        .select_related("endpoint")
        .order_by("-created_at", "-id")
    )[:limit]

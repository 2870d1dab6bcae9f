"""Reads of webhook data, always scoped to an organization: another one's ids are not found."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q

from accounts.models import Organization
from webhooks.errors import InvalidCursor
from webhooks.models import Attempt, Delivery, WebhookEndpoint


def endpoints(*, organization: Organization):
    return WebhookEndpoint.objects.filter(organization=organization).order_by("-created_at")


@dataclass(frozen=True)
class EndpointPage:
    endpoints: list[WebhookEndpoint]
    next_cursor: str | None


def _encode_cursor(endpoint: WebhookEndpoint) -> str:
    raw = json.dumps([endpoint.created_at.isoformat(), endpoint.public_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, public_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(public_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor from None


def endpoint_page(*, organization: Organization, limit: int, cursor: str | None) -> EndpointPage:
    """The organization's endpoints, newest first, `limit` per page (keyset pagination)."""
    endpoints = WebhookEndpoint.objects.filter(organization=organization)
    if cursor:
        created_at, public_id = _decode_cursor(cursor)
        endpoints = endpoints.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, public_id__lt=public_id)
        )
    page = list(endpoints.order_by("-created_at", "-public_id")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    return EndpointPage(endpoints=page, next_cursor=_encode_cursor(page[-1]) if has_more else None)


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

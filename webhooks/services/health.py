"""Endpoint health: a run of failures is noticed, then disabled after five days; a 410 at once.

The organization's owners get an email when a run starts and when the endpoint is disabled.
An endpoint that takes SLOW_ANSWER or longer to answer (or does not answer in time) is
slow for SLOW_LANE_FOR after that attempt: its deliveries go to the slow lane (queues.py).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import selectors as account_selectors
from webhooks.models import WebhookEndpoint

DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
SLOW_ANSWER = timedelta(seconds=1)
SLOW_LANE_FOR = timedelta(minutes=10)


def note_endpoint_latency(endpoint: WebhookEndpoint, latency_ms: int, now: datetime) -> None:
    # Written only on a slow attempt, which has already held its worker slot a second.
    if latency_ms >= SLOW_ANSWER.total_seconds() * 1000:
        endpoint.slow_until = now + SLOW_LANE_FOR
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(slow_until=endpoint.slow_until)


def note_endpoint_success(endpoint: WebhookEndpoint) -> None:
    if endpoint.failing_since is not None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)


def note_endpoint_failure(endpoint: WebhookEndpoint, now: datetime) -> None:
    # Conditional updates: of concurrent failures exactly one starts the run (and emails).
    started = WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    if started:
        endpoint.failing_since = now
        _email_owners(endpoint, "endpoint_failing")
        return
    endpoint.refresh_from_db(fields=["failing_since", "enabled"])
    if endpoint.failing_since and now - endpoint.failing_since >= DISABLE_AFTER_FAILING_FOR:
        disable_failed_endpoint(endpoint, WebhookEndpoint.DisabledReason.FAILING)


def disable_failed_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    now = timezone.now()
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now
    )
    if disabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
        _email_owners(endpoint, "endpoint_disabled")


def _email_owners(endpoint: WebhookEndpoint, template: str) -> None:
    recipients = account_selectors.owner_emails(organization=endpoint.organization)
    if not recipients:
        return
    context = {
        "endpoint": endpoint,
        "organization": endpoint.organization,
        "site_url": settings.SITE_URL,
        "disable_after_days": DISABLE_AFTER_FAILING_FOR.days,
    }
    subject = render_to_string(f"webhooks/email/{template}_subject.txt", context).strip()
    message = render_to_string(f"webhooks/email/{template}.txt", context)
    transaction.on_commit(
        lambda: send_mail(subject, message, None, recipients, fail_silently=False), robust=True
    )

"""Sending one attempt of a delivery through the outbound client, and what came back."""

import email.utils
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from common import outbound
from webhooks import signing
from webhooks.models import Delivery
from webhooks.services.retries import MAX_RETRY_AFTER
from webhooks.services.wire import event_body, signed_headers

RESPONSE_BODY_LOG_BYTES = 1024


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the status code (None when nothing answered) and the rest."""

    status_code: int | None
    latency_ms: int
    response_body: str
    error: str
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        wait = when - timezone.now()
    return min(max(wait, timedelta(seconds=1)), MAX_RETRY_AFTER)


def send(delivery: Delivery) -> Outcome:
    body = event_body(delivery.event)
    started = time.monotonic()
    try:
        headers = signed_headers(delivery=delivery, body=body, timestamp=int(time.time()))
        response = outbound.post(
            delivery.url,
            body=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            max_response_bytes=RESPONSE_BODY_LOG_BYTES,
            allow_truncated=True,
        )
    except (outbound.UnsafeUrl, outbound.OutboundError, signing.InvalidSecret) as exc:
        return Outcome(
            status_code=None,
            latency_ms=round((time.monotonic() - started) * 1000),
            response_body="",
            error=str(exc),
        )
    error = ""
    if 300 <= response.status_code < 400:
        location = response.headers.get("location", "")
        error = "Redirects are not followed" + (f" (Location: {location})" if location else "")
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = _retry_after(response.headers.get("retry-after"))
    return Outcome(
        status_code=response.status_code,
        latency_ms=response.latency_ms,
        response_body=response.body.decode("utf-8", errors="replace"),
        error=error,
        retry_after=retry_after,
    )

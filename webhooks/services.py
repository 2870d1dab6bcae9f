"""Every write of the webhooks app: endpoints, emitting events, delivering them.

An event is written in the caller's transaction together with one Delivery per target,
and the deliveries are enqueued only once that transaction commits: a rolled-back change
sends nothing. A committed delivery is never lost: if its enqueue fails, the periodic
`send_due_deliveries` finds it still pending and due.

Deliveries travel in two lanes, so one organization's failing receivers never take the
turns of everyone's healthy ones: the `webhooks` queue carries only first attempts to
targets not known to be failing; every retry (scheduled, manual or resent) and every
delivery to an endpoint in a failing run goes to `webhooks_retry`. A worker consuming both
takes from them in turn, so a backlog of failing attempts costs a fresh delivery at most
one turn per worker slot; the sweep sends at most `SWEEP_BATCH_PER_ORGANIZATION` of one
organization's deliveries per pass.
"""

import email.utils
import json
import logging
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import Organization
from common import outbound
from webhooks import signing
from webhooks.models import (
    TEST_EVENT_TYPE,
    Attempt,
    Delivery,
    Event,
    EventType,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

# Waits after the 1st, 2nd... failed attempt (API.md); after the last one, the delivery fails.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
RETRY_JITTER = 0.1  # each wait is stretched or shrunk by up to 10 %
MAX_RETRY_AFTER = timedelta(hours=24)
# Waits up to this long ride on a delayed task; longer ones are picked up by the sweep,
# so no task sits for hours in a broker that may redeliver it.
MAX_COUNTDOWN = timedelta(minutes=5)
# A pending delivery this far past due was not enqueued (or its worker died): send it.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 1000
SWEEP_BATCH_PER_ORGANIZATION = 100
FRESH_QUEUE = "webhooks"
RETRY_QUEUE = "webhooks_retry"
RESPONSE_BODY_LOG_BYTES = 1024
DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
SECRET_ROTATION_OVERLAP = timedelta(hours=24)
DEFAULT_JOB_EVENT_TYPES = (EventType.JOB_COMPLETED, EventType.JOB_FAILED)
USER_AGENT = "Imagen-Webhooks/1.0"
# API.md's timestamps: ISO 8601 in UTC, to the second (2024-01-15T10:30:00Z).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class JobWebhookTarget:
    """A job's own webhook URL (v1 `webhook_url`, v2 `webhookUrl`, tasks `callback_url`)."""

    url: str
    secret: str | None  # the job's whsec_ secret, else the organization's secret signs
    event_types: list[str] | None  # full names; None means job.completed and job.failed

    def subscribes_to(self, event_type: str) -> bool:
        wanted = DEFAULT_JOB_EVENT_TYPES if self.event_types is None else self.event_types
        return event_type in wanted


class InvalidEndpoint(Exception):
    """The endpoint's fields are not acceptable; `fields` maps each field to its messages."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))


class EndpointLimitReached(Exception):
    """The organization already has as many endpoints as its plan allows."""

    def __init__(self, *, organization: Organization, count: int):
        plan = organization.plan
        super().__init__(
            f"The {plan.name} plan allows {plan.max_webhook_endpoints} webhook endpoints and "
            f"this organization has {count}. Delete one or upgrade the plan to add another."
        )


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


def _queue_for(*, attempt_count: int, endpoint_failing: bool) -> str:
    return RETRY_QUEUE if attempt_count or endpoint_failing else FRESH_QUEUE


def _queued(deliveries: list[Delivery]) -> list[tuple[int, str]]:
    return [
        (
            delivery.pk,
            _queue_for(
                attempt_count=delivery.attempt_count,
                endpoint_failing=bool(delivery.endpoint_id and delivery.endpoint.failing_since),
            ),
        )
        for delivery in deliveries
    ]


def _enqueue_on_commit(queued: list[tuple[int, str]]) -> None:
    if queued:
        # robust: a broker outage must not turn a committed change into an error; the
        # sweep sends what could not be enqueued.
        transaction.on_commit(lambda: _enqueue(queued), robust=True)


def _enqueue(queued: list[tuple[int, str]], countdown: float | None = None) -> None:
    """Send each (delivery id, queue) to its worker lane."""
    from webhooks.tasks import deliver_webhook

    for delivery_id, queue in queued:
        deliver_webhook.apply_async(args=[delivery_id], countdown=countdown, queue=queue)


def _create_event(*, organization: Organization, event_type: str, data: dict, job_id) -> Event:
    if job_id is None:
        return Event.objects.create(organization=organization, type=event_type, data=data)
    job_id = str(job_id)
    # A job's events are emitted one after another by its worker; should two ever race,
    # the unique constraint makes the loser take the next number.
    for _ in range(5):
        last = Event.objects.filter(organization=organization, job_id=job_id).aggregate(
            last=Max("sequence")
        )["last"]
        try:
            with transaction.atomic():
                return Event.objects.create(
                    organization=organization,
                    type=event_type,
                    data=data,
                    job_id=job_id,
                    sequence=(last or 0) + 1,
                )
        except IntegrityError:
            continue
    raise RuntimeError(f"Could not number an event of job {job_id}")


def emit_event(
    *,
    organization: Organization,
    event_type: str,
    data: dict,
    job_id=None,
    job_target: JobWebhookTarget | None = None,
) -> Event:
    """Record `event_type` and one delivery per target, and send them once the caller commits.

    Targets: the job's own URL when `job_target` subscribes to the type, and every
    enabled endpoint of the organization subscribed to it. With no target the Event is
    returned unsaved: nothing would ever read it.
    """
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(organization=organization, enabled=True)
        if endpoint.subscribes_to(event_type)
    ]
    wants_job_target = job_target is not None and job_target.subscribes_to(event_type)
    if not endpoints and not wants_job_target:
        return Event(
            organization=organization,
            type=event_type,
            data=data,
            job_id="" if job_id is None else str(job_id),
        )
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        event = _create_event(
            organization=organization, event_type=event_type, data=data, job_id=job_id
        )
        deliveries = [
            Delivery(organization=organization, event=event, endpoint=e, next_attempt_at=now)
            for e in endpoints
        ]
        if wants_job_target:
            deliveries.append(
                Delivery(
                    organization=organization,
                    event=event,
                    target_url=job_target.url,
                    target_secret=job_target.secret or "",
                    next_attempt_at=now,
                )
            )
        created = Delivery.objects.bulk_create(deliveries)
        if any(d.pk is None for d in created):  # backends that cannot return ids
            created = list(Delivery.objects.filter(event=event).select_related("endpoint"))
        _enqueue_on_commit(_queued(created))
    return event


def send_test_event(*, endpoint: WebhookEndpoint) -> Delivery:
    """Send a `webhook.test` event to this endpoint only, whatever it subscribes to."""
    with transaction.atomic():
        event = Event.objects.create(
            organization=endpoint.organization,
            type=TEST_EVENT_TYPE,
            data={
                "endpoint_id": endpoint.public_id,
                "message": "A test event sent from the dashboard.",
            },
        )
        delivery = Delivery.objects.create(
            organization=endpoint.organization,
            event=event,
            endpoint=endpoint,
            next_attempt_at=timezone.now(),
        )
        _enqueue_on_commit(_queued([delivery]))
    return delivery


def notify_if_credits_low(organization: Organization, balance_before: int, balance_after: int):
    """Emit `credits.low` when this change takes the balance below the organization's
    threshold; a balance that stays below it (or rises) emits nothing, so each crossing
    is announced once. Call it in the transaction that moved the balance."""
    threshold = organization.low_credit_threshold
    if not balance_before >= threshold > balance_after:
        return None
    return emit_event(
        organization=organization,
        event_type=EventType.CREDITS_LOW,
        data={
            "organization": organization.slug,
            "balance": balance_after,
            "threshold": threshold,
        },
    )


def retry_delivery(*, delivery: Delivery) -> Delivery:
    """Send the delivery's event again now (same `webhook-id`), whatever its status."""
    with transaction.atomic():
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at"])
        _enqueue_on_commit([(delivery.pk, RETRY_QUEUE)])
    return delivery


def resend_failed_deliveries(*, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery of this endpoint created since `since`; return how many."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(
                endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since
            ).values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        _enqueue_on_commit([(pk, RETRY_QUEUE) for pk in ids])
    return len(ids)


def send_due_deliveries() -> int:
    """Enqueue pending deliveries well past due (a lost enqueue, a dead worker, a long wait),
    oldest first, at most SWEEP_BATCH_PER_ORGANIZATION of one organization per pass."""
    due = (
        Delivery.objects.filter(
            status=Delivery.Status.PENDING,
            next_attempt_at__lte=timezone.now() - SWEEP_GRACE,
        )
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("organization_id")],
                order_by=[F("next_attempt_at").asc(), F("pk").asc()],
            )
        )
        .filter(place__lte=SWEEP_BATCH_PER_ORGANIZATION)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "attempt_count", "endpoint__failing_since")[:SWEEP_BATCH]
    )
    queued = [
        (pk, _queue_for(attempt_count=attempts, endpoint_failing=failing_since is not None))
        for pk, attempts, failing_since in due
    ]
    _enqueue(queued)
    return len(queued)


def event_body(event: Event) -> bytes:
    """The JSON body every target of the event receives, byte for byte the same each time."""
    created_at = event.created_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    envelope = json.dumps(
        {
            "id": event.public_id,
            "type": event.type,
            "created_at": created_at,
            "sequence": event.sequence,
        },
        separators=(",", ":"),
    )
    return f'{envelope[:-1]},"data":{event.payload}}}'.encode()


def signed_headers(*, delivery: Delivery, body: bytes, timestamp: int) -> dict[str, str]:
    if delivery.endpoint_id:
        secrets = delivery.endpoint.signing_secrets()
    else:
        secrets = [delivery.target_secret or delivery.organization.webhook_signing_secret]
    message_id = delivery.event.public_id
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature(
            secrets=secrets, message_id=message_id, timestamp=timestamp, body=body
        ),
    }


@dataclass(frozen=True)
class _Outcome:
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


def _send(delivery: Delivery) -> _Outcome:
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
        return _Outcome(
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
    return _Outcome(
        status_code=response.status_code,
        latency_ms=response.latency_ms,
        response_body=response.body.decode("utf-8", errors="replace"),
        error=error,
        retry_after=retry_after,
    )


def _jittered(wait: timedelta) -> timedelta:
    return wait * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)  # noqa: S311 - not crypto


def next_retry_wait(*, failed_attempts: int, retry_after: timedelta | None = None):
    """How long to wait after `failed_attempts` failures, or None when it is time to give up."""
    if failed_attempts > len(RETRY_SCHEDULE):
        return None
    return retry_after or _jittered(RETRY_SCHEDULE[failed_attempts - 1])


def attempt_delivery(*, delivery_id: int) -> Attempt | None:
    """Make the next attempt of a pending, due delivery and record it; None if not due.

    The delivery is claimed by pushing its due time past the attempt's longest run, so
    a duplicate task or the sweep cannot send it twice at once.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + lease)
    if not claimed:
        return None
    # The organization is read only for a job's own target without a secret of its own.
    delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    attempted_at = timezone.now()
    if delivery.endpoint_id and not delivery.endpoint.enabled:
        outcome = _Outcome(None, 0, "", "Not sent: the endpoint is disabled")
    else:
        outcome = _send(delivery)
    return _record(delivery=delivery, outcome=outcome, attempted_at=attempted_at)


@contextmanager
def _bookkeeping_transaction():
    """A transaction whose commit does not wait for the disk (PostgreSQL).

    An attempt record is bookkeeping of an at-least-once delivery: should the database
    crash right after such a commit, the worst outcome is that the delivery is sent once
    more, with the same webhook-id receivers deduplicate on. Not waiting for the WAL
    flush takes a disk sync off every delivery a worker makes.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _record(*, delivery: Delivery, outcome: _Outcome, attempted_at: datetime) -> Attempt:
    with _bookkeeping_transaction():
        return _record_in_transaction(delivery=delivery, outcome=outcome, attempted_at=attempted_at)


def _record_in_transaction(*, delivery, outcome: _Outcome, attempted_at: datetime) -> Attempt:
    attempt = Attempt.objects.create(
        delivery=delivery,
        attempted_at=attempted_at,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        response_body=outcome.response_body[:RESPONSE_BODY_LOG_BYTES],
        error=outcome.error,
    )
    delivery.attempt_count += 1
    endpoint = delivery.endpoint
    now = timezone.now()
    wait = None
    if outcome.succeeded:
        delivery.status = Delivery.Status.SUCCEEDED
        if endpoint is not None and endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
    elif outcome.status_code == 410:
        # The receiver says this URL is gone for good: stop sending there at once.
        delivery.status = Delivery.Status.FAILED
        if endpoint is not None:
            _disable_failed_endpoint(endpoint, WebhookEndpoint.DisabledReason.GONE)
    elif endpoint is not None and not endpoint.enabled:
        delivery.status = Delivery.Status.FAILED
    else:
        if endpoint is not None:
            _note_endpoint_failure(endpoint, now)
        wait = next_retry_wait(
            failed_attempts=delivery.attempt_count, retry_after=outcome.retry_after
        )
        if wait is None:
            delivery.status = Delivery.Status.FAILED
    delivery.next_attempt_at = None if wait is None else now + wait
    delivery.save(update_fields=["status", "attempt_count", "next_attempt_at"])
    if wait is not None and wait <= MAX_COUNTDOWN:
        delivery_id = delivery.pk
        transaction.on_commit(
            lambda: _enqueue([(delivery_id, RETRY_QUEUE)], countdown=wait.total_seconds()),
            robust=True,
        )
    return attempt


def _note_endpoint_failure(endpoint: WebhookEndpoint, now: datetime) -> None:
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
        _disable_failed_endpoint(endpoint, WebhookEndpoint.DisabledReason.FAILING)


def _disable_failed_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
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

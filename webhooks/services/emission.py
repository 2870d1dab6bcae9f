"""Emitting events: one Event and one Delivery per target, sent once the caller commits.

An event is written in the caller's transaction together with one Delivery per target,
and the deliveries are enqueued only once that transaction commits: a rolled-back change
sends nothing. A committed delivery is never lost: if its enqueue fails, the periodic
`send_due_deliveries` finds it still pending and due.
"""

from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Organization
from webhooks import queues
from webhooks.models import TEST_EVENT_TYPE, Delivery, Event, EventType, WebhookEndpoint

DEFAULT_JOB_EVENT_TYPES = (EventType.JOB_COMPLETED, EventType.JOB_FAILED)


@dataclass(frozen=True)
class JobWebhookTarget:
    """A job's own webhook URL (v1 `webhook_url`, v2 `webhookUrl`, tasks `callback_url`)."""

    url: str
    secret: str | None  # the job's whsec_ secret, else the organization's secret signs
    event_types: list[str] | None  # full names; None means job.completed and job.failed

    def subscribes_to(self, event_type: str) -> bool:
        wanted = DEFAULT_JOB_EVENT_TYPES if self.event_types is None else self.event_types
        return event_type in wanted


def _still_there(endpoints: list) -> list:
    """The endpoints not removed since they were read, kept from removal until the caller
    commits: a delivery never points at a removed endpoint (delete_endpoint).

    On PostgreSQL a KEY SHARE lock, which waits for a removal under way and lets renames,
    rotations and disabling proceed; other databases serialize their writers anyway.
    """
    if not endpoints:
        return endpoints
    table = WebhookEndpoint._meta.db_table
    ids = [endpoint.pk for endpoint in endpoints]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%s) FOR KEY SHARE",  # noqa: S608
                [ids],
            )
            kept = {row[0] for row in cursor.fetchall()}
    else:
        kept = set(WebhookEndpoint.objects.filter(pk__in=ids).values_list("pk", flat=True))
    return [endpoint for endpoint in endpoints if endpoint.pk in kept]


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
        endpoints = _still_there(endpoints)
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
        queues.enqueue_on_commit(queues.queued(created))
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
        queues.enqueue_on_commit(queues.queued([delivery]))
    return delivery

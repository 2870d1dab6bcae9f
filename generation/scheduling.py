"""Which waiting job a worker starts next: the concurrent-job limits and the fair turn.

Jobs wait in the database. A run_job message is a *turn* on an engine family's queue, not
a job: one is published for each accepted job (generation.submission), one for each family
where an organization's jobs wait when one of its jobs finishes (generation.lifecycle), and
the beat's sweep re-issues the turns a broker lost. The worker that takes a turn starts the
next waiting job of the family whose organization runs fewer jobs than its
`max_concurrent_jobs`, choosing the organization that started a job least recently
(round-robin by last start), then that organization's oldest waiting job. When no job is
eligible the turn is dropped: the finish that frees a slot publishes the next one.

An organization's running count is its jobs in the running state: no counter to drift,
and a dead worker's job holds its slot only until it runs again or the reaper fails it.
docs/architecture.md ("Scheduling") has the whole design.
"""

import functools
import logging
import uuid

from celery import current_app
from django.db import connection
from django.db.models import Count, F, Max, Min
from django.utils import timezone
from kombu.exceptions import ChannelError, KombuError

from accounts.models import Organization
from billing.models import Plan
from generation.models import Job

logger = logging.getLogger(__name__)

RUN_JOB = "generation.tasks.run_job"
# A turn for a freed slot (or re-issued by the sweep) is for a job that can start now; an
# accepted job's turn may find its organization at its limit and be dropped. On Redis a
# lower number is taken first, so a burst of submissions never queues ahead of a slot.
FREED_SLOT_PRIORITY = 0
ACCEPTED_JOB_PRIORITY = 9
# Held for the claim's transaction: two workers counting one organization's running jobs
# at once could each start its last free slot. A claim is one short statement.
CLAIM_LOCK = 0x696D6167


def publish_turn(*, job_id, queue: str) -> None:
    """Publish a turn on `queue`, named for the waiting job `job_id` (the worker waits for
    that job's row to commit); raise KombuError or OSError when the broker is unreachable.

    By name: generation.tasks, which defines run_job, imports this module.
    """
    current_app.signature(RUN_JOB, args=[str(job_id)], queue=queue).apply_async(
        retry=False, priority=FREED_SLOT_PRIORITY
    )


def publish_turns(*, finished: Job) -> None:
    """Publish a turn on each family where the organization of the `finished` job has jobs
    waiting: one of its slots is free. A broker that is down loses them to the sweep, not
    the jobs."""
    waiting = Job.objects.filter(organization_id=finished.organization_id, status=Job.Status.QUEUED)
    for queue in waiting.order_by("queue").values_list("queue", flat=True).distinct():
        # A turn names a job of its family that exists: in its own, the finished one.
        if queue == finished.queue:
            job_id = finished.pk
        else:
            job_id = waiting.filter(queue=queue).values_list("pk", flat=True).first()
        if job_id is None:
            continue  # started or canceled meanwhile
        try:
            publish_turn(job_id=job_id, queue=queue)
        except (KombuError, OSError):
            logger.warning("Could not publish a turn on %s; the sweep will", queue, exc_info=True)


@functools.cache
def _claim_sql() -> str:
    job, organization, plan = (model._meta.db_table for model in (Job, Organization, Plan))
    return f"""
        UPDATE {job} SET status = 'running', started_at = %(now)s, progress = 0,
               attempts = attempts + 1, turn = %(turn)s
        WHERE id = (
            WITH waiting AS (
                SELECT DISTINCT organization_id FROM {job}
                WHERE status = 'queued' AND queue = %(queue)s
            ), eligible AS (
                SELECT w.organization_id,
                       (SELECT max(s.started_at) FROM {job} s
                        WHERE s.organization_id = w.organization_id
                          AND s.started_at IS NOT NULL) AS last_started
                FROM waiting w
                JOIN {organization} o ON o.id = w.organization_id
                JOIN {plan} p ON p.id = o.plan_id
                WHERE (SELECT count(*) FROM {job} r
                       WHERE r.organization_id = w.organization_id AND r.status = 'running')
                      < coalesce(nullif(o.max_concurrent_jobs_override, 0), p.max_concurrent_jobs)
            )
            SELECT j.id FROM {job} j JOIN eligible e ON e.organization_id = j.organization_id
            WHERE j.status = 'queued' AND j.queue = %(queue)s
            ORDER BY e.last_started NULLS FIRST, j.created_at, j.id
            LIMIT 1
            FOR UPDATE OF j SKIP LOCKED
        )
        RETURNING id
    """  # noqa: S608 - table names from the models


def claim_next_job(*, queue: str, turn: str) -> uuid.UUID | None:
    """Mark the next eligible waiting job of `queue` running for `turn`, in the caller's
    transaction, and return its id; None when every waiting organization is at its limit."""
    if connection.vendor != "postgresql":
        return _claim_next_job_portably(queue=queue, turn=turn)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])
        # Read once the lock is held: a start stamped while waiting for it could fall before
        # the finish that freed its slot.
        now = timezone.now()
        cursor.execute(_claim_sql(), {"queue": queue, "turn": turn, "now": now})
        row = cursor.fetchone()
    return row[0] if row else None


def _claim_next_job_portably(*, queue: str, turn: str) -> uuid.UUID | None:
    # The embedded default's SQLite: its IMMEDIATE transactions already run one at a time.
    now = timezone.now()
    waiting = _waiting_per_organization(queue)
    if not waiting:
        return None
    last_started = dict(
        Job.objects.filter(organization_id__in=waiting, started_at__isnull=False)
        .values_list("organization_id")
        .annotate(last=Max("started_at"))
    )
    eligible = [org_id for org_id, free in _free_slots(list(waiting)).items() if free > 0]
    if not eligible:
        return None
    chosen = min(
        eligible,
        key=lambda org_id: (
            org_id in last_started,
            last_started.get(org_id) or now,
            waiting[org_id],
        ),
    )
    job_id = (
        Job.objects.filter(organization_id=chosen, status=Job.Status.QUEUED, queue=queue)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING,
        started_at=now,
        progress=0,
        attempts=F("attempts") + 1,
        turn=turn,
    )
    return job_id


def _waiting_per_organization(queue: str) -> dict[int, object]:
    """The organizations with jobs waiting on `queue`, each with its oldest's created_at."""
    return dict(
        Job.objects.filter(status=Job.Status.QUEUED, queue=queue)
        .values_list("organization_id")
        .annotate(first=Min("created_at"))
    )


def _free_slots(organization_ids: list[int]) -> dict[int, int]:
    """How many more jobs each organization may run now (its limit less its running jobs)."""
    running = dict(
        Job.objects.filter(organization_id__in=organization_ids, status=Job.Status.RUNNING)
        .values_list("organization_id")
        .annotate(n=Count("pk"))
    )
    organizations = Organization.objects.filter(pk__in=organization_ids).select_related("plan")
    return {o.pk: o.max_concurrent_jobs - running.get(o.pk, 0) for o in organizations}


def turns_queued(queue: str) -> int:
    """The turns waiting in the broker's `queue` (not those a worker holds)."""
    with current_app.connection_for_read() as broker:
        try:
            return broker.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:
            return 0  # no such queue: nothing was ever published there, or it emptied


def reissue_lost_turns() -> int:
    """Publish the turns missing for jobs that could start now; return how many.

    A broker restart loses the turns it held, and a finish whose publish failed loses its
    own: the jobs they stood for would otherwise wait for the next finish of their
    organization. Each family gets as many turns as it has jobs able to start (within their
    organization's free slots) less the turns already queued; a spare turn finds nothing
    eligible and is dropped, so erring high costs a message, never a double run.
    """
    families = (
        Job.objects.filter(status=Job.Status.QUEUED)
        .order_by("queue")
        .values_list("queue", flat=True)
        .distinct()
    )
    published = 0
    for queue in families:
        waiting = (
            Job.objects.filter(status=Job.Status.QUEUED, queue=queue)
            .values_list("organization_id")
            .annotate(n=Count("pk"))
        )
        waiting = dict(waiting)
        free = _free_slots(list(waiting))
        startable = sum(min(n, max(free.get(org_id, 0), 0)) for org_id, n in waiting.items())
        missing = startable - turns_queued(queue)
        if missing <= 0:
            continue
        oldest = (
            Job.objects.filter(status=Job.Status.QUEUED, queue=queue)
            .order_by("created_at")
            .values_list("pk", flat=True)[:missing]
        )
        for job_id in oldest:
            publish_turn(job_id=job_id, queue=queue)
            published += 1
    if published:
        logger.warning("Re-issued %d lost turns", published)
    return published

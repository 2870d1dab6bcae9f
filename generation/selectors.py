"""Every read of jobs, always scoped to the organization asking."""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Prefetch, Q, Sum
from django.db.models.functions import TruncDate

from accounts.models import ApiKey, Organization
from common.fastpaths.orm import RowReader
from generation.models import Job, JobImage


class InvalidCursor(ValueError):
    pass


def _servable_image_rows():
    return JobImage.objects.filter(quarantined=False).exclude(storage_path="")


def _servable_images():
    return Prefetch("images", queryset=_servable_image_rows(), to_attr="servable_images")


# Every client polls its jobs: one query made once, read into a Job as the ORM would
# (common.fastpaths.orm).
_JOBS = RowReader(Job)


def get_job(*, organization: Organization, job_ref: str) -> Job | None:
    """The organization's job by its `img_…` id or its UUID; None when not theirs."""
    if job_ref.startswith("img_"):
        where, value = "organization_id = %s AND public_id = %s LIMIT 1", job_ref
    else:
        try:
            job_id = uuid.UUID(job_ref)
        except ValueError:
            return None
        # As the ORM would send it: SQLite keeps UUIDs as hex text.
        where = "organization_id = %s AND id = %s LIMIT 1"
        value = Job._meta.pk.get_db_prep_value(job_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_JOBS.select(where), [organization.pk, value])
        row = cursor.fetchone()
    job = None if row is None else _JOBS.instance(row)
    if job is not None:
        # Images get their files in the transaction that completes the job (or that a
        # moderator's approval completes it in): an unfinished job has none to look up.
        job.servable_images = (
            list(_servable_image_rows().filter(job=job))
            if job.status == Job.Status.COMPLETED
            else []
        )
    return job


# What `status=` may name in GET /v1/jobs: the statuses the v1 job object shows.
LIST_STATUSES = {
    "processing": Job.UNFINISHED,
    "completed": (Job.Status.COMPLETED,),
    "failed": (Job.Status.FAILED,),
    "canceled": (Job.Status.CANCELED,),
}


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    # RecursionError: a forged cursor can hold JSON nested deeper than the decoder goes.
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise InvalidCursor(cursor) from None


def list_jobs(
    *, organization: Organization, status: str | None, limit: int, cursor: str | None
) -> JobPage:
    """The organization's jobs, newest first, `limit` per page (keyset pagination)."""
    jobs = Job.objects.filter(organization=organization)
    if status:
        jobs = jobs.filter(status__in=LIST_STATUSES[status])
    if cursor:
        created_at, job_id = _decode_cursor(cursor)
        jobs = jobs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=job_id))
    page = list(
        jobs.order_by("-created_at", "-pk").prefetch_related(_servable_images())[: limit + 1]
    )
    has_more = len(page) > limit
    page = page[:limit]
    return JobPage(jobs=page, next_cursor=_encode_cursor(page[-1]) if has_more else None)


@dataclass(frozen=True)
class UsageDay:
    date: date
    requests: int
    images: int
    credits_used: int


def usage_by_day(
    *, organization: Organization, start: date, end: date, api_key: ApiKey | None = None
) -> list[UsageDay]:
    """One row per day from `start` to `end` (UTC): jobs created, images made, credits kept;
    of the jobs submitted with `api_key` only, when given."""
    jobs = Job.objects.filter(
        organization=organization, created_at__date__gte=start, created_at__date__lte=end
    )
    if api_key is not None:
        jobs = jobs.filter(api_key=api_key)
    rows = (
        jobs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            requests=Count("pk"),
            images=Sum("num_images", filter=Q(status=Job.Status.COMPLETED), default=0),
            credits_used=Sum("credits_used", default=0),
        )
    )
    by_day = {row["day"]: row for row in rows}
    days = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        row = by_day.get(day, {})
        days.append(
            UsageDay(
                date=day,
                requests=row.get("requests", 0),
                images=row.get("images", 0),
                credits_used=row.get("credits_used", 0),
            )
        )
    return days


@dataclass(frozen=True)
class KeyUsageDay:
    date: date
    api_key_id: int | None
    requests: int
    images: int
    credits_used: int


def usage_by_key_and_day(
    *, organization: Organization, start: date, end: date
) -> list[KeyUsageDay]:
    """Per day from `start` to `end` (UTC) and per API key (None: the pages' submissions),
    the days a key submitted jobs only: newest day first, then by key."""
    rows = (
        Job.objects.filter(
            organization=organization, created_at__date__gte=start, created_at__date__lte=end
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "api_key_id")
        .annotate(
            requests=Count("pk"),
            images=Sum("num_images", filter=Q(status=Job.Status.COMPLETED), default=0),
            credits_used=Sum("credits_used", default=0),
        )
        .order_by("-day", "api_key_id")
    )
    return [
        KeyUsageDay(
            date=row["day"],
            api_key_id=row["api_key_id"],
            requests=row["requests"],
            images=row["images"],
            credits_used=row["credits_used"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class JobFilters:
    """What the dashboard's job history may be narrowed by; None means any."""

    status: str | None = None
    model: str | None = None
    created_from: date | None = None
    created_to: date | None = None


def job_history(*, organization: Organization, filters: JobFilters, limit: int) -> list[Job]:
    """The organization's newest `limit` jobs matching `filters`, with their servable images."""
    jobs = Job.objects.filter(organization=organization)
    if filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.model:
        jobs = jobs.filter(model_id=filters.model)
    if filters.created_from:
        jobs = jobs.filter(created_at__date__gte=filters.created_from)
    if filters.created_to:
        jobs = jobs.filter(created_at__date__lte=filters.created_to)
    return list(
        jobs.select_related("model", "api_key")
        .order_by("-created_at", "-pk")
        .prefetch_related(_servable_images())[:limit]
    )

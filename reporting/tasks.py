"""Scheduled reporting work (CELERY_BEAT_SCHEDULE in config/settings/base.py)."""

from celery import shared_task

from reporting import services


@shared_task
def rollup_recent_usage() -> int:
    """Recompute today's and yesterday's usage rollups; return how many organizations they hold."""
    return sum(result.organizations for result in services.rollup_recent_usage())

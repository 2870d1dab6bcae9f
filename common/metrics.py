"""The metrics every process records and `/metrics` serves, in Prometheus' text format.

Only the definitions live here (common knows no other app); each app increments its own
where the thing happens. Labels are closed sets (route patterns, codes, model ids, plan
slugs), never a raw path or an id, so a series is never made per customer or per job.

With PROMETHEUS_MULTIPROC_DIR set before the process starts (prometheus_client reads it
when it is imported), every web process and Celery worker process writes its values to
its own files in that shared directory, and a scrape merges them all
(`registry_for_scrape`); unset, each process serves only its own values.
"""

import logging
import os
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import REGISTRY, GaugeMetricFamily

logger = logging.getLogger(__name__)

# Seconds: an API call is milliseconds, a synchronous submission may wait up to a minute.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ENGINE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUEST_SECONDS = Histogram(
    "imagen_http_request_duration_seconds",
    "HTTP requests by route pattern, method and status, and the time each took; "
    "its _count is the number of requests.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)
SUBMISSIONS = Counter(
    "imagen_submissions_total",
    "Job submissions past the rate limit, by dialect, plan and outcome "
    "(accepted, or the refusal's error code).",
    ["dialect", "plan", "outcome"],
)
JOBS_FINISHED = Counter(
    "imagen_jobs_finished_total",
    "Jobs reaching a terminal status (completed, failed, canceled); code is a failed "
    "job's error code, empty otherwise.",
    ["status", "code"],
)
ENGINE_SECONDS = Histogram(
    "imagen_engine_duration_seconds",
    "Time an engine spent generating one job's images, by model, whatever the outcome.",
    ["model"],
    buckets=ENGINE_BUCKETS,
)
WEBHOOK_ATTEMPTS = Counter(
    "imagen_webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered, retried (another attempt is "
    "scheduled), gave_up (the retries are spent) or failed (stopped for good: the "
    "receiver answered 410 or the endpoint is disabled).",
    ["outcome"],
)
LEDGER_OPERATIONS = Counter(
    "imagen_ledger_operations_total",
    "Credit ledger entries committed, by kind (grant, purchase, reserve, refund, ...).",
    ["kind"],
)
RATE_LIMIT_REFUSALS = Counter(
    "imagen_rate_limit_refusals_total",
    "Calls refused by a rate limit, by limit (submissions, reads, webhook_changes) and "
    "window (minute, day).",
    ["limit", "window"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges from the shared directory (a no-op without it);
    its counters and histograms stay, so totals never go backwards."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class QueueDepthCollector:
    """`imagen_queue_depth{queue}`: messages waiting in each Celery queue, read at scrape
    time from the broker (LLEN of the queue's list on Redis). Other brokers are skipped."""

    def __init__(self, broker_url: str, queues: list[str]):
        self.broker_url = broker_url
        self.queues = queues

    def collect(self):
        if not self.broker_url.startswith(("redis://", "rediss://")):
            return
        depth = GaugeMetricFamily(
            "imagen_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            pipeline = _broker_client(self.broker_url).pipeline(transaction=False)
            for queue in self.queues:
                pipeline.llen(queue)
            lengths = pipeline.execute()
        except Exception:
            # The scrape still serves everything else; the gap in this series is the alert.
            logger.warning("Could not read the queue depths from the broker", exc_info=True)
            return
        for queue, length in zip(self.queues, lengths, strict=True):
            depth.add_metric([queue], length)
        yield depth


@cache
def _broker_client(broker_url: str):
    import redis

    return redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1)


def registry_for_scrape(*, broker_url: str, queues: list[str]) -> CollectorRegistry:
    """What one scrape serves: every process's values (or this one's) and the queue depths."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(QueueDepthCollector(broker_url, queues))
    return registry


class _ThisProcess:
    """This process's metrics (and the client's process and platform collectors)."""

    def collect(self):
        return REGISTRY.collect()

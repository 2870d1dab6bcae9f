"""Scheduling benchmark: from a slot freeing to the next waiting job starting.

N organizations, each limited to L jobs at once (the staff override), each submit a backlog
of jobs of the test-only slow engine (it sleeps, so the two cores stay free for the
scheduler); real worker processes (tests/integration/slow_worker.py, prefork) consume the
`local` queue with enough slots for every organization's limit, so it is the limits, not
the workers, that keep jobs waiting. An organization's k-th start (k >= L) was made possible
by its (k-L)-th completion: the latency is that start's `started_at` less that
completion's `completed_at`, both written by the workers. p50 / p95 / p99 over every such
start; `steady_*` counts only the slots freed once the submissions and the workers' start
are `--warmup` seconds behind. By default the jobs are submitted while the workers run
(each accepted job's turn then competes with the freed slots' turns); --backlog-first
submits them all first.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagen_bench_sched \
    REDIS_URL=redis://127.0.0.1:6379/2 \
    .venv/bin/python bench/scheduling.py [--organizations 4] [--limit 1] [--jobs 25]

It migrates the database it is given and adds organizations and a model to it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--limit", type=int, default=1, help="each organization's jobs at once")
    parser.add_argument("--jobs", type=int, default=25, help="backlog per organization")
    parser.add_argument("--seconds", type=float, default=0.3, help="one job's render time")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="steady_*: only slots freed this many seconds after the last submission "
        "and the first start",
    )
    parser.add_argument(
        "--backlog-first",
        action="store_true",
        help="submit every job before the workers start (no submissions during the run)",
    )
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL (the broker).")

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.models import Organization, User
    from billing import services as billing
    from config.celery import app
    from generation import catalog
    from generation.models import Job, ModelCatalogEntry
    from generation.requests import GenerationRequest
    from generation.submission import submit_job

    call_command("migrate", verbosity=0)
    runs = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    ModelCatalogEntry.objects.update_or_create(
        id="bench-sleep",
        defaults={
            "name": "Bench sleep",
            "engine": "slow",
            "engine_settings": {"seconds": args.seconds, "runs_dir": str(runs)},
            "credits_per_image": 1,
            "capabilities": ["text-to-image"],
        },
    )
    catalog.clear_local_cache()
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("local")

    slots = args.organizations * args.limit
    per_worker = 1 if args.pool == "solo" else -(-slots // args.workers)
    workers = []

    def start_workers():
        workers.extend(
            subprocess.Popen(
                [sys.executable, "-m", "tests.integration.slow_worker"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "WORKER_POOL": args.pool,
                    "WORKER_CONCURRENCY": str(per_worker),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        )
        time.sleep(8)  # the workers' start, so the first wave is not measured against it

    if not args.backlog_first:
        start_workers()
    submitted_at = None
    run = uuid.uuid4().hex[:8]
    organizations = []
    for index in range(args.organizations):
        owner = User.objects.create(email=f"bench-sched-{run}-{index}@example.com")
        organization = account_services.create_organization(name=f"Sched {index}", owner=owner)
        Organization.objects.filter(pk=organization.pk).update(
            max_concurrent_jobs_override=args.limit
        )
        organization.refresh_from_db()
        billing.grant_credits(
            organization=organization, amount=args.jobs, reference=f"bench-sched:{run}:{index}"
        )
        organizations.append(organization)
    try:
        # Interleaved, as concurrent customers would submit.
        for _ in range(args.jobs):
            for organization in organizations:
                submit_job(
                    organization=organization,
                    api_key=None,
                    request=GenerationRequest(
                        dialect="v1",
                        model="bench-sleep",
                        prompt="a lighthouse",
                        width=256,
                        height=256,
                    ),
                )
        submitted_at = timezone.now()
        if args.backlog_first:
            start_workers()
        ours = Job.objects.filter(organization__in=organizations)
        deadline = time.monotonic() + 60 + args.jobs * args.seconds * 4
        while ours.filter(status__in=Job.UNFINISHED).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)

    latencies, steady, most_at_once = [], [], 0
    first_start = min(ours.values_list("started_at", flat=True))
    steady_from = max(submitted_at, first_start) + timedelta(seconds=args.warmup)
    for organization in organizations:
        jobs = list(ours.filter(organization=organization, status=Job.Status.COMPLETED))
        starts = sorted(job.started_at for job in jobs)
        completions = sorted(job.completed_at for job in jobs)
        for k in range(args.limit, len(starts)):
            freed = completions[k - args.limit]
            latency = (starts[k] - freed).total_seconds() * 1000
            latencies.append(latency)
            if freed >= steady_from:
                steady.append(latency)
        moments = sorted([(s, 1) for s in starts] + [(c, -1) for c in completions])
        running = 0
        for _, change in moments:
            running += change
            most_at_once = max(most_at_once, running)
    latencies.sort()
    steady.sort()
    print(
        json.dumps(
            {
                "organizations": args.organizations,
                "limit": args.limit,
                "jobs_per_organization": args.jobs,
                "job_seconds": args.seconds,
                "worker_processes": args.workers,
                "pool": args.pool,
                "backlog_first": args.backlog_first,
                "worker_slots": per_worker * args.workers,
                "completed": ours.filter(status=Job.Status.COMPLETED).count(),
                "unfinished": ours.filter(status__in=Job.UNFINISHED).count(),
                "most_running_at_once_per_organization": most_at_once,
                "samples": len(latencies),
                "latency_ms_p50": round(statistics.median(latencies), 1),
                "latency_ms_p95": round(percentile(latencies, 95), 1),
                "latency_ms_p99": round(percentile(latencies, 99), 1),
                "latency_ms_max": round(latencies[-1], 1),
                "steady_samples": len(steady),
                "steady_ms_p50": round(statistics.median(steady), 1) if steady else None,
                "steady_ms_p95": round(percentile(steady, 95), 1) if steady else None,
                "steady_ms_max": round(steady[-1], 1) if steady else None,
            }
        )
    )


if __name__ == "__main__":
    main()

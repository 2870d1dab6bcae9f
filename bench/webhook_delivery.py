"""Webhook delivery benchmark: one worker process delivering to a local receiver.

Measures (1) throughput: deliveries per second one Celery worker process makes when a
backlog is waiting in the broker, and (2) latency: from the commit of the change that
emitted an event to the receiver getting its first attempt, at a steady rate of events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_webhooks \
    REDIS_URL=redis://127.0.0.1:6379/5 \
    .venv/bin/python bench/webhook_delivery.py [--events 2000] [--pool threads] [--concurrency 8]

It migrates the database it is given and adds an organization and an endpoint to it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"


class Receiver:
    """Records when each event id first arrived; answers 200 at once."""

    def __init__(self):
        self.first_seen: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                with receiver.lock:
                    receiver.count += 1
                    receiver.first_seen.setdefault(self.headers["webhook-id"], now)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000, help="backlog for the throughput run")
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="events/s in the latency run")
    parser.add_argument("--pool", default="threads", choices=["threads", "solo", "prefork"])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL (the broker).")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from accounts import services as account_services
    from accounts.models import User
    from config.celery import app
    from webhooks import services
    from webhooks.models import Delivery

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(email="bench-webhooks@example.com")
    organization = account_services.create_organization(name="Webhook bench", owner=user)
    receiver = Receiver()
    services.create_endpoint(organization=organization, url=receiver.url)
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("webhooks")

    def emit(index: int) -> tuple[str, float]:
        with transaction.atomic():
            event = services.emit_event(
                organization=organization,
                event_type="job.completed",
                data={"id": f"img_bench{index}", "status": "completed"},
                job_id=f"img_bench{index}",
            )
        return event.public_id, time.time()

    # 1. Throughput: a backlog waits in the broker, then one worker process drains it.
    for index in range(args.events):
        emit(index)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "webhooks",
            "--pool",
            args.pool,
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        if not wait_for(lambda: receiver.count >= 1, 60):
            sys.exit("The worker delivered nothing within 60 s")
        started, start_count = time.time(), receiver.count
        cpu_before = process_cpu_seconds(worker.pid)
        wait_for(lambda: receiver.count >= args.events, 300)
        drained = time.time() - started
        cpu_per_delivery_ms = (
            (process_cpu_seconds(worker.pid) - cpu_before) / (receiver.count - start_count) * 1000
        )
        throughput = (receiver.count - start_count) / drained

        # 2. Latency: a steady flow of events, each timed from its commit to its arrival.
        emitted = []
        for index in range(args.latency_events):
            emitted.append(emit(args.events + index))
            time.sleep(1 / args.rate)
        wait_for(lambda: all(event_id in receiver.first_seen for event_id, _ in emitted), 60)
        latencies = sorted(
            (receiver.first_seen[event_id] - committed) * 1000
            for event_id, committed in emitted
            if event_id in receiver.first_seen
        )
    finally:
        worker.terminate()
        worker.wait(30)

    def percentile(p):
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    failed = Delivery.objects.filter(
        endpoint__organization=organization, status=Delivery.Status.FAILED
    ).count()
    print(
        json.dumps(
            {
                "pool": args.pool,
                "concurrency": args.concurrency,
                "backlog": args.events,
                "deliveries_per_second": round(throughput, 1),
                "worker_cpu_ms_per_delivery": round(cpu_per_delivery_ms, 2),
                "latency_events": len(latencies),
                "latency_rate_per_second": args.rate,
                "latency_ms_p50": round(statistics.median(latencies), 1),
                "latency_ms_p95": round(percentile(95), 1),
                "latency_ms_p99": round(percentile(99), 1),
                "latency_ms_max": round(latencies[-1], 1),
                "failed_deliveries": failed,
            }
        )
    )


if __name__ == "__main__":
    main()

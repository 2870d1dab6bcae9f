"""Synchronous calls against the production web command while an upstream model takes 3 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagen_syncwaits \\
    REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/sync_waits.py [--calls 256] [--slots 256] [--delay 3]

Migrates DATABASE_URL's database (its rows stay; use a throw-away one) and flushes the Redis
db, adds an `openai_compatible` model whose upstream (tests/generation/fake_upstream.py, in
this process, on loopback) answers each call after `--delay` seconds, and one Enterprise
tenant with limits far above the load. Then it starts the Procfile's `web` line (2 gevent
processes, production settings) and its `upstream` line (`--slots` threads), fires `--calls`
concurrent `POST /v1/text-to-image` (`Prefer: wait=60`) at once, and polls `GET /healthz`
every 50 ms meanwhile. It prints the answers by status, the batch time (first call sent to
last answer), the calls' latency p50/p99 and the liveness checks' p50/p99/max.

Budgets (issue 15): every call completes, the batch within 8 s when the workers have enough
slots, `/healthz` p99 <= 100 ms. bench/README.md has the figures.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from soak_harness.processes import Managed, free_port, procfile_command, wait_for_port  # noqa: E402

MODEL = "bench-upstream"
SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_SECRET_KEY": "sk_test_bench_only",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench_only",
    "SECURE_SSL_REDIRECT": "false",
    "UPSTREAM_API_KEY": "sk-bench-upstream",
    "UPSTREAM_ALLOW_PRIVATE_NETWORKS": "true",
}


def prepare(upstream_url: str) -> str:
    """Migrate, add the upstream model and the tenant; return the tenant's key."""
    import django
    from django.core.management import call_command

    django.setup()
    from accounts import services
    from accounts.models import Organization, User
    from billing import services as billing
    from generation.models import ModelCatalogEntry

    call_command("migrate", verbosity=0)
    ModelCatalogEntry.objects.update_or_create(
        id=MODEL,
        defaults={
            "name": "Bench upstream",
            "engine": "openai_compatible",
            "engine_settings": {
                "base_url": upstream_url,
                "model": "fake-model",
                "api_key_env": "UPSTREAM_API_KEY",
                "timeout_seconds": 120,
            },
            "credits_per_image": 1,
            "capabilities": ["text-to-image"],
        },
    )
    slug = f"bench-sync-waits-{int(time.time())}"
    user = User.objects.create_user(email=f"{slug}@example.com", password=None)
    organization = services.create_organization(
        owner=user, name=slug, plan=billing.plan_by_slug("enterprise")
    )
    billing.grant_credits(
        organization=organization, amount=10**9, reference=f"bench:{slug}", memo="bench"
    )
    Organization.objects.filter(pk=organization.pk).update(
        requests_per_minute_override=10**8,
        requests_per_day_override=10**9,
        max_concurrent_jobs_override=10**6,
    )
    return services.create_api_key(organization=organization, name="bench", created_by=user).secret


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its children (gunicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=256)
    parser.add_argument("--slots", type=int, default=256, help="UPSTREAM_CONCURRENCY")
    parser.add_argument("--delay", type=float, default=3.0, help="the upstream's seconds")
    parser.add_argument("--size", default="512x512")
    options = parser.parse_args(argv)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            raise SystemExit(f"Set {name} (a throw-away database and Redis db).")

    from tests.generation.fake_upstream import FakeUpstream

    os.environ.update(SETTINGS)
    upstream = FakeUpstream().start()
    upstream.delay = options.delay
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    key = prepare(upstream.base_url)

    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="sync-waits-metrics-")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_HOST": "127.0.0.1",
        "UPSTREAM_CONCURRENCY": str(options.slots),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    log_dir = Path(tempfile.mkdtemp(prefix="sync-waits-logs-"))
    web = Managed("web", [*procfile_command("web", env), "--no-control-socket"], env, log_dir)
    worker = Managed("upstream", procfile_command("upstream", env), env, log_dir)
    base_url = f"http://127.0.0.1:{port}"
    width, height = (int(side) for side in options.size.split("x"))
    body = {"model": MODEL, "prompt": "a lighthouse at dusk", "width": width, "height": height}
    headers = {"Authorization": f"Bearer {key}", "Prefer": "wait=60"}
    try:
        web.start(wait=False)
        worker.start(wait=False)
        wait_for_port(port, web.process, timeout=120)
        deadline = time.monotonic() + 120
        while " ready." not in worker.log_path.read_text():
            if time.monotonic() > deadline or worker.process.poll() is not None:
                raise SystemExit(worker.log_path.read_text())
            time.sleep(0.2)
        # Each web process loads the prompt classifier on its first submission, and the
        # worker its image detector on its first job: both paid before the batch.
        with ThreadPoolExecutor(max_workers=8) as pool:
            warm = list(
                pool.map(
                    lambda _: (
                        requests.post(
                            f"{base_url}/v1/text-to-image", json=body, headers=headers, timeout=120
                        ).status_code
                    ),
                    range(8),
                )
            )
        print(f"warm-up answers: {warm}")

        health: list[float] = []
        done = threading.Event()

        def probe() -> None:
            with requests.Session() as session:
                while not done.is_set():
                    started = time.perf_counter()
                    session.get(f"{base_url}/healthz", timeout=30).raise_for_status()
                    health.append(time.perf_counter() - started)
                    done.wait(0.05)

        def call(_) -> tuple[int, str, float]:
            started = time.perf_counter()
            answer = requests.post(
                f"{base_url}/v1/text-to-image", json=body, headers=headers, timeout=120
            )
            status = answer.json().get("status", "") if answer.ok else answer.text[:80]
            return answer.status_code, status, time.perf_counter() - started

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        time.sleep(0.5)
        cpu_before = {m.name: cpu_seconds(m.process.pid) for m in (web, worker)}
        with ThreadPoolExecutor(max_workers=options.calls) as pool:
            batch_started = time.perf_counter()
            results = list(pool.map(call, range(options.calls)))
            batch = time.perf_counter() - batch_started
        cpu = {m.name: cpu_seconds(m.process.pid) - cpu_before[m.name] for m in (web, worker)}
        done.set()
        prober.join(timeout=30)
    finally:
        worker.stop()
        web.stop()
        upstream.stop()

    by_status: dict[tuple[int, str], int] = {}
    for status_code, status, _ in results:
        by_status[(status_code, status)] = by_status.get((status_code, status), 0) + 1
    latencies = [seconds for *_, seconds in results]
    answers = ", ".join(f"{n} x {code} {status}" for (code, status), n in by_status.items())
    health_ms = [1000 * seconds for seconds in health]
    print(f"calls: {options.calls}, upstream slots: {options.slots}, delay: {options.delay} s")
    print(f"answers: {answers}")
    print(f"batch: {batch:.1f} s")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(f"latency p50 {p50:.2f} s, p99 {p99:.2f} s")
    print(
        f"/healthz during the batch: {len(health)} checks, p50 {statistics.median(health_ms):.1f}"
        f" ms, p99 {percentile(health_ms, 0.99):.1f} ms, max {max(health_ms):.1f} ms"
    )
    print(", ".join(f"CPU of {name}: {seconds:.1f} s" for name, seconds in cpu.items()))
    print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One soak run: start everything, run the workload and the faults, settle, check, report."""

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from .processes import ROOT, Ports, Product, wait_for_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imagen_soak"
# Each plan's tenants: (credits, endpoints besides the healthy one). Those under 20 credits
# are never topped up: their balance runs out during the run (402).
RUNS_DRY_BELOW = 20
TENANTS = {
    "free": [(12, ["flaky"]), (40, [])],
    "pro": [(8, ["slow"]), (400, ["flaky"])],
    "enterprise": [(1500, ["flaky", "slow"]), (6, [])],
}
WORKLOAD_THREADS = 6
# Longest the run waits, after the workload, for jobs to finish and deliveries to land: a
# job stranded by a killed worker is failed by the reaper after JOB_DEADLINE_SECONDS.
# A long run's webhook backlog takes longer to drain: a quarter of the run's length more.
QUIET_SECONDS_MAX = 150
JOB_DEADLINE_SECONDS = 45
# Longest the run waits for the credits of the attempts it charged again at the end: Stripe's
# event, else the pack sweep after PACK_RECONCILE_AFTER_SECONDS.
RECHARGE_SETTLE_SECONDS = 60


def _environment(args, ports: Ports, work_dir: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": f"redis://127.0.0.1:{ports.redis}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{ports.redis}/0",
        "STRIPE_API_BASE": f"http://127.0.0.1:{ports.localstripe}",
        "SITE_URL": f"http://127.0.0.1:{ports.web[0]}",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "3",
        "MEDIA_ROOT": str(work_dir / "media"),
        "EMAIL_URL": "dummymail://",
        "JOB_DEADLINE_SECONDS": str(JOB_DEADLINE_SECONDS),
        "JOB_SOFT_TIME_LIMIT_SECONDS": "25",
        "JOB_TIME_LIMIT_SECONDS": "30",
        "JOB_WAIT_SECONDS": "20",
        # A purchase whose event was lost is credited by the sweep within the quiet period.
        "PACK_RECONCILE_AFTER_SECONDS": "30",
        # One slot per generation worker: the machine's two cores are shared.
        "GENERATION_CONCURRENCY": os.environ.get("GENERATION_CONCURRENCY", "1"),
        "LOG_LEVEL": "WARNING",
    }


def _seed_catalog() -> None:
    """Plans and packs, as their seed migration makes them (a test database is flushed)."""
    from billing.models import CreditPack, Plan
    from billing.plans import CREDIT_PACKS, PLANS

    known = {field.name for field in Plan._meta.get_fields()}
    for slug, fields in PLANS.items():
        Plan.objects.get_or_create(
            slug=slug, defaults={k: v for k, v in fields.items() if k in known}
        )
    for pack in CREDIT_PACKS:
        CreditPack.objects.get_or_create(name=pack["name"], defaults=pack)


def _create_tenants(ctx, seed: int) -> list:
    import requests
    from django.core.management import call_command

    from billing.models import Plan

    from .context import Tenant

    tenants = []
    for plan, shapes in TENANTS.items():
        per_minute = Plan.objects.get(slug=plan).requests_per_minute
        for number, (credits, extra) in enumerate(shapes, start=1):
            out = io.StringIO()
            call_command(
                "create_tenant",
                email=f"soak-{seed}-{plan}-{number}@example.com",
                org_name=f"Soak {seed} {plan} {number}",
                plan=plan,
                credits=credits,
                stdout=out,
            )
            line = json.loads(out.getvalue())
            from accounts.models import Organization

            organization = Organization.objects.get(slug=line["organization"])
            tenant = Tenant(
                slug=line["organization"],
                organization_id=organization.pk,
                api_key=line["api_key"],
                plan=plan,
                per_minute=per_minute,
                runs_dry=credits < RUNS_DRY_BELOW,
            )
            for receiver in ["healthy", *extra]:
                path = f"/org/{tenant.slug}"
                response = requests.post(
                    f"{ctx.web_urls[0]}/v1/webhook-endpoints",
                    json={"url": f"{ctx.receivers[receiver].url}{path}"},
                    headers={"Authorization": f"Bearer {tenant.api_key}"},
                    timeout=30,
                )
                response.raise_for_status()
                if receiver == "healthy":
                    tenant.healthy_endpoints.append((response.json()["id"], path))
            tenants.append(tenant)
    return tenants


def _workload(ctx, rng: random.Random, until: float) -> None:
    from .workload import ACTIONS

    names = list(ACTIONS)
    weights = [ACTIONS[name][0] for name in names]
    while time.monotonic() < until:
        name = rng.choices(names, weights)[0]
        tenant = rng.choice(ctx.tenants)
        try:
            ACTIONS[name][1](ctx, tenant, rng)
        except Exception as error:
            ctx.record.count(f"harness_errors:{name}:{type(error).__name__}")
        ctx.record.count(f"actions:{name}")
        time.sleep(rng.uniform(0, 0.3))


def _fault_schedule(rng: random.Random, start: float, until: float) -> list:
    """Every kind at least once, then more at random, at times spread over the run."""
    from .faults import FAULTS

    kinds = list(FAULTS)
    rng.shuffle(kinds)
    extra = max(0, int((until - start) / 12) - len(kinds))
    kinds += rng.choices(list(FAULTS), k=extra)
    times = sorted(rng.uniform(start + 3, until - 3) for _ in kinds)
    return list(zip(times, kinds, strict=True))


def _inject_faults(run, rng: random.Random, schedule: list) -> None:
    from .faults import FAULTS

    for at, kind in schedule:
        time.sleep(max(0.0, at - time.monotonic()))
        run.record.fault(kind)
        try:
            FAULTS[kind](run, rng)
        except Exception as error:
            run.record.violation("fault_injected", f"{kind} failed: {error!r}")


def _settled(run) -> bool:
    from billing.models import AutoRechargeAttempt
    from generation.models import Job
    from webhooks.models import Delivery

    from .invariants import _organizations

    ours = _organizations(run)
    jobs_left = Job.objects.filter(organization_id__in=ours, status__in=Job.UNFINISHED).exists()
    healthy = run.receivers["healthy"].url
    deliveries_left = (
        Delivery.objects.filter(organization_id__in=ours, status=Delivery.Status.PENDING)
        .filter(target_url__startswith=healthy)
        .exists()
    ) or Delivery.objects.filter(
        organization_id__in=ours,
        status=Delivery.Status.PENDING,
        endpoint__url__startswith=healthy,
    ).exists()
    recharges_left = AutoRechargeAttempt.objects.filter(
        organization_id__in=ours, status=AutoRechargeAttempt.Status.PENDING
    ).exists()
    return (
        not jobs_left
        and not deliveries_left
        and not recharges_left
        and not run.receivers["stripe_relay"].in_flight
    )


def _charge_stuck_recharges(run) -> int:
    """Charge again, as the sweep would once STUCK_AFTER has passed (longer than the quiet
    period), each auto-recharge attempt still charging: its task was lost with a killed
    worker. Return how many; one still charging after this is a violation."""
    from billing import services
    from billing.models import AutoRechargeAttempt

    from .invariants import _organizations

    stuck = list(
        AutoRechargeAttempt.objects.filter(
            organization_id__in=_organizations(run), status=AutoRechargeAttempt.Status.CHARGING
        ).values_list("organization_id", flat=True)
    )
    for organization_id in stuck:
        try:
            services.recharge(organization_id=organization_id)
        except Exception as error:
            run.record.violation("stuck_recharge_charged_again", f"{organization_id}: {error!r}")
    run.record.count("auto_recharges_charged_again_at_end", len(stuck))
    return len(stuck)


def _recharges_credited(run) -> bool:
    """No paid auto-recharge of ours still waits for Stripe's event (or the pack sweep)."""
    from billing.models import AutoRechargeAttempt, PackPurchase

    from .invariants import _organizations

    return (
        not AutoRechargeAttempt.objects.filter(
            organization_id__in=_organizations(run), status=AutoRechargeAttempt.Status.SUCCEEDED
        )
        .exclude(purchase__status=PackPurchase.Status.SUCCEEDED)
        .exists()
    )


class Run:
    def __init__(self, product, ctx):
        self.product = product
        self.ctx = ctx
        self.record = ctx.record
        self.tenants = ctx.tenants
        self.receivers = ctx.receivers
        self.stripe_url = ctx.stripe_url


def _report(run, violations, *, minutes, seed, elapsed, quiet) -> str:
    from generation.models import Job
    from webhooks.models import Delivery

    from .invariants import _organizations

    ours = _organizations(run)
    lines = [
        f"soak: seed {seed}, {minutes} min of workload, {elapsed:.0f} s in all, quiet {quiet:.0f} s"
    ]
    outcomes = Counter(
        f"{r.action.split(':')[0]} {r.status if r.status is not None else 'no answer'}"
        for r in run.record.responses
    )
    lines.append(f"requests: {len(run.record.responses)}")
    lines += [f"  {name}: {count}" for name, count in sorted(outcomes.items())]
    jobs = Counter(
        f"{dialect} {status}"
        for dialect, status in Job.objects.filter(organization_id__in=ours).values_list(
            "dialect", "status"
        )
    )
    lines.append(f"jobs: {sum(jobs.values())}")
    lines += [f"  {name}: {count}" for name, count in sorted(jobs.items())]
    faults = Counter(kind for kind, _ in run.record.faults)
    lines.append(f"faults: {sum(faults.values())}")
    lines += [f"  {name}: {count}" for name, count in sorted(faults.items())]
    deliveries = Counter(
        Delivery.objects.filter(organization_id__in=ours).values_list("status", flat=True)
    )
    receipts = Counter(receipt.receiver for receipt in run.record.receipts)
    lines.append(
        f"webhook deliveries: {dict(sorted(deliveries.items()))}; "
        f"requests received: {dict(sorted(receipts.items()))}"
    )
    purchases = Counter(str(p["outcome"]) for p in run.record.purchases)
    lines.append(f"purchases: {sum(purchases.values())} {dict(sorted(purchases.items()))}")
    lines.append(f"other counts: {dict(sorted(run.record.counts.items()))}")
    if violations:
        lines.append(f"violations: {len(violations)}")
        lines += [f"  {v.invariant}: {v.evidence}" for v in violations]
    else:
        lines.append("violations: 0")
    return "\n".join(lines)


def _ensure_database(url: str) -> None:
    """Create the run's database on a server that does not have it yet (a fresh machine)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, dbname="postgres", autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--port-base", type=int, default=10000, help="the first of 8 ports; 0: free ones"
    )
    parser.add_argument(
        "--log-dir", help="where the processes' logs go (default: a temporary folder)"
    )
    args = parser.parse_args(argv)

    work_dir = Path(tempfile.mkdtemp(prefix="imagen-soak-"))
    log_dir = Path(args.log_dir) if args.log_dir else work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = Ports(args.port_base)
    env = _environment(args, ports, work_dir)
    os.environ.update({**env, "PGAPPNAME": "imagen-soak-harness"})
    _ensure_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    import django

    django.setup()
    from accounts.models import User

    from . import faults
    from .context import Context
    from .invariants import check
    from .receivers import Receiver
    from .record import Record

    _seed_catalog()
    record = Record()
    timeout = float(env["WEBHOOK_TIMEOUT_SECONDS"])
    receivers = {
        name: Receiver(name, port, name, record, seed=args.seed * 10 + offset, timeout=timeout)
        for offset, (name, port) in enumerate(
            zip(["healthy", "flaky", "slow", "stripe_relay"], ports.receivers, strict=True)
        )
    }
    product = Product(ports=ports, env=env, log_dir=log_dir, work_dir=work_dir)
    started = time.monotonic()
    try:
        for receiver in receivers.values():
            receiver.start()
        product.start()
        web_urls = [f"http://127.0.0.1:{port}" for port in ports.web]
        receivers["stripe_relay"].relay_targets = web_urls
        stripe_url = env["STRIPE_API_BASE"]
        faults.configure_localstripe(stripe_url, receivers["stripe_relay"].url)
        ctx = Context(
            web_urls=web_urls, receivers=receivers, record=record, tenants=[], stripe_url=stripe_url
        )
        ctx.staff_user_id = User.objects.create_user(
            email=f"soak-staff-{args.seed}-{int(time.time())}@example.com",
            password=None,
            is_staff=True,
        ).pk
        ctx.tenants = _create_tenants(ctx, args.seed)
        run = Run(product, ctx)
        rng = random.Random(args.seed)
        begin = time.monotonic()
        until = begin + args.minutes * 60
        threads = [
            threading.Thread(target=_workload, args=(ctx, random.Random(rng.random()), until))
            for _ in range(WORKLOAD_THREADS)
        ]
        schedule = _fault_schedule(random.Random(rng.random()), begin, until)
        threads.append(
            threading.Thread(
                target=_inject_faults, args=(run, random.Random(rng.random()), schedule)
            )
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for managed in [product.redis, *product.web]:
            wait_for_port(managed.port, managed.process)
        quiet_start = time.monotonic()
        quiet_max = QUIET_SECONDS_MAX + args.minutes * 60 / 4
        while time.monotonic() - quiet_start < quiet_max and not _settled(run):
            time.sleep(2)
        if _charge_stuck_recharges(run):
            recharged_start = time.monotonic()
            while time.monotonic() - recharged_start < RECHARGE_SETTLE_SECONDS and not (
                _settled(run) and _recharges_credited(run)
            ):
                time.sleep(2)
        time.sleep(3)
        quiet = time.monotonic() - quiet_start
        violations = check(run)
        print(f"logs: {log_dir}")
        print(
            _report(
                run,
                violations,
                minutes=args.minutes,
                seed=args.seed,
                elapsed=time.monotonic() - started,
                quiet=quiet,
            )
        )
        return 1 if violations else 0
    finally:
        product.stop()
        for receiver in receivers.values():
            receiver.stop()
        shutil.rmtree(work_dir / "media", ignore_errors=True)

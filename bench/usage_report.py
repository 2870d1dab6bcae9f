"""Time the staff usage report over 1,000,000 jobs (docs/architecture.md: renders in under 1 s).

    PYTHONPATH=. .venv/bin/python bench/usage_report.py            # 1,000,000 jobs
    PYTHONPATH=. .venv/bin/python bench/usage_report.py --jobs 100000 --runs 5

What it does:
  1. drops and creates the PostgreSQL database `imagen_bench_usage` (BENCH_DATABASE_URL
     overrides the server and name) and migrates it;
  2. fills it with generate_series INSERT ... SELECT: 200 organizations on the three plans,
     `--jobs` jobs spread over the last 90 days (a few organizations make most of the
     traffic; 92 % completed, 5 % failed, 2 % refused by moderation, 1 % canceled) and
     3,000 invoices (90 % paid, a tenth of them in EUR);
  3. runs reporting.services.rollup_usage for every day (what the beat task does for two days
     every 10 minutes) and reports its time;
  4. renders the admin report with Django's test client logged in as staff: the default
     range (30 days), all 91 days, and 91 days filtered to one plan; then both CSV exports.
     Each is timed `--runs` times after one warm-up run; the median and the slowest are
     reported, with the number of SQL queries of one run.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/imagen_bench_usage"
)
os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
# The test settings: DEBUG off (no query log) and static files without a collectstatic.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

DAYS = 90
ORGANIZATIONS = 200
INVOICES = 3000


def recreate_database() -> None:
    import psycopg

    parts = urlsplit(BENCH_DATABASE_URL)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


ORGANIZATIONS_SQL = """
INSERT INTO accounts_organization
    (public_id, name, slug, status, billing_email, plan_id, credit_balance,
     low_credit_threshold, webhook_signing_secret, stripe_customer_id, created_at)
SELECT gen_random_uuid(), 'Bench org ' || g, 'bench-org-' || g, 'active', '',
       (SELECT id FROM billing_plan
         WHERE slug = CASE WHEN g %% 10 = 0 THEN 'enterprise' WHEN g %% 3 = 0 THEN 'pro'
                           ELSE 'free' END),
       0, 10, 'whsec_bench', '', now() - interval '120 days'
FROM generate_series(1, %(organizations)s) AS g
"""

# Organization ids are picked with random()^3: the first organizations make most of the jobs.
JOBS_SQL = """
WITH orgs AS (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_organization),
raw AS (
    SELECT g, gen_random_uuid() AS id, random() AS r_status, random() AS r_org,
           now() - random() * %(days)s * interval '1 day' AS created_at,
           1 + (g %% 4) AS num_images
    FROM generate_series(1, %(jobs)s) AS g
)
INSERT INTO generation_job
    (id, public_id, organization_id, dialect, mode, model_id, prompt, negative_prompt,
     width, height, steps, guidance_scale, seed, style, num_images, input_image_path,
     status, progress, attempts, credits_reserved, credits_used, reservation_reference,
     webhook_url, webhook_secret, webhook_events, error_code, error_message,
     created_at, started_at, completed_at, expires_at, deadline_at)
SELECT raw.id, 'img_' || lpad(to_hex(g), 12, '0'),
       orgs.ids[1 + floor(power(r_org, 3) * array_length(orgs.ids, 1))::int],
       'v1', 'text-to-image', 'imagen-v2', 'a lighthouse', '',
       1024, 1024, 30, 7.5, g, '', num_images, '',
       CASE WHEN r_status < 0.92 THEN 'completed' WHEN r_status < 0.99 THEN 'failed'
            ELSE 'canceled' END,
       100, 1, num_images,
       CASE WHEN r_status < 0.92 THEN num_images ELSE 0 END,
       'job:' || raw.id,
       '', '', '[]'::jsonb,
       CASE WHEN r_status >= 0.92 AND r_status < 0.94 THEN 'content_moderated'
            WHEN r_status >= 0.94 AND r_status < 0.99 THEN 'engine_error' ELSE '' END,
       '', created_at, created_at, created_at + interval '2 seconds',
       created_at + interval '30 days', created_at + interval '10 minutes'
FROM raw, orgs
"""

INVOICES_SQL = """
WITH orgs AS (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_organization),
raw AS (
    SELECT g, random() AS r_org, now() - random() * %(days)s * interval '1 day' AS paid_at,
           (ARRAY[1000, 2900, 4900, 9900])[1 + g %% 4] AS amount
    FROM generate_series(1, %(invoices)s) AS g
)
INSERT INTO billing_invoice
    (number, organization_id, kind, status, lines, subtotal, total, amount_paid, currency,
     credits_added, paid_at, created_at)
SELECT 'BENCH-' || lpad(g::text, 6, '0'),
       orgs.ids[1 + floor(power(r_org, 2) * array_length(orgs.ids, 1))::int],
       'pack', CASE WHEN g %% 10 = 0 THEN 'void' ELSE 'paid' END, '[]'::jsonb,
       amount, amount, amount, CASE WHEN g %% 10 = 3 THEN 'eur' ELSE 'usd' END,
       amount, paid_at, paid_at
FROM raw, orgs
"""


def timed(label: str, function):
    started = time.perf_counter()
    result = function()
    print(f"{label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def fill(jobs: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(ORGANIZATIONS_SQL, {"organizations": ORGANIZATIONS})
        timed(
            f"insert {jobs:,} jobs", lambda: cursor.execute(JOBS_SQL, {"jobs": jobs, "days": DAYS})
        )
        cursor.execute(INVOICES_SQL, {"invoices": INVOICES, "days": DAYS})
        cursor.execute("ANALYZE")


def measure(client, url: str, params: dict, runs: int) -> dict:
    """Median and slowest wall time and median CPU time of this process (rendering, not
    the database's work) in ms, the SQL queries of one run, and the response's size."""
    from django.db import connection

    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # An execute wrapper counts whatever the connection's lifecycle (the debug query log
    # is cleared when a request reconnects).
    with connection.execute_wrapper(count):
        client.get(url, params)
    wall, cpu = [], []
    for _ in range(runs):
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, params)
        wall.append((time.perf_counter() - wall_started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200
    return {
        "median": statistics.median(wall),
        "max": max(wall),
        "cpu": statistics.median(cpu),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="reuse the filled database")
    options = parser.parse_args()

    if not options.keep:
        recreate_database()

    import django

    django.setup()
    from datetime import UTC, timedelta

    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from generation.models import Job
    from reporting.services import rollup_usage

    # Not setup_test_environment(): its template instrumentation (the test client keeps a
    # copy of every context) would be timed too. The page is rendered as in production.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if not options.keep:
        call_command("migrate", verbosity=0)
        fill(options.jobs)
    print(f"jobs in the database: {Job.objects.count():,}")

    today = timezone.now().astimezone(UTC).date()
    days = [today - timedelta(days=offset) for offset in range(DAYS, -1, -1)]
    per_day = []
    started = time.perf_counter()
    for day in days:
        day_started = time.perf_counter()
        rollup_usage(day=day)
        per_day.append((time.perf_counter() - day_started) * 1000)
    print(
        f"rollup of {len(days)} days: {time.perf_counter() - started:.1f} s "
        f"(median {statistics.median(per_day):.0f} ms a day, slowest {max(per_day):.0f} ms)"
    )
    recent = []
    for _ in range(5):
        day_started = time.perf_counter()
        for day in days[-2:]:
            rollup_usage(day=day)
        recent.append((time.perf_counter() - day_started) * 1000)
    print(f"beat task (today and yesterday): median {statistics.median(recent):.0f} ms")

    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    report = "/admin/reporting/usagereport/"
    everything = {"start": days[0].isoformat(), "end": today.isoformat()}
    cases = [
        ("report, last 30 days (default)", report, {}),
        ("report, 91 days", report, everything),
        ("report, 91 days, plan pro", report, {**everything, "plan": "pro"}),
        ("CSV per day, 91 days", report + "export/days.csv", everything),
        ("CSV per organization, 91 days", report + "export/organizations.csv", everything),
    ]
    print(
        f"\n{'request':34} {'median ms':>10} {'max ms':>8} {'CPU ms':>7} "
        f"{'queries':>8} {'bytes':>9}"
    )
    for label, url, params in cases:
        m = measure(client, url, params, options.runs)
        print(
            f"{label:34} {m['median']:10.1f} {m['max']:8.1f} {m['cpu']:7.1f} "
            f"{m['queries']:8d} {m['bytes']:9,d}"
        )


if __name__ == "__main__":
    main()

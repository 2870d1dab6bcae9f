"""Drive the product side by side with the bare baseline (bench/baseline) with wrk.

    python bench/compare.py                  # 3 alternating rounds, -c 16, -d 10 s
    python bench/compare.py --rounds 5 -d 15 # anything after is passed to bench.py
    python bench/compare.py --ledger-rows 1000000   # the tenant starts with that much history
    python bench/compare.py --with-sync      # also the web tier as it was (2 sync workers)
    python bench/compare.py --web-pool 2     # the Procfile's WEB_DATABASE_POOL_SIZE (8)
    python bench/compare.py --web-processes 4  # the Procfile's WEB_CONCURRENCY (2)

What it does:
  1. copies bench/baseline to var/baseline (its setup.sh makes a venv and results there,
     installs wrk, PostgreSQL and Redis if missing and seeds the bare app);
  2. prepares the product on PostgreSQL (database `imagen_bench`) and Redis (db 8):
     migrate, one Enterprise tenant with 10^12 credits and limits far above the load, one
     completed job to read;
  3. writes a targets file and runs the baseline harness with the product as an extra
     group, `product`: the Procfile's `web` line as production runs it (gunicorn, 2 gevent
     processes, a pool of 8 PostgreSQL connections each); with `--with-sync` also
     `product-sync`, gunicorn with 2 sync workers (the configuration of `bare-sync`, and
     the web tier before gevent), side by side in the same run.

Compared pairs (docs/architecture.md, Performance budgets):
  POST /v2/images/generate  vs  bare-sync/debit-rl   (budget >= 1.0 x, p99 <= 50 ms)
  GET  /v2/jobs/{id}        vs  bare-sync/auth-db    (budget >= 0.8 x)
  GET  /v1/models           vs  bare-sync/auth-db    (budget >= 0.9 x)

No Celery worker consumes `run_job` during the run: submitted jobs wait in Redis, so the
renderer's CPU does not compete with the web workers for the 2 cores (the baseline's
/debit-rl renders nothing either). The queue is purged afterwards.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from soak_harness.processes import procfile_command  # noqa: E402

VENDORED_BASELINE = ROOT / "bench" / "baseline"
BASELINE = ROOT / "var" / "baseline"
PORT = 19100
SYNC_PORT = 19101
PYTHON = ROOT / ".venv" / "bin" / "python"

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "STRIPE_SECRET_KEY": "sk_test_bench_only",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench_only",
    "SECURE_SSL_REDIRECT": "false",
    # COMPARE_DATABASE_URL / COMPARE_REDIS_URL: another database and Redis db (several
    # engineers on one machine); the database is dropped and re-created, the db flushed.
    "DATABASE_URL": os.environ.get(
        "COMPARE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/imagen_bench"
    ),
    "REDIS_URL": os.environ.get("COMPARE_REDIS_URL", "redis://127.0.0.1:6379/8"),
    "SITE_URL": f"http://127.0.0.1:{PORT}",
    "LOG_LEVEL": "WARNING",
}

PREPARE = """
import json
from django.core.management import call_command
from django.test import Client
from accounts import services
from accounts.models import Organization
from billing import services as billing
import io, uuid

out = io.StringIO()
call_command("create_tenant", "--email", "bench@example.com", "--plan", "enterprise",
             "--org-name", "Bench", "--credits", str(10**12), stdout=out)
line = json.loads(out.getvalue())
Organization.objects.filter(slug=line["organization"]).update(
    requests_per_minute_override=10**8, requests_per_day_override=10**9)
client = Client(HTTP_X_FORWARDED_PROTO="https")
headers = {"HTTP_AUTHORIZATION": "Bearer " + line["api_key"]}
job = client.post("/v2/images/generate", {"prompt": "bench", "model": "imagen-fast",
      "parameters": {"width": 256, "height": 256, "steps": 1}},
      content_type="application/json", **headers).json()
# Reads are capped at 600 a minute per key (docs/api), so the load rotates over many keys of
# the same organization: the same hot organization row as the baseline's single account.
organization = Organization.objects.get(slug=line["organization"])
keys = [services.create_api_key(organization=organization, name=f"bench {n}").secret
        for n in range(200)]
print(json.dumps({"api_key": line["api_key"], "keys": keys, "job_id": job["jobId"],
                  "organization": line["organization"]}))
"""


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


# History for the benchmark tenant: one reservation a second going back in time, so that a
# submission meets a ledger of the given size (docs/architecture.md: within 10 % of an empty one).
LEDGER_HISTORY_SQL = """
INSERT INTO billing_creditledgerentry
       (organization_id, kind, amount, balance_after, reference, memo, created_at)
SELECT o.id, 'reserve', -1, o.credit_balance, 'bench-history:' || g, '',
       now() - g * interval '1 second'
  FROM accounts_organization o, generate_series(1, :rows) g
 WHERE o.slug = :'slug';
ANALYZE billing_creditledgerentry;
"""


def add_ledger_history(rows: int, slug: str) -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "imagen_bench",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"rows={rows}",
            "-v",
            f"slug={slug}",
            "-f",
            "-",
        ],
        input=LEDGER_HISTORY_SQL,
        text=True,
        check=True,
    )


def prepare_product(env: dict = ENV) -> dict:
    """Create the benchmark tenant afresh in `env`'s database and Redis db (dropped first)."""
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    redis_db = env["REDIS_URL"].rsplit("/", 1)[1]
    exists = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname='{database}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists:
        sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE {database}")
    sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {database}")
    sh("redis-cli", "-n", redis_db, "flushdb", stdout=subprocess.DEVNULL)
    sh(str(PYTHON), "manage.py", "migrate", "-v0", cwd=ROOT, env=env)
    sh(str(PYTHON), "manage.py", "collectstatic", "--noinput", "-v0", cwd=ROOT, env=env)
    result = subprocess.run(
        [str(PYTHON), "manage.py", "shell", "-c", PREPARE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"Preparing the product failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _product_env(**extra) -> dict:
    return {
        **{
            k: v
            for k, v in ENV.items()
            if k not in os.environ or k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
        },
        **extra,
    }


def _procfile_web(port: int, web_pool: int | None = None, web_processes: int | None = None) -> dict:
    """The Procfile's `web` line, with its defaults (2 gevent processes, pool of 8)."""
    variables = {"PORT": str(port), "WEB_HOST": "127.0.0.1"}
    if web_pool:
        variables["WEB_DATABASE_POOL_SIZE"] = str(web_pool)
    if web_processes:
        variables["WEB_CONCURRENCY"] = str(web_processes)
    return {
        "cmd": [*procfile_command("web", variables), "--no-control-socket"],
        "cwd": str(ROOT),
        "env": _product_env(PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"),
        "ready_url": f"http://127.0.0.1:{port}/healthz",
    }


def _sync_web(port: int) -> dict:
    """gunicorn with 2 sync workers and persistent connections: `bare-sync`'s setup."""
    return {
        "cmd": [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi",
            *("-b", f"127.0.0.1:{port}", "-w", "2", "-k", "sync", "--no-control-socket"),
        ],
        "cwd": str(ROOT),
        "env": _product_env(),
        "ready_url": f"http://127.0.0.1:{port}/healthz",
    }


def targets(
    api_key: str,
    keys: list[str],
    job_id: str,
    *,
    with_sync: bool,
    web_pool: int | None = None,
    web_processes: int | None = None,
) -> dict:
    web = _procfile_web(PORT, web_pool, web_processes)
    groups = [_group("product", PORT, web, api_key, keys, job_id)]
    if with_sync:
        groups.append(
            _group("product-sync", SYNC_PORT, _sync_web(SYNC_PORT), api_key, keys, job_id)
        )
    return {"groups": groups}


def _group(name: str, port: int, start: dict, api_key: str, keys: list[str], job_id: str):
    auth = {"Authorization": f"Bearer {api_key}"}
    submit_body = {
        "prompt": "a lighthouse at dusk",
        "model": "imagen-fast",
        "parameters": {"width": 512, "height": 512, "steps": 10},
    }
    return {
        "name": name,
        "base_url": f"http://127.0.0.1:{port}",
        "start": start,
        "endpoints": [
            {"name": "hello", "method": "GET", "path": "/healthz"},
            {
                "name": "submit",
                "method": "POST",
                "path": "/v2/images/generate",
                "headers": {**auth, "Content-Type": "application/json"},
                "body": submit_body,
                "compare_to": "bare-sync/debit-rl",
                "bearers": keys,
            },
            {
                "name": "job-read",
                "method": "GET",
                "path": f"/v2/jobs/{job_id}",
                "headers": auth,
                "compare_to": "bare-sync/auth-db",
                "bearers": keys,
            },
            {
                "name": "models",
                "method": "GET",
                "path": "/v1/models",
                "headers": auth,
                "compare_to": "bare-sync/auth-db",
                "bearers": keys,
            },
        ],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ledger-rows", type=int, default=0)
    parser.add_argument("--with-sync", action="store_true")
    parser.add_argument("--web-pool", type=int, help="WEB_DATABASE_POOL_SIZE of `product`")
    parser.add_argument("--web-processes", type=int, help="WEB_CONCURRENCY of `product`")
    options, argv = parser.parse_known_args(argv)
    if BASELINE.exists():
        shutil.rmtree(BASELINE / "bare", ignore_errors=True)
    shutil.copytree(
        VENDORED_BASELINE,
        BASELINE,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".venv", "results"),
    )
    product = prepare_product()
    if options.ledger_rows:
        add_ledger_history(options.ledger_rows, product["organization"])
    targets_file = BASELINE / "product-targets.json"
    targets_file.write_text(
        json.dumps(
            targets(
                product["api_key"],
                product["keys"],
                product["job_id"],
                with_sync=options.with_sync,
                web_pool=options.web_pool,
                web_processes=options.web_processes,
            ),
            indent=1,
        )
    )
    try:
        return subprocess.run(
            [
                "bash",
                str(BASELINE / "run.sh"),
                "--configs",
                "sync",
                "--targets",
                str(targets_file),
                *argv,
            ],
            cwd=BASELINE,
        ).returncode
    finally:
        redis_db = ENV["REDIS_URL"].rsplit("/", 1)[1]
        subprocess.run(["redis-cli", "-n", redis_db, "flushdb"], stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

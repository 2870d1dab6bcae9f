"""Count the CPU instructions one API request costs in-process, with valgrind's callgrind.

    python bench/instructions.py                     # product: hello, submit, read, models
    python bench/instructions.py read submit -n 300  # some endpoints, more requests
    python bench/instructions.py --bare              # the baseline's app (compare.py's copy)

Wall and CPU times on this shared 2-core VM move by 10-30 % with whatever else runs;
instruction counts do not (the same code, data and state give the same count to within
0.1 %), so this is the quick loop to tell whether a change made a request cheaper. It
counts the web process's own user-space instructions: PostgreSQL, Redis and the kernel are
not in it, so bench/compare.py still gives the figures that count.

Each endpoint runs in a fresh interpreter under `valgrind --tool=callgrind` with
instrumentation off; after a warm-up (every key once, so they are remembered) it is
switched on for exactly N requests. The product runs on its own database
(`imagen_instructions`) and Redis db 9, prepared once and kept (`--prepare` makes them
again; `INSTRUCTIONS_DATABASE_URL` and `INSTRUCTIONS_REDIS_URL` name others, so that two
people can measure at once); key entries never age and last_used_at is never due, because
under valgrind a run is some 50 times slower and those clocks would otherwise fire in some
runs and not others.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = ROOT / "var" / "baseline" / "bare"
STATE = ROOT / "var" / "instructions-product.json"
PRODUCT_ENDPOINTS = ("hello", "submit", "read", "models")
BARE_ENDPOINTS = ("hello", "auth-db", "debit-rl")
WARM_UP = 260


def product_env() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from compare import ENV

    return {
        **ENV,
        "DATABASE_URL": os.environ.get(
            "INSTRUCTIONS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/imagen_instructions"
        ),
        "REDIS_URL": os.environ.get("INSTRUCTIONS_REDIS_URL", "redis://127.0.0.1:6379/9"),
    }


def product_requests(endpoint: str):
    """Set up the product in this process; return a function making request i's environ."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.update(product_env())
    os.chdir(ROOT)
    import profile_requests as requests

    product = json.loads(STATE.read_text())
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    from accounts import api_key_cache, services

    api_key_cache.MAX_AGE_SECONDS = 10**9
    services.LAST_USED_RESOLUTION = datetime.timedelta(days=3650)
    keys = product["keys"]
    make = {
        "hello": lambda i: requests.environ("GET", "/healthz", keys[i % len(keys)]),
        "submit": lambda i: requests.environ(
            "POST", "/v2/images/generate", keys[i % len(keys)], requests.SUBMIT_BODY
        ),
        "read": lambda i: requests.environ(
            "GET", f"/v2/jobs/{product['job_id']}", keys[i % len(keys)]
        ),
        "models": lambda i: requests.environ("GET", "/v1/models", keys[i % len(keys)]),
    }[endpoint]
    return application, make, requests.call


def bare_requests(endpoint: str):
    sys.path.insert(0, str(BARE))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchproj.settings"
    import profile_requests as requests
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    method, path, body = {
        "hello": ("GET", "/hello", b""),
        "auth-db": ("GET", "/auth-db", b""),
        "debit-rl": ("POST", "/debit-rl", b'{"cost": 1}'),
    }[endpoint]

    def make(i):
        environ = requests.environ(method, path, "bench-key-0", body)
        environ["SERVER_PORT"] = "18080"
        return environ

    return application, make, requests.call


def run_one(endpoint: str, n: int, bare: bool) -> None:
    """Inside valgrind: warm up, then count exactly n requests."""
    application, make, call = (bare_requests if bare else product_requests)(endpoint)
    for i in range(WARM_UP):
        status = call(application, make(i))
    if not status.startswith("2"):
        raise SystemExit(f"{endpoint} answered {status} during the warm-up")

    def instrument(state: str) -> None:
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], capture_output=True)
        time.sleep(1)  # callgrind applies the switch at its next check

    instrument("on")
    for i in range(n):
        call(application, make(i))
    instrument("off")


def count(endpoint: str, n: int, bare: bool) -> int:
    python = BARE.parent / ".venv" / "bin" / "python" if bare else ROOT / ".venv" / "bin" / "python"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--callgrind-out-file=/dev/null",
        str(python),
        __file__,
        "--inside",
        endpoint,
        "-n",
        str(n),
        *(["--bare"] if bare else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or collected is None:
        raise SystemExit(f"{endpoint}: valgrind failed\n{result.stdout}\n{result.stderr[-3000:]}")
    return int(collected.group(1)) // n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoints", nargs="*")
    parser.add_argument("-n", type=int, default=200, help="requests counted per endpoint")
    parser.add_argument("--bare", action="store_true", help="the baseline's app instead")
    parser.add_argument("--prepare", action="store_true", help="make the tenant again")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        run_one(args.inside, args.n, args.bare)
        return
    if args.bare and not BARE.exists():
        raise SystemExit("Run bench/compare.py once first: it copies the baseline to var/.")
    if not args.bare and (args.prepare or not STATE.exists()):
        sys.path.insert(0, str(ROOT / "bench"))
        from compare import prepare_product

        STATE.parent.mkdir(exist_ok=True)
        STATE.write_text(json.dumps(prepare_product(product_env())))
    endpoints = args.endpoints or (BARE_ENDPOINTS if args.bare else PRODUCT_ENDPOINTS)
    for endpoint in endpoints:
        print(f"{endpoint:9s} {count(endpoint, args.n, args.bare):>12,} instructions per request")


if __name__ == "__main__":
    main()

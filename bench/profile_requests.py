"""Time and profile the hot API requests in one process, without HTTP or wrk.

    python bench/profile_requests.py                 # ms per request for each endpoint
    python bench/profile_requests.py --profile read  # + cProfile's top functions for one

It prepares the same tenant as bench/compare.py (database `imagen_bench`, Redis db 8,
production settings), then calls the WSGI application directly with hand-built environs:
the time is what Django, DRF and our code spend per request, database and Redis round
trips included, HTTP parsing and gunicorn excluded. Use it to find and check a fix
quickly; bench/compare.py gives the figures that count.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compare import ENV, prepare_product  # noqa: E402

BATCH = 100

SUBMIT_BODY = json.dumps(
    {
        "prompt": "a lighthouse at dusk",
        "model": "imagen-fast",
        "parameters": {"width": 512, "height": 512, "steps": 10},
    }
).encode()


def environ(method: str, path: str, key: str, body: bytes = b"") -> dict:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "19100",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "CONTENT_TYPE": "application/json" if body else "",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(application, env: dict) -> str:
    status = []
    body = application(env, lambda s, headers, exc_info=None: status.append(s))
    b"".join(body)
    body.close()
    return status[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000, help="requests per endpoint")
    parser.add_argument("--profile", choices=["submit", "read", "models", "hello"])
    parser.add_argument("--skip-prepare", action="store_true")
    args = parser.parse_args()

    cache_file = ROOT / "var" / "profile-product.json"
    if args.skip_prepare and cache_file.exists():
        product = json.loads(cache_file.read_text())
    else:
        product = prepare_product()
        cache_file.parent.mkdir(exist_ok=True)
        cache_file.write_text(json.dumps(product))
    os.environ.update(ENV)
    os.chdir(ROOT)
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    keys = product["keys"]
    requests = {
        "hello": lambda i: environ("GET", "/healthz", keys[i % len(keys)]),
        "submit": lambda i: environ(
            "POST", "/v2/images/generate", keys[i % len(keys)], SUBMIT_BODY
        ),
        "read": lambda i: environ("GET", f"/v2/jobs/{product['job_id']}", keys[i % len(keys)]),
        "models": lambda i: environ("GET", "/v1/models", keys[i % len(keys)]),
    }
    for name, make in requests.items():
        if args.profile and name != args.profile:
            continue
        # Every key once, so that the timed requests find them remembered.
        for i in range(len(keys) + 50):
            status = call(application, make(i))
        assert status.startswith("2"), (name, status)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        # In batches: the fastest batch is the cost with the least interference from
        # whatever else runs on the machine; the median is what a busy minute looks like.
        walls, cpus = [], []
        for batch in range(0, args.n, BATCH):
            size = min(BATCH, args.n - batch)
            started, cpu_started = time.perf_counter(), time.process_time()
            for i in range(batch, batch + size):
                call(application, make(i))
            walls.append((time.perf_counter() - started) / size * 1000)
            cpus.append((time.process_time() - cpu_started) / size * 1000)
        if profiler:
            profiler.disable()
        print(
            f"{name:8s} CPU {statistics.median(cpus):7.3f} ms median, {min(cpus):7.3f} min; "
            f"wall {statistics.median(walls):7.3f} ms median per request ({args.n} requests)"
        )
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(int(os.environ.get("PROFILE_LINES", 60)))
    from redis import Redis

    Redis.from_url(ENV["REDIS_URL"]).flushdb()


if __name__ == "__main__":
    main()

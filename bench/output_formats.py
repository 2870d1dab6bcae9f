"""Time what OpenAI's output options cost the worker: formats, transparency, previews.

Run from the repository root:  .venv/bin/python bench/output_formats.py [--runs N]
One core, one thread (as bench/engine.py): the process's CPU time per call, median and p95,
for a 1024 x 1024 text-to-image render of the `local` engine (opaque PNG, transparent PNG,
with 3 previews) and for encoding its PNG as JPEG or WebP (generation/output_formats.py),
with the bytes each gives.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
import django  # noqa: E402

django.setup()

from generation.engines import EngineRequest, get_engine  # noqa: E402
from generation.output_formats import encode  # noqa: E402

BASE = EngineRequest(
    prompt="abstract geometric shapes in purple and gold",
    width=1024,
    height=1024,
    seed=7,
    settings={"detail": 4, "saturation": 1.0, "stylize": 0.3},
)


def cpu_ms(call, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.process_time()
        call()
        times.append((time.process_time() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    engine = get_engine("local")

    def render(**changes):
        return engine.generate(replace(BASE, **changes), lambda *args, **kwargs: None)

    png = render()[0]
    print(f"{'what':44} {'median ms':>10} {'p95 ms':>8} {'bytes':>9}")
    rows = [
        ("render, opaque PNG", lambda: render(), png),
        ("render, transparent PNG", lambda: render(background="transparent"), None),
        ("render, opaque PNG + 3 previews", lambda: render(partial_images=3), None),
    ]
    for output_format in ("jpeg", "webp"):
        for compression in (100, 80):
            rows.append(
                (
                    f"encode as {output_format}, output_compression {compression}",
                    lambda f=output_format, c=compression: encode(
                        png, output_format=f, compression=c
                    ),
                    encode(png, output_format=output_format, compression=compression),
                )
            )
    for name, call, result in rows:
        median, p95 = cpu_ms(call, runs)
        size = len(result) if isinstance(result, bytes) else len(call()[0])
        print(f"{name:44} {median:10.1f} {p95:8.1f} {size:9,}")


if __name__ == "__main__":
    main()

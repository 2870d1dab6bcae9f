"""Time the local engine on one core: median and p95 per size, mode, model settings and style.

Run from the repository root:  .venv/bin/python bench/engine.py [--runs N] [--pin]
Each figure covers the whole generate() call, input decoding and PNG encoding included.
It prints wall-clock time and the process's CPU time: the engine is single-threaded, so CPU
time is the time it needs on one core, and it stays meaningful when other processes share
the machine (wall time then includes waiting for the core).
"""

import os

# One core, one thread: set before numpy loads so BLAS/OpenMP pools never start.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.engines import EngineRequest, get_engine  # noqa: E402
from generation.engines.base import Mode  # noqa: E402
from generation.engines.local import STYLES  # noqa: E402

# The catalog's engine settings for the local engine (generation's seed data).
MODELS = {
    "imagen-v2": {"detail": 4, "saturation": 1.0, "stylize": 0.3},
    "imagen-v3": {"detail": 6, "saturation": 1.1, "stylize": 0.4},
    "imagen-fast": {"detail": 2, "saturation": 1.0, "stylize": 0.2},
    "imagen-artistic": {"detail": 4, "saturation": 1.3, "stylize": 0.9},
}
SIZES = [(512, 512), (1024, 1024), (1920, 1080), (2048, 2048)]
MODES = [Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE, Mode.VARIATIONS]
PROMPTS = [
    "a red sunset over snowy mountains",
    "misty forest lake at dawn",
    "abstract geometric shapes in purple and gold",
    "cyberpunk city at night in the rain",
    "portrait of a cat astronaut",
]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def input_photo(width: int, height: int) -> bytes:
    """A JPEG the size of a typical upload, so decoding is part of the figure."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def median_p95(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[round(0.95 * (len(timings) - 1))]


def measure(requests: list[EngineRequest]) -> tuple[float, ...]:
    """Median and p95 of wall time, then median, p95 and minimum of CPU time, in ms."""
    engine = get_engine("local")
    engine.generate(requests[0], lambda _: None)  # warm caches and imports
    wall, cpu = [], []
    for request in requests:
        start, start_cpu = time.perf_counter(), time.process_time()
        engine.generate(request, lambda _: None)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return (*median_p95(wall), *median_p95(cpu), min(cpu))


def requests_for(size, mode, settings, runs, style_cycle) -> list[EngineRequest]:
    width, height = size
    init = input_photo(width, height) if mode != Mode.TEXT_TO_IMAGE else None
    return [
        EngineRequest(
            prompt=PROMPTS[run % len(PROMPTS)],
            width=width,
            height=height,
            seed=run,
            style=style_cycle[run % len(style_cycle)],
            mode=mode,
            init_image=init,
            strength=0.6,
            settings=settings,
        )
        for run in range(runs)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="timed runs per row")
    parser.add_argument("--quick", action="store_true", help="1024 x 1024 only")
    parser.add_argument("--pin", action="store_true", help="pin the process to one CPU")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    print(f"# local engine benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()},")
    pinned = "pinned to one CPU" if args.pin else "not pinned"
    print(f"# numpy {np.__version__}, Pillow {Image.__version__}; 1 thread, {pinned}")
    print(f"# load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# {args.runs} runs per row; styles and prompts rotate across runs\n")
    all_styles = [None, *STYLES]
    header = (
        f"| {'size':>9} | {'mode':<14} | {'model':<15} | {'style':<9} "
        "| wall median | wall p95 | CPU median | CPU p95 | CPU min |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")

    def row(size, mode, model, style_label, style_cycle):
        wall, wall_p95, cpu, cpu_p95, cpu_min = measure(
            requests_for(size, mode, MODELS[model], args.runs, style_cycle)
        )
        label = f"{size[0]}x{size[1]}"
        print(
            f"| {label:>9} | {mode:<14} | {model:<15} | {style_label:<9} "
            f"| {wall:11.1f} | {wall_p95:8.1f} | {cpu:10.1f} | {cpu_p95:7.1f} | {cpu_min:7.1f} |",
            flush=True,
        )

    sizes = [(1024, 1024)] if args.quick else SIZES
    for size in sizes:
        for mode in MODES:
            for model in MODELS:
                row(size, mode, model, "all", all_styles)
    for style in all_styles:
        row((1024, 1024), Mode.TEXT_TO_IMAGE, "imagen-v3", str(style), [style])


if __name__ == "__main__":
    main()

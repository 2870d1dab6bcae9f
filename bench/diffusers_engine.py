"""Time the diffusers engine: one job's generation end to end, per size and batch.

    PYTHONPATH=. .venv/bin/python bench/diffusers_engine.py [--path DIR] [--device auto]
        [--dtype bfloat16] [--sizes 256x256,512x512,1024x1024] [--batches 1,4] [--steps 4]
        [--runs 5] [--threads N]

Without --path it builds the tests' tiny random pipeline (tests/generation/tiny_diffusers)
in a temporary directory: the figures then measure the engine's own costs on this
machine (tokenizing, the denoising loop, decoding, PNG encoding), not a real model. With
--path (an operator's FLUX.1-schnell or SD-Turbo directory) on a GPU they are the model's.

One run is DiffusersEngine.generate() from the request to the PNG bytes, as a worker runs
it for a job (the platform's own few milliseconds per job, submit, queue and storage, are
measured by bench/compare.py and bench/webhook_delivery.py). Loading and the warm-up
generation are timed once, apart. Each row reports p50, min and max over --runs, and images
per second at p50 (batch / p50).
"""

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="a diffusers pipeline directory (default: the tiny one)")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--sizes", default="256x256,512x512,1024x1024")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's)")
    options = parser.parse_args()

    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    import torch

    from generation.engines import diffusers as diffusers_engine
    from generation.engines.base import EngineRequest

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = options.dtype or ("bfloat16" if device == "cuda" else "float32")
    path = options.path
    if path is None:
        from tests.generation.tiny_diffusers import build_tiny_pipeline

        path = str(build_tiny_pipeline(Path(tempfile.mkdtemp(prefix="bench-diffusers-"))))
    if options.threads:
        torch.set_num_threads(options.threads)
    settings = {"path": path, "device": device, "dtype": dtype}

    started = time.perf_counter()
    diffusers_engine.load(settings)
    loaded = time.perf_counter() - started
    warm_up = diffusers_engine.warm_up(settings)
    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
    print(f"# {sys.version.split()[0]}, torch {torch.__version__}, {device} ({name}), {dtype}")
    print(f"# torch threads {torch.get_num_threads()}, steps {options.steps}, runs {options.runs}")
    print(f"# model {path}: loaded in {loaded:.2f} s, warm-up {warm_up:.2f} s")
    print(f"{'size':>11} {'batch':>5} {'p50 s':>8} {'min s':>8} {'max s':>8} {'images/s':>9}")
    engine = diffusers_engine.DiffusersEngine()
    for size in options.sizes.split(","):
        width, height = (int(side) for side in size.split("x"))
        for batch in (int(b) for b in options.batches.split(",")):
            times = []
            for run in range(options.runs):
                request = EngineRequest(
                    prompt="a lighthouse on a cliff at dawn, oil painting",
                    width=width,
                    height=height,
                    seed=run,
                    steps=options.steps,
                    guidance_scale=1.0,
                    num_images=batch,
                    settings=settings,
                )
                if device == "cuda":
                    torch.cuda.synchronize()
                began = time.perf_counter()
                images = engine.generate(request, lambda progress: None)
                times.append(time.perf_counter() - began)
                assert len(images) == batch
            p50 = statistics.median(times)
            print(
                f"{size:>11} {batch:>5} {p50:>8.3f} {min(times):>8.3f} {max(times):>8.3f}"
                f" {batch / p50:>9.2f}"
            )


if __name__ == "__main__":
    main()

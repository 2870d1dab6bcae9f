"""Time the moderation checks: per-image NudeNet check and per-prompt check.

Run on one core, as a Celery worker process gets it:

    PYTHONPATH=. taskset -c 0 .venv/bin/python bench/moderation.py
"""

import io
import statistics
import time

import numpy as np
from PIL import Image

from generation.moderation import images, prompts
from tests.generation import moderation_images

ROUNDS = 30


def timed(function, rounds=ROUNDS):
    """Return the median CPU time and the median wall time, in ms.

    CPU time is what the check costs a worker; wall time also counts waiting for the core,
    which on a machine shared with other work can be several times larger.
    """
    cpu, wall = [], []
    for _ in range(rounds):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        function()
        cpu.append((time.process_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - wall_started) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def noisy_png(size=1024):
    # Worst case for the PNG decoder: every pixel different, so nothing compresses.
    pixels = np.random.default_rng(7).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def main():
    started = time.perf_counter()
    detector = images.load_detector()
    print(f"detector load: {(time.perf_counter() - started) * 1000:.0f} ms")
    started = time.perf_counter()
    prompts.check_prompt("warm up")
    print(f"profanity model load: {(time.perf_counter() - started) * 1000:.0f} ms")

    for name, png in [
        ("landscape 1024x1024", moderation_images.landscape()),
        ("noise 1024x1024", noisy_png()),
    ]:
        pixels = images._pixels(png)
        decode = timed(lambda png=png: images._pixels(png))
        detect = timed(lambda pixels=pixels: detector.detect(pixels))
        check = timed(lambda png=png: images.check_image(png))
        print(
            f"{name} ({len(png) // 1024} KiB PNG), CPU ms: decode {decode[0]:.1f}, "
            f"detect {detect[0]:.1f}, check_image {check[0]:.1f} "
            f"(wall {check[1]:.1f}; medians of {ROUNDS})"
        )

    blocklist = [f"term{index}" for index in range(500)]
    prompt = (
        "a beautiful landscape with mountains and rivers at dawn, highly detailed, 8k, "
        "trending on artstation, oil painting by a famous artist"
    )
    check = timed(
        lambda: prompts.check_prompt(
            prompt, negative_prompt="blurry, ugly", blocked_terms=blocklist
        ),
        rounds=200,
    )
    print(
        f"check_prompt, 6 clauses, 500 blocked terms, CPU ms: {check[0]:.2f} "
        f"(wall {check[1]:.2f}; medians of 200)"
    )


if __name__ == "__main__":
    main()

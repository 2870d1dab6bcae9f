"""A test-only engine slow enough to kill its worker mid-job (test_worker_killed)."""

import io
import os
import time
from pathlib import Path

from PIL import Image


class SlowEngine:
    """Renders for `seconds` (engine setting), leaving a file named for each run it starts."""

    def generate(self, request, progress):
        runs = Path(request.settings["runs_dir"])
        (runs / f"{os.getpid()}-{time.monotonic_ns()}").write_text(str(os.getpid()))
        steps = 20
        for step in range(steps):
            time.sleep(float(request.settings.get("seconds", 4)) / steps)
            progress(int(100 * step / steps))
        buffer = io.BytesIO()
        Image.new("RGB", (request.width, request.height), (30, 60, 90)).save(buffer, "PNG")
        return [buffer.getvalue()] * request.num_images

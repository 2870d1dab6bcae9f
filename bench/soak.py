"""Soak: the product under a mixed workload with faults injected at random, then every
invariant of money, jobs and webhooks checked (bench/README.md has the figures).

    .venv/bin/python bench/soak.py --minutes 10 --seed 7

Starts the Procfile's processes (two web, two generation workers, upstream, webhooks, beat) on
DATABASE_URL (default the imagen_soak database) with its own redis-server and localstripe
on ports from --port-base (10000), prints the counts and, last, `violations: 0` or each
violation with its evidence; exits 1 on any violation.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soak_harness.run import main

if __name__ == "__main__":
    sys.exit(main())

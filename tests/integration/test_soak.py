"""A seeded short soak (bench/soak.py): the Procfile's processes under a mixed workload with
every fault injected at least once, and no invariant of money, jobs or webhooks broken.

It runs the harness as its own process on the test database, with its own redis-server,
localstripe and webhook receivers on free ports; about two minutes of wall time.
"""

import subprocess
import sys

import pytest

from tests.integration.faults import PROJECT_ROOT, child_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SEED = 2026
MINUTES = 0.5


def test_a_seeded_soak_ends_with_no_violation():
    result = subprocess.run(
        [
            *(sys.executable, "bench/soak.py", "--minutes", str(MINUTES), "--seed", str(SEED)),
            *("--port-base", "0", "--database-url", child_database_url()),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert result.stdout.strip().splitlines()[-1] == "violations: 0", report

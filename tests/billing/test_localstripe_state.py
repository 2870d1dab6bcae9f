"""localstripe keeps its objects in the state file it is given (the run command's is in var/,
beside the demo's database), and forgets them when started from scratch."""

import signal
import subprocess
import sys
import time

import requests

from tests.billing.conftest import LOCALSTRIPE, _free_port

SECRET_KEY = "sk_test_state"


def _start(port: int, state_file, *extra) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, LOCALSTRIPE, "--port", str(port), "--state-file", str(state_file), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("localstripe did not start")


def _customer(port: int, customer_id: str) -> requests.Response:
    return requests.get(
        f"http://127.0.0.1:{port}/v1/customers/{customer_id}", auth=(SECRET_KEY, ""), timeout=5
    )


def test_a_localstripe_killed_and_started_again_still_knows_its_customers(tmp_path):
    port, state_file = _free_port(), tmp_path / "localstripe.pickle"
    first = _start(port, state_file, "--from-scratch")
    try:
        created = requests.post(
            f"http://127.0.0.1:{port}/v1/customers",
            data={"email": "kept@example.com"},
            auth=(SECRET_KEY, ""),
            timeout=5,
        ).json()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    second = _start(port, state_file)
    try:
        response = _customer(port, created["id"])
    finally:
        second.kill()
        second.wait(timeout=10)
    assert response.status_code == 200
    assert response.json()["email"] == "kept@example.com"


def test_from_scratch_forgets_what_the_state_file_holds(tmp_path):
    port, state_file = _free_port(), tmp_path / "localstripe.pickle"
    first = _start(port, state_file, "--from-scratch")
    try:
        created = requests.post(
            f"http://127.0.0.1:{port}/v1/customers", auth=(SECRET_KEY, ""), timeout=5
        ).json()
    finally:
        first.kill()
        first.wait(timeout=10)
    second = _start(port, state_file, "--from-scratch")
    try:
        assert _customer(port, created["id"]).status_code == 404
    finally:
        second.kill()
        second.wait(timeout=10)

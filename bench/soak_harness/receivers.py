"""Webhook receivers on loopback (healthy, failing at random, slow) and Stripe's retries.

localstripe sends each event once; Stripe retries an event for days until a 2xx. The relay
stands for those retries: localstripe sends to it, it answers at once and forwards the
signed event to a web process, the other one after a failure, until one accepts it.
"""

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class Receiver:
    """One receiver; `behaviour` picks its answers. Each request it reads is recorded."""

    def __init__(self, name: str, port: int, behaviour: str, record, *, seed: int, timeout: float):
        self.name, self.port, self.behaviour, self.record = name, port, behaviour, record
        self.random = random.Random(seed)
        self.timeout = timeout
        self.hang_until = 0.0
        self.relay_targets: list[str] = []
        self.in_flight = 0  # Stripe events the relay has yet to hand to a web process
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hang(self, seconds: float) -> None:
        self.hang_until = time.monotonic() + seconds

    def _answer(self) -> tuple[int, float]:
        """The status to answer with and how long to take first."""
        if time.monotonic() < self.hang_until:
            return 200, self.timeout * 2
        if self.behaviour == "slow":
            return 200, self.random.uniform(0.5, 2.0)
        if self.behaviour == "flaky":
            roll = self.random.random()
            if roll < 0.3:
                return 500, 0
            if roll < 0.4:
                return 200, self.timeout + 1
            if roll < 0.42:
                return 410, 0
        return 200, 0

    def handle(self, request, body: bytes) -> None:
        if self.behaviour == "stripe_relay":
            request.send_response(200)
            request.end_headers()
            threading.Thread(
                target=self._relay, args=(body, request.headers.get("Stripe-Signature", ""))
            ).start()
            return
        status, delay = self._answer()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.record.receipt(
            receiver=self.name,
            path=request.path,
            webhook_id=request.headers.get("webhook-id", ""),
            payload=payload,
            answered=status if delay < self.timeout else None,
        )
        if delay:
            time.sleep(delay)
        try:
            request.send_response(status)
            request.send_header("Content-Length", "0")
            request.end_headers()
        except OSError:
            pass  # the sender gave up waiting

    def _relay(self, body: bytes, signature: str) -> None:
        with self.lock:
            self.in_flight += 1
        try:
            self._forward(body, signature)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _forward(self, body: bytes, signature: str) -> None:
        deadline = time.monotonic() + 300
        attempt = 0
        while time.monotonic() < deadline:
            target = self.relay_targets[attempt % len(self.relay_targets)]
            attempt += 1
            try:
                response = requests.post(
                    f"{target}/stripe/webhook/",
                    data=body,
                    headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                    timeout=15,
                )
                if response.status_code < 300:
                    self.record.count("stripe_events_relayed")
                    return
                if response.status_code >= 500 and response.status_code != 503:
                    self.record.violation(
                        "no_500",
                        f"POST /stripe/webhook/ answered {response.status_code}: "
                        f"{response.text[:300]}",
                    )
            except requests.RequestException:
                pass
            self.record.count("stripe_event_retries")
            time.sleep(min(2**attempt, 10))
        self.record.violation("stripe_event_accepted", f"no web process took {body[:200]!r}")

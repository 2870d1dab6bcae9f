import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import stripe
from django.core.signals import request_finished, request_started

from billing.stripe_events import HANDLERS

STRIPE_WEBHOOK_PATH = "/stripe/webhook/"
LOCALSTRIPE = str(Path(__file__).resolve().parents[2] / "scripts" / "localstripe_loopback.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_server(live_server, tmp_path_factory):
    """A real localstripe process on a free loopback port, for the whole session.

    It depends on the live server so that it stops first: its last events (sent a second
    late) land before the live server and the test database go away.
    """
    port = _free_port()
    process = subprocess.Popen(
        # The localstripe package of the virtualenv running the tests, as the run command
        # starts it (on the loopback interface only).
        # Its own state file: localstripe's default one is shared with the run command's.
        [
            *(sys.executable, LOCALSTRIPE, "--port", str(port), "--from-scratch"),
            *("--state-file", str(tmp_path_factory.mktemp("localstripe") / "state.pickle")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/js.stripe.com/v3/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError("localstripe did not start")
        yield base
    finally:
        time.sleep(1.5)
        process.terminate()
        process.wait(timeout=10)


class _EventsInFlight:
    """The live server's threads handling a Stripe event at this moment.

    request_finished carries no request, but it is sent from the thread that handled it.
    """

    def __init__(self):
        self.threads = set()

    def started(self, sender, environ=None, **kwargs):
        if environ and environ.get("PATH_INFO") == STRIPE_WEBHOOK_PATH:
            self.threads.add(threading.get_ident())

    def finished(self, sender, **kwargs):
        self.threads.discard(threading.get_ident())


@pytest.fixture
def stripe_server(localstripe_server, live_server, settings):
    """localstripe as Stripe, sending its signed events to this test's live server.

    At teardown localstripe stops sending, and the fixture waits for the events the live
    server is still handling: one landing during the test database's flush would write
    beside the TRUNCATE (a deadlock) or leave rows for the next test.
    """
    settings.STRIPE_API_BASE = localstripe_server
    settings.SITE_URL = live_server.url
    _forward_events(localstripe_server, live_server.url, settings)
    in_flight = _EventsInFlight()
    request_started.connect(in_flight.started)
    request_finished.connect(in_flight.finished)
    try:
        yield localstripe_server
    finally:
        _forward_events(localstripe_server, live_server.url, settings, events=[])
        # An event whose POST left localstripe just before it stopped is still on its way.
        time.sleep(0.05)
        deadline = time.monotonic() + 10
        while in_flight.threads and time.monotonic() < deadline:
            time.sleep(0.05)
        request_started.disconnect(in_flight.started)
        request_finished.disconnect(in_flight.finished)


def _forward_events(localstripe: str, site: str, settings, events=None) -> None:
    response = requests.post(
        f"{localstripe}/_config/webhooks/tests",
        json={
            "url": f"{site}{STRIPE_WEBHOOK_PATH}",
            "secret": settings.STRIPE_WEBHOOK_SECRET,
            # Like a real Stripe endpoint: only the events the project handles.
            "events": sorted(HANDLERS) if events is None else events,
        },
        timeout=5,
    )
    response.raise_for_status()


def sell_starter_pack(*, credits: int = 100):
    """The three plans and a $5 Starter pack, synced to localstripe's catalog."""
    from billing import services
    from billing.models import CreditPack
    from tests.accounts.factories import PlanFactory

    for slug in ("free", "pro", "enterprise"):
        PlanFactory(slug=slug)
    pack = CreditPack.objects.create(name="Starter", credits=credits, price_cents=500)
    services.sync_stripe_catalog()
    return pack


def confirm_card_setup(base: str, client_secret: str, number: str, publishable_key: str) -> dict:
    """What Stripe.js's confirmCardSetup sends for a Card Element holding card `number`."""
    setup_intent_id = client_secret.split("_secret_")[0]
    response = requests.post(
        f"{base}/v1/setup_intents/{setup_intent_id}/confirm",
        json={
            "key": publishable_key,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
            },
        },
        timeout=5,
    )
    return {"status_code": response.status_code, **response.json()}


def signed_event_post(client, event: dict, secret: str, timestamp: int | None = None):
    """POST `event` to the webhook endpoint signed exactly as Stripe signs it."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return client.post(
        "/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()

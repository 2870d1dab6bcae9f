"""SENTRY_DSN: an unhandled error in a view reaches Sentry, here a receiver on loopback."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from config.sentry import init_sentry
from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header

pytestmark = pytest.mark.django_db


class _Receiver(BaseHTTPRequestHandler):
    envelopes: list[bytes]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_receiver():
    """Sentry's SDK reporting to a threaded HTTP server on loopback; the envelopes it got."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.envelopes = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    init_sentry(
        dsn=f"http://public@127.0.0.1:{server.server_port}/1", environment="test", release="t1"
    )
    yield server.envelopes
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: reports nothing
    server.shutdown()


def _events(envelopes: list[bytes]) -> list[dict]:
    events = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


@pytest.mark.urls("tests.common.test_error_contract")
def test_an_unhandled_error_in_a_view_sends_one_event(client, sentry_receiver):
    response = client.get("/v1/test-explode", **auth_header(api_key_for(OrganizationFactory())))
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)
    (event,) = _events(sentry_receiver)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert (event["environment"], event["release"]) == ("test", "t1")
    assert "Authorization" not in json.dumps(event.get("request", {}))
